"""Checking a domain's TLSRPT record (RFC 8460 section 3) as a sender would find it.

One TXT query for ``_smtp._tls.<domain>`` (A-labels), the record set linted by the same scan the
reference parser uses (``reference_impl.tlsrpt.lint``), so the check and the reference sender
cannot disagree. A failed lookup (SERVFAIL, timeout) is ``record-lookup-failed``, not
``record-none``: the domain may well publish a record. When ``_smtp._tls`` has no TLSRPT record
but ``_smtp._tcp.<domain>`` has one, the likely typo is flagged (``record-wrong-owner``, a
warning; RFC-NOTES 1.2: "the owner name is ``_smtp._tls``, not ``_smtp._tcp``").
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import dns.asyncresolver

from reference_impl.mtasts.discovery import TxtAnswer
from reference_impl.mtasts.fetch import TxtLookup, txt_lookup
from reference_impl.tlsrpt.errors import Finding, TlsRptError
from reference_impl.tlsrpt.lint import lint_record_set, looks_like_tlsrpt
from reference_impl.tlsrpt.record import TlsRptRecord, begins_with_version, record_name, select_record

__all__ = ["TlsRptCheckConfig", "TlsRptDomainReport", "check_tlsrpt_domain", "presentation"]

SECTION = "3"


@dataclass(frozen=True, slots=True)
class TlsRptCheckConfig:
    resolver: tuple[str, int] | None = None  # None: the system's resolver
    timeout_s: float = 10.0


@dataclass
class TlsRptDomainReport:
    """What the check found: findings, the TXT records as seen, and the record senders use."""

    domain: str
    name: str = ""  # the owner name queried, "_smtp._tls.<domain in A-labels>"
    lookup_status: str = ""  # ok / nxdomain / nodata / servfail / timeout
    findings: list[Finding] = field(default_factory=list)
    records: list[str] = field(default_factory=list)  # each RR's character-strings joined
    record: TlsRptRecord | None = None
    evidence: list[str] = field(default_factory=list)  # the lookups and the RRs, quoted as in a zone file

    @property
    def errors(self) -> list[str]:
        return sorted({f.rule for f in self.findings if f.severity == "error"})

    @property
    def warnings(self) -> list[str]:
        return sorted({f.rule for f in self.findings if f.severity == "warning"})

    @property
    def ok(self) -> bool:
        return not self.errors

    def facts(self) -> dict[str, Any]:
        return {
            "errors": self.errors,
            "warnings": self.warnings,
            "rua": [uri.uri for uri in self.record.rua] if self.record else [],
            "ok": self.ok,
        }


def presentation(strings: tuple[bytes, ...]) -> str:
    """One TXT RR as in a zone file: each character-string quoted, ``"`` and ``\\`` escaped, others as \\DDD."""
    quoted = []
    for data in strings:
        text = "".join(
            "\\" + chr(byte) if byte in b'"\\' else chr(byte) if 0x20 <= byte < 0x7F else f"\\{byte:03d}"
            for byte in data
        )
        quoted.append(f'"{text}"')
    return " ".join(quoted) if quoted else '""'


def _make_resolver(config: TlsRptCheckConfig) -> dns.asyncresolver.Resolver:
    if config.resolver is None:
        resolver = dns.asyncresolver.Resolver()
    else:
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = [config.resolver[0]]
        resolver.port = config.resolver[1]
    resolver.lifetime = config.timeout_s
    return resolver


def _joined(answer: TxtAnswer) -> list[str]:
    # 3: character-strings concatenated without spaces; bytes that are not UTF-8 become U+FFFD,
    # which the grammar (ASCII only) then rejects.
    return [b"".join(rr).decode("utf-8", "replace") for rr in answer.rrs]


async def check_tlsrpt_domain(domain: str, config: TlsRptCheckConfig) -> TlsRptDomainReport:
    """Look up and lint ``_smtp._tls.<domain>``; never raises for anything the DNS returns."""
    report = TlsRptDomainReport(domain=domain.removesuffix("."))
    try:
        report.name = record_name(report.domain)
    except TlsRptError as exc:
        report.findings.append(Finding(exc.rule, exc.section, "error", exc.detail))
        return report
    resolver = _make_resolver(config)
    deadline = time.monotonic() + config.timeout_s  # one budget for both lookups
    lookup = txt_lookup(resolver)
    answer = await lookup(report.name)
    report.lookup_status = answer.status
    report.evidence.append(f"TXT {report.name}: {answer.status}, {len(answer.rrs)} record(s)")
    report.evidence += [f"  {presentation(rr)}" for rr in answer.rrs]
    if answer.status in ("servfail", "timeout"):
        message = f"the TXT lookup of {report.name} failed ({answer.status}): senders cannot see a record"
        report.findings.append(Finding("record-lookup-failed", SECTION, "error", message))
        return report
    report.records = _joined(answer)
    report.findings += lint_record_set(report.records)
    try:
        report.record = select_record(report.records)
    except TlsRptError:
        report.record = None  # the lint findings already name the rule
    remaining = deadline - time.monotonic()
    if remaining > 0 and not any(begins_with_version(text) for text in report.records):
        resolver.lifetime = remaining
        await _check_wrong_owner(report, lookup)
    return report


async def _check_wrong_owner(report: TlsRptDomainReport, lookup: TxtLookup) -> None:
    """``_smtp._tcp`` instead of ``_smtp._tls``: a common typo that leaves the domain without TLSRPT."""
    wrong = "_smtp._tcp." + report.name.removeprefix("_smtp._tls.")
    answer = await lookup(wrong)
    texts = _joined(answer) if answer.status == "ok" else []
    if not any(begins_with_version(text) or looks_like_tlsrpt(text) for text in texts):
        return
    report.evidence.append(f"TXT {wrong}: {answer.status}, {len(answer.rrs)} record(s)")
    report.evidence += [f"  {presentation(rr)}" for rr in answer.rrs]
    message = f"a TLSRPT record is published at {wrong}; senders only look at {report.name}"
    report.findings.append(Finding("record-wrong-owner", SECTION, "warning", message))
