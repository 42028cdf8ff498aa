"""ATNA audit (ITI-20): DICOM PS3.15 audit messages, the durable spool, and the syslog forwarder."""
