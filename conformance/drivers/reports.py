"""Judging the TLSRPT reports a sending MTA emits (RFC 8460 sections 4 and 5).

After a sending phase the suite asks the target for its reports (a command, the reference's
report run, or nothing but waiting) and watches the world: POSTs to the scenario's HTTPS
report endpoints and mail carrying a TLSRPT report part, to the world's mailbox or to any of
the scenario's MX hosts. Each report is validated by the suite's validator
(``reference_impl.tlsrpt.validate``, written from the RFC apart from the reference's
generator) and the checks read what it states about the scenario's domain.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from conformance.catalog.model import (
    NoReport,
    ReportCheck,
    ReportFailure,
    ReportPolicy,
    ReportReceived,
    ReportValid,
)
from conformance.drivers.checks import Decision
from conformance.world.observe import DeliveredMessage, ObservationLog, ReportPost
from reference_impl.tlsrpt.errors import Finding
from reference_impl.tlsrpt.validate import Validation, validate_report_mail, validate_report_payload

TxtLookup = Callable[[str], list[bytes] | None]
_SUMMARY_LIMIT = 1500  # characters of a report's JSON shown in the evidence


@dataclass(frozen=True, slots=True)
class ReceivedReport:
    """One report the world received, and what the validator made of it."""

    via: Literal["https", "mail"]
    to: str  # "host/path" for HTTPS, the recipient address for mail
    accepted: bool  # HTTPS: the endpoint answered 2xx; mail: the peer accepted it (always)
    status: int | None
    validation: Validation

    def describe(self) -> str:
        answer = f", answered {self.status}" if self.via == "https" else ""
        return f"report via {self.via} to {self.to}{answer}: form {self.validation.form}, " + (
            "valid" if self.validation.ok else f"errors {', '.join(self.validation.errors)}"
        )

    def policies_for(self, domain: str) -> list[dict[str, Any]]:
        """The "policies" entries about ``domain`` (any case, trailing dot ignored)."""
        report = self.validation.report
        if not isinstance(report, dict) or not isinstance(report.get("policies"), list):
            return []
        wanted = domain.lower().rstrip(".")
        out = []
        for entry in report["policies"]:
            policy = entry.get("policy") if isinstance(entry, dict) else None
            name = policy.get("policy-domain") if isinstance(policy, dict) else None
            if isinstance(name, str) and name.lower().rstrip(".") == wanted:
                out.append(entry)
        return out


def is_report_mail(data: bytes) -> bool:
    """Whether a delivered message carries a TLSRPT report (section 5.3) rather than, say, a
    bounce (``report-type=delivery-status``) or the scenario's own message."""
    head = data[:65536].lower()
    return b"application/tlsrpt" in head or b"report-type=tlsrpt" in head or b'report-type="tlsrpt"' in head


def collect_reports(log: ObservationLog, txt_lookup: TxtLookup | None) -> list[ReceivedReport]:
    """Every report in ``log``, in arrival order, each validated."""
    reports: list[ReceivedReport] = []
    for event in log.events:
        if isinstance(event, ReportPost):
            validation = validate_report_payload(event.body, content_type=event.content_type)
            accepted = event.status is not None and 200 <= event.status < 300
            to = f"{event.host}{event.path}"
            reports.append(ReceivedReport("https", to, accepted, event.status, validation))
        elif isinstance(event, DeliveredMessage) and is_report_mail(event.data):
            validation = validate_report_mail(event.data, txt_lookup=txt_lookup)
            to = ", ".join(event.rcpt_tos)
            reports.append(ReceivedReport("mail", to, True, None, validation))
    return reports


def _matching(reports: Sequence[ReceivedReport], via: str, to: str | None = None) -> list[ReceivedReport]:
    out = [r for r in reports if via in ("any", r.via)]
    if to is not None:
        wanted = to.lower()
        out = [r for r in out if wanted in r.to.lower()]
    return out


def report_evidence(reports: Sequence[ReceivedReport]) -> list[str]:
    lines: list[str] = []
    for report in reports:
        lines.append(report.describe())
        lines += [f"  {finding}" for finding in report.validation.findings]
        if report.validation.report is not None:
            text = json.dumps(report.validation.report, sort_keys=True)
            lines.append("  json: " + (text if len(text) <= _SUMMARY_LIMIT else text[:_SUMMARY_LIMIT] + " ..."))
    return lines


def _none_yet(final: bool, what: str, waited: str) -> Decision | None:
    return Decision(False, f"no {what} arrived {waited}") if final else None


def judge_report_check(
    check: ReportCheck,
    reports: Sequence[ReceivedReport],
    *,
    domain: str,
    expand: Callable[[str], str],
    final: bool,
    waited: str,
) -> Decision | None:
    """Decide one report check, or None while more reports could still change the answer."""
    if isinstance(check, ReportReceived):
        found = _matching(reports, check.via, expand(check.to) if check.to else None)
        if check.accepted:
            found = [r for r in found if r.accepted]
        if check.compressed is not None:
            wanted_form = "gzip" if check.compressed else "json"
            others = [r for r in found if r.validation.form != wanted_form]
            found = [r for r in found if r.validation.form == wanted_form]
            if others and not found and final:
                return Decision(
                    False, f"report(s) arrived, but not as {wanted_form}", tuple(r.describe() for r in others)
                )
        if found:
            return Decision(True, found[0].describe(), tuple(r.describe() for r in found))
        kind = "accepted report" if check.accepted else "report"
        where = f" via {check.via}" if check.via != "any" else ""
        return _none_yet(final, kind + where + (f" to {expand(check.to)}" if check.to else ""), waited)
    if isinstance(check, NoReport):
        if reports:
            return Decision(False, f"{len(reports)} report(s) arrived", tuple(r.describe() for r in reports))
        return Decision(True, f"no report arrived {waited}") if final else None
    if isinstance(check, ReportValid):
        return _judge_valid(check, _matching(reports, check.via), final, waited)
    if check.policy_domain is not None:
        domain = expand(check.policy_domain)
    if isinstance(check, ReportPolicy):
        return _judge_policy(check, reports, domain, expand, final, waited)
    return _judge_failure(check, reports, domain, expand, final, waited)


def _judge_valid(check: ReportValid, reports: Sequence[ReceivedReport], final: bool, waited: str) -> Decision | None:
    if not reports:
        return _none_yet(final, "report to validate", waited)
    if not final:
        return None  # a later report (another rua) must be judged too
    relevant: list[Finding] = []
    for report in reports:
        for finding in report.validation.findings:
            if finding.severity == "info" or (check.rules and finding.rule not in check.rules):
                continue
            relevant.append(finding)
    scope = f" (rules {', '.join(check.rules)})" if check.rules else ""
    if not relevant:
        return Decision(True, f"{len(reports)} report(s) valid{scope}")
    errors = [f for f in relevant if f.severity == "error"]
    shown = tuple(str(f) for f in relevant[:20])
    if errors:
        return Decision(False, f"{len(errors)} error(s){scope}: {errors[0]}", shown)
    return Decision(False, f"{len(relevant)} warning(s){scope}: {relevant[0]}", shown, warn_only=True)


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _policy_matches(check: ReportPolicy, entry: dict[str, Any], expand: Callable[[str], str]) -> str | None:
    """None when ``entry`` satisfies the check, else what differs."""
    policy = entry.get("policy") if isinstance(entry.get("policy"), dict) else {}
    summary = entry.get("summary") if isinstance(entry.get("summary"), dict) else {}
    assert isinstance(policy, dict) and isinstance(summary, dict)
    if check.policy_type is not None and policy.get("policy-type") != check.policy_type:
        return f"policy-type {policy.get('policy-type')!r}, expected {check.policy_type!r}"
    for key, wanted in (
        ("total-successful-session-count", check.successful),
        ("total-failure-session-count", check.failed),
    ):
        if wanted is not None and _count(summary.get(key)) != wanted:
            return f"{key} {summary.get(key)!r}, expected {wanted}"
    strings = policy.get("policy-string")
    strings = [s.strip() for s in strings if isinstance(s, str)] if isinstance(strings, list) else []
    for line in check.policy_strings_include:
        if expand(line).strip() not in strings:
            return f"policy-string {strings!r} lacks {expand(line)!r}"
    if check.mx_hosts is not None:
        got = policy.get("mx-host")
        # The string form (Appendix B) is read leniently, as a list of patterns; the validator
        # flags it (mx-host-string) so that a report-valid check can WARN about it.
        got_set = (
            set(re.split(r"[\s,]+", got.strip()))
            if isinstance(got, str)
            else {h for h in got if isinstance(h, str)}
            if isinstance(got, list)
            else set()
        )
        if got_set != {expand(h) for h in check.mx_hosts}:
            return f"mx-host {got!r}, expected {[expand(h) for h in check.mx_hosts]!r}"
    return None


def _judge_policy(
    check: ReportPolicy,
    reports: Sequence[ReceivedReport],
    domain: str,
    expand: Callable[[str], str],
    final: bool,
    waited: str,
) -> Decision | None:
    misses: list[str] = []
    for report in reports:
        for entry in report.policies_for(domain):
            miss = _policy_matches(check, entry, expand)
            if miss is None:
                shown = json.dumps(entry, sort_keys=True)[:400]
                if check.absent:
                    return Decision(False, f"the report has a policy entry for {domain} as stated", (shown,))
                return Decision(True, f"policy entry for {domain} as expected ({report.describe()})")
            misses.append(miss)
    if not final:
        return None
    missing = _no_policy_entry(reports, domain, waited)
    if missing is not None:
        return missing
    if check.absent:
        return Decision(True, f"no policy entry for {domain} as stated")
    return Decision(False, misses[0], tuple(misses[:10]))


def _no_policy_entry(reports: Sequence[ReceivedReport], domain: str, waited: str) -> Decision | None:
    """The final failure when no report speaks of ``domain`` at all (absence of a detail needs
    a report to be absent from); None when one does."""
    if any(r.policies_for(domain) for r in reports):
        return None
    return Decision(False, f"no report with a policy entry for {domain} arrived {waited}")


def _failure_entries(reports: Sequence[ReceivedReport], domain: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for report in reports:
        for entry in report.policies_for(domain):
            details = entry.get("failure-details")
            if isinstance(details, list):
                out += [d for d in details if isinstance(d, dict)]
    return out


def _judge_failure(
    check: ReportFailure,
    reports: Sequence[ReceivedReport],
    domain: str,
    expand: Callable[[str], str],
    final: bool,
    waited: str,
) -> Decision | None:
    details = _failure_entries(reports, domain)
    mx = expand(check.mx_host).lower() if check.mx_host else None
    same_type = [d for d in details if d.get("result-type") == check.result_type]
    hits = [
        d
        for d in same_type
        if (mx is None or str(d.get("receiving-mx-hostname", "")).lower().rstrip(".") == mx)
        and (check.count is None or _count(d.get("failed-session-count")) == check.count)
    ]
    if check.with_reason:
        reasonless = [d for d in hits if not d.get("failure-reason-code")]
        hits = [d for d in hits if d.get("failure-reason-code")]
        if reasonless and not hits and final:
            return Decision(False, f"the report states {check.result_type} without a failure-reason-code")
    shown = tuple(json.dumps(d, sort_keys=True)[:300] for d in details[:10])
    what = check.result_type + (f" at {mx}" if mx else "") + (f" x{check.count}" if check.count else "")
    if check.absent:
        if same_type and (mx is None or hits):
            return Decision(False, f"the report states {what}", shown)
        if not final:
            return None
        return _no_policy_entry(reports, domain, waited) or Decision(True, f"no {what} in the report", shown)
    if hits:
        return Decision(True, f"the report states {what}", shown)
    if not final:
        return None
    return _no_policy_entry(reports, domain, waited) or Decision(False, f"the report does not state {what}", shown)
