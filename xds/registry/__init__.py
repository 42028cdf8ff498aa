"""The Document Registry actor's services: ITI-42 Register Document Set-b and ITI-18 Registry Stored Query."""

from xds.registry import iti18, iti42
from xds.registry.transactions import Transaction

#: The transactions this actor answers (one module each, STYLE R2).
TRANSACTIONS: tuple[Transaction, ...] = (iti42.TRANSACTION, iti18.TRANSACTION)

__all__ = ["TRANSACTIONS", "Transaction", "iti18", "iti42"]
