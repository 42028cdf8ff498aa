"""The ebRIM 3.0 / ebRS 3.0 codec: hardened parsing, model <-> XML, registry messages (no I/O)."""
