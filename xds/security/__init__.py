"""Requester identity: XUA SAML assertions (ITI-40) and TLS."""
