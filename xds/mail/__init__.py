"""E-mail adapters: SMTP relay settings and sending, notification and XDM messages, MDNs, the XDM listener."""
