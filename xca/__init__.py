"""Cross-Community Access (XCA): responding and initiating gateways (to come, see issue 4)."""

__all__: list[str] = []
