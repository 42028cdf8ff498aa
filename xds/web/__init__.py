"""Web adapters: the SOAP endpoint boundary, actor wiring and structured logs."""
