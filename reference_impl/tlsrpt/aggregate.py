"""From TLS session results to RFC 8460 reports: one report per Policy Domain and UTC day, sans-IO.

RFC 8460 section 4 (the report's fields), 4.1 (one full UTC day), 4.2 (the summary counts),
4.3 (result types), 4.4 (the JSON schema, through :mod:`reference_impl.tlsrpt.model`).

* **Which sessions.** Those whose time lies in the report window, ``[start, end)``; by default
  the UTC day ``00:00-24:00`` (section 4.1).
* **Policies.** Sessions are grouped by the policy that was applied to them: policy type,
  policy string and ``mx`` patterns (section 4.4 "policy"). A domain whose MTA-STS policy
  changed during the day gets one entry per policy, and a DANE policy (policy type ``tlsa``,
  the TLSA records as policy strings, section 4.5) is an entry of its own per TLSA RRset, next
  to the MTA-STS or no-policy entry of the domain's other MX hosts; "policies" is always an
  array (section 4). ``mx-host`` is written for ``sts`` policies only (section 4.4:
  "In the case where 'policy-type' is 'sts'").
* **Counts.** ``total-successful-session-count`` counts the sessions that negotiated TLS as
  the policy asked (4.2.1); ``total-failure-session-count`` the others (4.2.2), so it always
  equals the sum of the ``failed-session-count`` of its failure details.
* **Failure details.** Failed sessions are grouped by (result type, receiving MX host,
  receiving IP, receiving MX HELO, failure reason, sending IP), each group one entry with
  its count. A policy-level failure without an SMTP session (``sts-policy-fetch-error``,
  ``sts-policy-invalid``, ``sts-webpki-invalid``: the record has no MX host) becomes an entry
  without the MX and IP fields; an MX that fails the policy's ``mx`` patterns has a host
  name but no session, so no IPs.
* **Names.** The Policy Domain and the ``mx`` patterns are written in A-labels (section 4.4:
  "the domain MUST consist of the Punycode-encoded A-labels"). A domain that has no A-label
  form (it could never have been looked up either) is left out of every report.

The session results are read through the :class:`SessionResult` protocol, which the
reference MTA's ``TlsSessionRecord`` satisfies; this module imports nothing from the MTA.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

from reference_impl.tlsrpt.errors import RecordError
from reference_impl.tlsrpt.model import FailureDetail, PolicyReport, PolicyType, Report, ResultType, day_window
from reference_impl.tlsrpt.record import record_name

__all__ = [
    "SUCCESS",
    "Reporter",
    "SessionResult",
    "a_label",
    "build_report",
    "build_reports",
    "in_window",
    "new_report_id",
    "policy_domains",
    "report_id_prefix",
    "report_token",
]

SUCCESS = "success"
"""The result type value of a session that counts in ``total-successful-session-count``."""

Window = tuple[datetime, datetime]


class _Named(Protocol):
    @property
    def value(self) -> str: ...


class SessionResult(Protocol):
    """What aggregation reads of one recorded session (``TlsSessionRecord`` fits)."""

    @property
    def policy_domain(self) -> str: ...
    @property
    def mx_host(self) -> str: ...
    @property
    def ip(self) -> str: ...
    @property
    def result_type(self) -> _Named: ...
    @property
    def at(self) -> float: ...
    @property
    def failure_reason(self) -> str | None: ...
    @property
    def mx_helo(self) -> str | None: ...
    @property
    def policy_type(self) -> str: ...
    @property
    def policy_strings(self) -> tuple[str, ...]: ...
    @property
    def mx_patterns(self) -> tuple[str, ...]: ...
    @property
    def sending_ip(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Reporter:
    """Who sends the reports (section 4: "the organization responsible for the report")."""

    organization_name: str
    contact_info: str  # section 4.4 "contact-info": an addr-spec
    reporting_domain: str  # the right-hand side of report-ids


def a_label(domain: str) -> str | None:
    """``domain`` in A-labels, lower case, no root dot; ``None`` when it has no such form."""
    try:
        return record_name(domain).removeprefix("_smtp._tls.")
    except RecordError:
        return None


def _pattern_a_label(pattern: str) -> str:
    """An ``mx`` pattern in A-labels; a leading ``*.`` stays (RFC 8461 section 4.1)."""
    wild, rest = ("*.", pattern[2:]) if pattern.startswith("*.") else ("", pattern)
    converted = a_label(rest) if rest else None
    return wild + converted if converted is not None else pattern


def in_window(record: SessionResult, window: Window) -> bool:
    """Whether ``record`` happened in ``[start, end)`` (section 4.1: 00:00-24:00 UTC)."""
    start, end = window
    return start.timestamp() <= record.at < end.timestamp()


def policy_domains(records: Iterable[SessionResult], window: Window) -> list[str]:
    """The Policy Domains (A-labels, sorted) with at least one session in ``window``."""
    found = {a_label(r.policy_domain) for r in records if in_window(r, window)}
    return sorted(domain for domain in found if domain is not None)


def report_token() -> str:
    """A random unique-id (section 5.1: ``1*(ALPHA / DIGIT)``)."""
    return secrets.token_hex(8)


def report_id_prefix(day: date, policy_domain: str) -> str:
    """What every report-id of ``day`` and ``policy_domain`` starts with."""
    return f"{day.isoformat()}.{policy_domain}."


def new_report_id(day: date, policy_domain: str, reporting_domain: str, token: str) -> str:
    """``<day>.<policy-domain>.<token>@<reporting-domain>``: unique per report, and an
    ``id-left "@" id-right`` as the Subject's ``Report-ID: <...>`` wants (section 5.3)."""
    return f"{report_id_prefix(day, policy_domain)}{token}@{reporting_domain}"


_DetailKey = tuple[str, str, str, str, str, str]  # result, mx host, receiving ip, helo, reason, sending ip


def _result_type(value: str) -> ResultType:
    try:
        return ResultType(value)
    except ValueError:
        return ResultType.VALIDATION_FAILURE  # section 4.3.3: the catch-all for anything else


def _policy_type(value: str) -> PolicyType:
    try:
        return PolicyType(value)
    except ValueError:
        return PolicyType.NO_POLICY_FOUND


def _detail_key(record: SessionResult) -> _DetailKey:
    return (
        record.result_type.value,
        record.mx_host,
        record.ip,
        record.mx_helo or "",
        record.failure_reason or "",
        record.sending_ip,
    )


def _detail(key: _DetailKey, count: int) -> FailureDetail:
    result, mx_host, ip, helo, reason, sending_ip = key
    # A policy-level failure has no MX host: no MX fields, no IPs (nothing was connected to).
    return FailureDetail(
        result_type=_result_type(result),
        failed_session_count=count,
        sending_mta_ip=sending_ip or None,
        receiving_mx_hostname=mx_host or None,
        receiving_mx_helo=(helo or None) if mx_host else None,
        receiving_ip=(ip or None) if mx_host else None,
        failure_reason_code=reason or None,
    )


def _policy_report(
    domain: str, policy: tuple[str, tuple[str, ...], tuple[str, ...]], records: list[SessionResult]
) -> PolicyReport:
    policy_type, strings, patterns = policy
    successes = sum(1 for r in records if r.result_type.value == SUCCESS)
    failures = Counter(_detail_key(r) for r in records if r.result_type.value != SUCCESS)
    details = tuple(_detail(key, count) for key, count in sorted(failures.items()))
    return PolicyReport(
        policy_type=_policy_type(policy_type),
        policy_domain=domain,
        policy_strings=strings,
        # 4.4: "mx-host" is the MTA-STS policy's patterns; a tlsa or no-policy entry has none.
        mx_hosts=tuple(_pattern_a_label(p) for p in patterns) if policy_type == PolicyType.STS.value else (),
        successful=successes,
        failed=sum(d.failed_session_count for d in details),  # 4.2.2: equals the details' sum
        failures=details,
    )


def build_report(
    records: Iterable[SessionResult],
    *,
    policy_domain: str,
    window: Window,
    reporter: Reporter,
    report_id: str,
) -> Report | None:
    """The report for ``policy_domain`` (any form; written in A-labels) over ``window``;
    ``None`` when no session of that domain falls in the window."""
    domain = a_label(policy_domain)
    if domain is None:
        return None
    by_policy: dict[tuple[str, tuple[str, ...], tuple[str, ...]], list[SessionResult]] = {}
    for record in records:
        if in_window(record, window) and a_label(record.policy_domain) == domain:
            key = (record.policy_type, record.policy_strings, record.mx_patterns)
            by_policy.setdefault(key, []).append(record)
    if not by_policy:
        return None
    policies = tuple(_policy_report(domain, key, by_policy[key]) for key in sorted(by_policy))
    start, end = window
    return Report(
        organization_name=reporter.organization_name,
        start=start,
        end=end,
        contact_info=reporter.contact_info,
        report_id=report_id,
        policies=policies,
    )


def build_reports(
    records: Iterable[SessionResult],
    *,
    day: date,
    reporter: Reporter,
    domains: Collection[str] | None = None,
    window: Window | None = None,
) -> list[Report]:
    """One report per Policy Domain with sessions on the UTC ``day`` (or in ``window``),
    only for ``domains`` when given; each with a fresh report-id."""
    span = window or day_window(day)
    kept = [r for r in records if in_window(r, span)]
    wanted = None if domains is None else {a for a in map(a_label, domains) if a is not None}
    reports = []
    for domain in policy_domains(kept, span):
        if wanted is not None and domain not in wanted:
            continue
        report_id = new_report_id(day, domain, reporter.reporting_domain, report_token())
        report = build_report(kept, policy_domain=domain, window=span, reporter=reporter, report_id=report_id)
        if report is not None:
            reports.append(report)
    return reports
