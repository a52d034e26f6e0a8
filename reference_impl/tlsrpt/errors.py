"""Errors and findings of the TLSRPT core (RFC 8460).

Same shape as the MTA-STS core's (``reference_impl.mtasts.errors``): one base error with a
``rule`` id (kebab-case, shared with the validator's findings), the RFC ``section``, a
``detail`` and an optional 1-based ``line``; and :class:`Finding`, the diagnostic the parsers
and the validator share, so that a parser and the validator cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["Finding", "RecordError", "ReportError", "Severity", "TlsRptError"]

# "error": the input breaks a MUST (or cannot be read); "warning": legal but deviant (a SHOULD,
# or a form the RFC contradicts itself about, e.g. "mx-host" as a string, Appendix B);
# "info": worth showing, judged neither way.
Severity = Literal["error", "warning", "info"]


class TlsRptError(Exception):
    """Base of every error ``reference_impl.tlsrpt`` raises on purpose.

    ``str()`` reads ``RFC 8460 section 3 [record-rua-missing]: detail (line 3)``.
    """

    def __init__(self, rule: str, section: str, detail: str, line: int | None = None) -> None:
        super().__init__(rule, section, detail, line)  # args carries every field: pickles and copies
        self.rule = rule
        self.section = section
        self.detail = detail
        self.line = line

    def __str__(self) -> str:
        where = f" (line {self.line})" if self.line is not None else ""
        return f"RFC 8460 section {self.section} [{self.rule}]: {self.detail}{where}"


class RecordError(TlsRptError):
    """The ``_smtp._tls`` TXT record set or record is unusable (RFC 8460 section 3)."""


class ReportError(TlsRptError):
    """A report (JSON, gzip or mail) cannot be read at all (RFC 8460 sections 4 and 5)."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule a record or report breaks (or, for ``info``, a notable reading)."""

    rule: str
    section: str
    severity: Severity
    message: str
    line: int | None = None
    # Where in a report: a JSON pointer ("/policies/0/summary") or a MIME part name.
    where: str | None = None

    def __str__(self) -> str:
        place = f" at {self.where}" if self.where else ""
        line = f" (line {self.line})" if self.line is not None else ""
        return f"{self.severity}: RFC 8460 section {self.section} [{self.rule}]: {self.message}{place}{line}"
