"""The ``TLS-Required`` header field of RFC 8689 (sections 3, 4.1, 4.2.2), sans-IO.

Section 3 gives the ABNF::

    tls-required = "TLS-Required:" WSP "No" CRLF

ABNF quoted strings are case-insensitive (RFC 5234 section 2.3), so ``no`` and ``NO`` are the
same value; the field name is case-insensitive as every header field name (RFC 5322 section
1.2.2). Surrounding whitespace (and folding, RFC 5322 section 2.2.3) is allowed around the value.
Section 3: "More than one instance of this header field MUST NOT appear": the section leaves
the receiver's handling open; this parser treats a message with several instances as if it had
none (the sender's own MTA-STS/DANE policy then applies, the safe reading) and reports why, so
the caller can log it. Any value other than ``No`` is likewise not honoured.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

__all__ = ["FIELD_NAME", "TlsRequired", "TlsRequiredError", "TlsRequiredField", "find_tls_required", "parse_value"]

FIELD_NAME = "TLS-Required"
_WSP = " \t"
_FIELD_RE = re.compile(rb"^tls-required[ \t]*:", re.IGNORECASE)


class TlsRequiredError(ValueError):
    """A ``TLS-Required`` value that is not the one RFC 8689 section 3 defines."""

    def __init__(self, message: str, *, section: str = "3") -> None:
        super().__init__(message)
        self.section = section


class TlsRequired(Enum):
    """What a message's header says about TLS for its onward relay."""

    ABSENT = "absent"  # no field: the sender's own policy applies
    NO = "no"  # one well-formed "TLS-Required: No" (section 4.2.2)
    INVALID = "invalid"  # several instances or a bad value: treated as absent


@dataclass(frozen=True, slots=True)
class TlsRequiredField:
    state: TlsRequired
    count: int = 0  # how many TLS-Required fields the header section holds
    problem: str | None = None  # why an INVALID field is not honoured (for the log)

    @property
    def tls_optional(self) -> bool:
        """Section 4.2.2: the message may go on without TLS (and despite MTA-STS/DANE)."""
        return self.state is TlsRequired.NO


def parse_value(value: str) -> TlsRequired:
    """The unfolded value of one ``TLS-Required`` field: ``No`` in any case, with optional
    surrounding whitespace (section 3); anything else raises :class:`TlsRequiredError`."""
    text = value.replace("\r\n", "").replace("\n", "").strip(_WSP)
    if text.lower() != "no":
        raise TlsRequiredError(f"TLS-Required value must be 'No', got {value[:40]!r}")
    return TlsRequired.NO


def _header_lines(message: bytes) -> list[bytes]:
    """The unfolded header fields of ``message`` (up to the first empty line)."""
    fields: list[bytes] = []
    for raw in message.split(b"\n"):
        line = raw.removesuffix(b"\r")
        if not line:
            break  # the end of the header section (RFC 5322 section 2.1)
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += line  # RFC 5322 section 2.2.3: unfolding
        else:
            fields.append(line)
    return fields


def find_tls_required(message: bytes) -> TlsRequiredField:
    """Look the ``TLS-Required`` field up in the header section of ``message``."""
    values = [line.split(b":", 1)[1] for line in _header_lines(message) if _FIELD_RE.match(line)]
    if not values:
        return TlsRequiredField(TlsRequired.ABSENT)
    if len(values) > 1:
        # Section 3: "More than one instance of this header field MUST NOT appear".
        return TlsRequiredField(TlsRequired.INVALID, len(values), "more than one TLS-Required field")
    try:
        state = parse_value(values[0].decode("latin-1"))
    except TlsRequiredError as exc:
        return TlsRequiredField(TlsRequired.INVALID, 1, str(exc))
    return TlsRequiredField(state, 1)
