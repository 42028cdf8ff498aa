"""Consent: who may see which patient's documents (ARCHITECTURE.md §7)."""
