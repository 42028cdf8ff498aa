"""The Document Repository: ITI-41 Provide and Register Document Set-b and ITI-43 Retrieve Document Set."""

from xds.repository import iti41, iti43

TRANSACTIONS = (iti41.TRANSACTION, iti43.TRANSACTION)

__all__ = ["TRANSACTIONS"]
