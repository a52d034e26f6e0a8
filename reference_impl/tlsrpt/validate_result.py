"""The validator's result and the small helpers its rule modules share (RFC 8460 sections 4 and 5).

:class:`Validation` is what every entry point of ``reference_impl.tlsrpt.validate`` returns:
the findings (each naming its rule, RFC section and where), the report as parsed JSON when it
could be read, and what was learnt on the way (the form, the filename, the mail headers, the
DKIM verdict). The rule modules build findings with :func:`finding` and quote untrusted text
with :func:`quote`, so messages stay bounded and control characters stay visible.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from reference_impl.tlsrpt.errors import Finding, Severity

__all__ = ["Validation", "finding", "json_pointer", "quote"]

_QUOTE_LIMIT = 60


@dataclass
class Validation:
    """The verdict on one report: findings, and the parsed report when it could be read."""

    findings: list[Finding] = field(default_factory=list)
    report: dict[str, Any] | None = None  # the JSON object, when the body parsed as one
    form: str = "json"  # "json", "gzip" or "mail": how the report arrived
    filename: str | None = None  # the filename given (HTTPS) or the report part's (mail)
    headers: dict[str, str] = field(default_factory=dict)  # mail: TLS-Report-*, Subject, From
    dkim: str | None = None  # mail: "pass", "fail: ...", "none"; None when not checked

    @property
    def errors(self) -> list[str]:
        """The rule ids of the error findings, sorted, each once."""
        return _rules(self.findings, "error")

    @property
    def warnings(self) -> list[str]:
        """The rule ids of the warning findings, sorted, each once."""
        return _rules(self.findings, "warning")

    @property
    def infos(self) -> list[str]:
        """The rule ids of the info findings, sorted, each once."""
        return _rules(self.findings, "info")

    @property
    def ok(self) -> bool:
        """No error finding: the report is usable as the RFC defines it."""
        return not any(f.severity == "error" for f in self.findings)


def _rules(findings: Iterable[Finding], severity: Severity) -> list[str]:
    return sorted({f.rule for f in findings if f.severity == severity})


def finding(rule: str, section: str, severity: Severity, message: str, where: str | None) -> Finding:
    """A finding, with the argument order every rule module uses."""
    return Finding(rule=rule, section=section, severity=severity, message=message, where=where)


def quote(value: object, limit: int = _QUOTE_LIMIT) -> str:
    """Show untrusted text inside a message: ``repr``-escaped and cut to ``limit`` characters."""
    if isinstance(value, str) and len(value) > limit:
        return repr(value[:limit]) + f"... ({len(value)} characters)"
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def json_pointer(*parts: str | int) -> str:
    """RFC 6901 pointer to a place in the report: ``json_pointer("policies", 0)`` is ``/policies/0``."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in parts)
