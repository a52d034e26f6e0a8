"""RFC 8460 SMTP TLS Reporting: record parser, report model, aggregation, delivery, validation.

The cores are sans-IO; the asyncio parts (HTTPS POST, the receiver) are thin adapters.
"""
