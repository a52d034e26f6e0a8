"""MailTLS Conformance: a conformance suite for the transport-security RFCs of mail and XMPP."""

__version__ = "0.1.0"
