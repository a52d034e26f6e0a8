"""Resource limits of the TLSRPT report validator (RFC 8460 sections 5.2 and 7).

Reports come from systems under test and from the wild, so they are untrusted input (section 7,
"Untrusted content"): every size is bounded before the bytes are held, and a gzip body is
inflated in bounded steps, so a decompression bomb is refused by a finding, never by running out
of memory. Section 5.2 mentions "a commonly observed receiver limit" of ten megabytes; the
defaults here are above it, so a report a real receiver would take is never refused here.
"""

from __future__ import annotations

__all__ = [
    "GZIP_STEP_BYTES",
    "MAX_COMPRESSED_BYTES",
    "MAX_DECOMPRESSED_BYTES",
    "MAX_JSON_DEPTH",
    "MAX_MESSAGE_BYTES",
]

_MIB = 1024 * 1024

MAX_COMPRESSED_BYTES = 16 * _MIB
"""A report body as received (gzip or plain JSON), before any decompression."""

MAX_DECOMPRESSED_BYTES = 64 * _MIB
"""The JSON text a gzip body may inflate to."""

MAX_MESSAGE_BYTES = 24 * _MIB
"""A whole report mail: the compressed limit grown by base64 (4/3) plus headers and text."""

MAX_JSON_DEPTH = 64
"""Nesting of arrays and objects; a report needs 5 levels, so deeper input is refused unread."""

GZIP_STEP_BYTES = 1 * _MIB
"""How much output one inflate step may produce: bounds the overshoot past the limit."""
