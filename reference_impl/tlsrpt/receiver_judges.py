"""What the receiver asks of the report validator (RFC 8460 sections 4.4, 5.1-5.3).

The receiver never judges a report's content itself: it asks the validator
(``reference_impl.tlsrpt.validate``), so the receiver and the validator cannot disagree about
what a valid report is. The validator is injected as a callable shaped like its two entry
points, ``validate_report_payload`` and ``validate_report_mail``; the defaults import them
lazily, so a test can run the receiver against a stub and the module graph stays acyclic.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any, Protocol, cast

from reference_impl.tlsrpt.errors import Finding

__all__ = [
    "MailJudge",
    "PayloadJudge",
    "TxtLookup",
    "ValidationResult",
    "default_mail_judge",
    "default_payload_judge",
    "error_rules",
]

TxtLookup = Callable[[str], list[bytes] | None]
"""``txt_lookup(name)``: the TXT records at ``name`` (no trailing dot), or None when there are none."""


class ValidationResult(Protocol):
    """The part of the validator's ``Validation`` the receiver reads."""

    @property
    def findings(self) -> Sequence[Finding]: ...

    @property
    def report(self) -> dict[str, Any] | None: ...


class PayloadJudge(Protocol):
    """``validate_report_payload``: a report body as sent over HTTPS or as a MIME part."""

    def __call__(
        self, data: bytes, *, content_type: str | None = None, filename: str | None = None
    ) -> ValidationResult: ...


class MailJudge(Protocol):
    """``validate_report_mail``: a whole report message (headers, MIME, DKIM)."""

    def __call__(self, message: bytes, *, txt_lookup: TxtLookup | None) -> ValidationResult: ...


def error_rules(findings: Sequence[Finding]) -> list[str]:
    """The rule ids of the error findings, in order, without repeats."""
    return list(dict.fromkeys(finding.rule for finding in findings if finding.severity == "error"))


def _validator_function(name: str) -> object:
    try:
        module = importlib.import_module("reference_impl.tlsrpt.validate")
    except ImportError as exc:
        raise RuntimeError("reference_impl.tlsrpt.validate is not available: inject a judge") from exc
    return getattr(module, name)


def default_payload_judge() -> PayloadJudge:
    """``reference_impl.tlsrpt.validate.validate_report_payload``."""
    return cast(PayloadJudge, _validator_function("validate_report_payload"))


def default_mail_judge() -> MailJudge:
    """``reference_impl.tlsrpt.validate.validate_report_mail``."""
    return cast(MailJudge, _validator_function("validate_report_mail"))
