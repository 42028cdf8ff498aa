"""The Document Recipient (push): XDR (ITI-41) and ITI-80 deliveries into mailboxes, the inbox, digests."""
