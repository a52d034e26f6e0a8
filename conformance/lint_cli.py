"""What ``mailtls mta-sts`` and ``mailtls tlsrpt`` share: printing findings and the exit status.

Both commands lint a record, a policy or a report into findings (``reference_impl.mtasts`` and
``reference_impl.tlsrpt`` each have their own ``Finding``, of the same shape) and report them
the same way: one line per finding and the error and warning counts, or with ``--json`` an
object ``{"ok": ..., "findings": [...]}`` whose rows are the findings' fields. Exit status:
0 no error (warnings allowed), 1 at least one error.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any, ClassVar, Protocol

from conformance.errors import UsageError

EXIT_OK, EXIT_FINDINGS = 0, 1


class LintFinding(Protocol):
    """A ``Finding`` of either core: a dataclass with a ``severity`` and a readable ``str()``."""

    __dataclass_fields__: ClassVar[dict[str, Any]]

    @property
    def severity(self) -> str: ...


class DomainCheck(Protocol):
    """What a ``check-domain`` returns: the domain, its findings and the evidence gathered."""

    @property
    def domain(self) -> str: ...

    @property
    def findings(self) -> Sequence[LintFinding]: ...

    @property
    def evidence(self) -> Sequence[str]: ...


def parse_resolver(text: str | None) -> tuple[str, int] | None:
    """``--resolver ADDR[:PORT]`` (an IPv6 address alone, or in brackets with a port); port 53 by default."""
    if text is None:
        return None
    host, sep, port = text.rpartition(":") if text.count(":") == 1 else (text, "", "")
    if sep and not port.isdigit():
        raise UsageError(f"--resolver {text!r}: not ADDR or ADDR:PORT")
    return (host if sep else text).strip("[]"), int(port) if sep else 53


def finding_row(finding: LintFinding) -> dict[str, Any]:
    """The finding as a JSON row: its fields."""
    return dataclasses.asdict(finding)


def counts(findings: Sequence[LintFinding]) -> tuple[int, int]:
    """(errors, warnings); an ``info`` finding counts as neither."""
    errors = sum(1 for f in findings if f.severity == "error")
    warnings = sum(1 for f in findings if f.severity == "warning")
    return errors, warnings


def print_findings(findings: Sequence[LintFinding], as_json: bool, extra: dict[str, Any] | None = None) -> int:
    """Print the findings (``extra`` joins the JSON object) and return the exit status."""
    errors, warnings = counts(findings)
    if as_json:
        print(json.dumps({"ok": not errors, "findings": [finding_row(f) for f in findings]} | (extra or {}), indent=2))
    else:
        for finding in findings:
            print(finding)
        print(f"{errors} error(s), {warnings} warning(s)")
    return EXIT_FINDINGS if errors else EXIT_OK


def print_domain_check(report: DomainCheck, as_json: bool) -> int:
    """A ``check-domain`` result: the evidence (in text), then the findings; the exit status."""
    if not as_json:
        for line in report.evidence:
            print(f"  {line}")
    return print_findings(report.findings, as_json, {"domain": report.domain, "evidence": list(report.evidence)})
