"""Errors and findings of the MTA-STS core (RFC 8461 sections 3.1, 3.2, 3.3, 4.1, 5 and 10.2).

One base class, :class:`MtaStsError`, for the whole ``reference_impl.mtasts`` package, with
structured fields: ``rule`` (a short kebab-case id such as ``txt-multiple-records``, shared with
the lint findings), ``section`` (as printed in RFC 8461), ``detail`` and an optional 1-based
``line``. A parser here raises only a subclass of :class:`MtaStsError` on bad input; anything
else is a bug.

:class:`Finding` is the diagnostic both the parsers and the linter are built on: a parser scans
its input into findings and raises the first ``error`` finding as its exception, the linter
returns all of them, so the two cannot disagree about what is valid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "Finding",
    "MtaStsError",
    "PolicyError",
    "RecordError",
    "Severity",
    "quote_value",
]

Severity = Literal["error", "warning"]

_QUOTE_LIMIT = 60


def quote_value(value: str, limit: int = _QUOTE_LIMIT) -> str:
    """Show untrusted text inside a message: ``repr``-escaped and cut to ``limit`` characters.

    Policy files and TXT records come from the system under test; escaping keeps control
    characters and look-alikes visible and bounds the message size.
    """
    if len(value) > limit:
        return repr(value[:limit]) + f"... ({len(value)} characters)"
    return repr(value)


class MtaStsError(Exception):
    """Base of every error ``reference_impl.mtasts`` raises on purpose.

    ``str()`` reads ``RFC 8461 section 3.1 [txt-id-missing]: detail (line 3)``; the line part
    is left out when ``line`` is ``None``.
    """

    def __init__(self, rule: str, section: str, detail: str, line: int | None = None) -> None:
        # args carries every field so that the error pickles and copies (Exception reduces to args)
        super().__init__(rule, section, detail, line)
        self.rule = rule
        self.section = section
        self.detail = detail
        self.line = line

    def __str__(self) -> str:
        where = f" (line {self.line})" if self.line is not None else ""
        return f"RFC 8461 section {self.section} [{self.rule}]: {self.detail}{where}"


class RecordError(MtaStsError):
    """The ``_mta-sts`` TXT record set or record is unusable (RFC 8461 section 3.1)."""


class PolicyError(MtaStsError):
    """The policy file is unusable (RFC 8461 section 3.2); ``line`` is 1-based when known."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One broken rule in a TXT record or policy file.

    ``severity`` is ``"error"`` when a parser rejects the input for it and ``"warning"`` for
    legal input an operator should still change (e.g. a short ``max_age``, section 10.2).
    """

    rule: str
    section: str
    severity: Severity
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f" (line {self.line})" if self.line is not None else ""
        return f"{self.severity}: RFC 8461 section {self.section} [{self.rule}]: {self.message}{where}"
