"""An IHE XDS.b Document Registry and Repository node with an XCA cross-community gateway."""

__version__ = "0.1.0"

__all__ = ["__version__"]
