"""TLSRPT mutants of the reference MTA (RFC 8460): each swaps one field of ``TlsRptParts``.

Every part is the reference behaviour with one rule broken: a report or JSON hook that changes
one thing after the reference built the report, a media type, a filename, a flag. Each is
observable from outside: the world sees a report (POSTed or mailed) that differs, a delivery
that should not happen, or none that should.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import idna

from reference_impl.mta.config import MtaVariant
from reference_impl.mta.records import TlsResultType
from reference_impl.mta.tlsrpt_parts import TlsRptParts, standard_filename
from reference_impl.tlsrpt.compose import MEDIA_TYPE_JSON, DkimSigner, MailShape
from reference_impl.tlsrpt.model import PolicyType, Report, ResultType
from reference_impl.tlsrpt.record import ReportUri, TlsRptRecord, begins_with_version, select_record
from reference_impl.tlsrpt.retry import Backoff

# -- the report's content (sections 4.1-4.4) ----------------------------------------------------


def totals_off(report: Report) -> Report:
    """4.2.2: total-failure-session-count one less than the failure details add up to."""
    policies = tuple(dataclasses.replace(p, failed=max(p.failed - 1, 0)) for p in report.policies)
    return dataclasses.replace(report, policies=policies)


def success_not_counted(report: Report) -> Report:
    """4.2.1: successful sessions are not counted."""
    policies = tuple(dataclasses.replace(p, successful=0) for p in report.policies)
    return dataclasses.replace(report, policies=policies)


def generic_result_type(report: Report) -> Report:
    """4.3: every failure reported as validation-failure, whatever it was."""
    policies = tuple(
        dataclasses.replace(
            p,
            failures=tuple(dataclasses.replace(f, result_type=ResultType.VALIDATION_FAILURE) for f in p.failures),
        )
        for p in report.policies
    )
    return dataclasses.replace(report, policies=policies)


def no_failure_reason(report: Report) -> Report:
    """4.3.1, 4.3.3: no failure-reason-code, not even for certificate-not-trusted."""
    policies = tuple(
        dataclasses.replace(p, failures=tuple(dataclasses.replace(f, failure_reason_code=None) for f in p.failures))
        for p in report.policies
    )
    return dataclasses.replace(report, policies=policies)


def no_policy_string(report: Report) -> Report:
    """4.4, 4.5: an sts policy without its policy-string."""
    policies = tuple(
        dataclasses.replace(p, policy_strings=()) if p.policy_type is PolicyType.STS else p for p in report.policies
    )
    return dataclasses.replace(report, policies=policies)


def sts_as_no_policy(report: Report) -> Report:
    """4.4: an applied MTA-STS policy reported as no-policy-found."""
    policies = tuple(
        dataclasses.replace(p, policy_type=PolicyType.NO_POLICY_FOUND) if p.policy_type is PolicyType.STS else p
        for p in report.policies
    )
    return dataclasses.replace(report, policies=policies)


def _each_policy(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [entry["policy"] for entry in document.get("policies", []) if isinstance(entry.get("policy"), dict)]


def mx_host_string(document: dict[str, Any]) -> dict[str, Any]:
    """4.4: "mx-host" as a single string (as Appendix B has it) instead of an array."""
    for policy in _each_policy(document):
        if isinstance(policy.get("mx-host"), list):
            policy["mx-host"] = ",".join(policy["mx-host"])
    return document


def local_time(document: dict[str, Any]) -> dict[str, Any]:
    """4.4: the date-range without a zone ("2026-11-28T00:00:00"), not RFC 3339."""
    dates = document.get("date-range", {})
    for key in ("start-datetime", "end-datetime"):
        if isinstance(dates.get(key), str):
            dates[key] = dates[key].removesuffix("Z")
    return document


def no_contact(document: dict[str, Any]) -> dict[str, Any]:
    """4.4: contact-info missing."""
    document.pop("contact-info", None)
    return document


def policy_domain_ulabels(document: dict[str, Any]) -> dict[str, Any]:
    """4.4: the policy-domain in U-labels, not A-labels (only IDN domains change)."""
    for policy in _each_policy(document):
        with contextlib.suppress(idna.IDNAError, UnicodeError):  # not an IDN: left as it is
            policy["policy-domain"] = idna.decode(policy["policy-domain"])
    return document


_DRAFT_KEYS = {
    "policy-domain": "domain",
    "mx-host": "mx-host-pattern",
    "sending-mta-ip": "ip-address",
    "additional-information": "additional-info-uri",
}


def _renamed(entry: dict[str, Any]) -> dict[str, Any]:
    return {_DRAFT_KEYS.get(key, key): value for key, value in entry.items()}


def draft_keys(document: dict[str, Any]) -> dict[str, Any]:
    """4.4: the prose's placeholder names as keys ("domain" for "policy-domain", ...)."""
    for entry in document.get("policies", []):
        if isinstance(entry.get("policy"), dict):
            entry["policy"] = _renamed(entry["policy"])
        if isinstance(entry.get("failure-details"), list):
            entry["failure-details"] = [_renamed(d) if isinstance(d, dict) else d for d in entry["failure-details"]]
    return document


def last_24_hours(day: date, now: float) -> tuple[datetime, datetime]:
    """4.1: the 24 hours before the run instead of the UTC day 00:00-24:00."""
    end = datetime.fromtimestamp(int(now), UTC)
    return end - timedelta(days=1), end


# -- delivery (sections 3, 5) -----------------------------------------------------------------


def generic_json_type(gzip: bool) -> str:
    """5.3, 5.4: the report labelled application/json."""
    return "application/json"


def always_json_type(gzip: bool) -> str:
    """5.4: a gzip body labelled application/tlsrpt+json."""
    return MEDIA_TYPE_JSON


def txt_filename(submitter: str, policy_domain: str, start: datetime, end: datetime, unique: str, gz: bool) -> str:
    """5.1: the extension is .txt, not .json or .json.gz."""
    name = standard_filename(submitter, policy_domain, start, end, unique, gz)
    return name.removesuffix(".gz").removesuffix(".json") + ".txt"


def first_uri_only(uris: tuple[ReportUri, ...]) -> tuple[ReportUri, ...]:
    """3: only the first rua URI is tried, even when it fails."""
    return uris[:1]


def first_of_several_records(records: Sequence[str]) -> TlsRptRecord | None:
    """3: of several v=TLSRPTv1 records, the first is used instead of none."""
    return select_record([text for text in records if begins_with_version(text)][:1])


def unsigned(signer: DkimSigner) -> DkimSigner | None:
    """3: report mail without a DKIM signature."""
    return None


def with_body_length(signer: DkimSigner) -> DkimSigner | None:
    """3: a DKIM signature with l=."""
    return dataclasses.replace(signer, body_length_tag=True)


def refused_as_starttls_not_supported(detail: str) -> TlsResultType | None:
    """4.3.4: a refused connection counted as starttls-not-supported."""
    return TlsResultType.STARTTLS_NOT_SUPPORTED


def _m(name: str, **parts: Any) -> MtaVariant:
    """The reference with one TLSRPT part swapped."""
    return MtaVariant(name=name, tlsrpt=TlsRptParts(**parts))


TLSRPT_MUTANTS = (
    _m("tlsrpt-no-reports", sends_reports=False),
    _m("tlsrpt-wrong-media-type", media_type=generic_json_type),
    _m("tlsrpt-gzip-labelled-json", media_type=always_json_type),
    _m("tlsrpt-no-gzip", gzip=False),
    _m("tlsrpt-totals-off", report_hook=totals_off),
    _m("tlsrpt-success-not-counted", report_hook=success_not_counted),
    _m("tlsrpt-generic-result-type", report_hook=generic_result_type),
    _m("tlsrpt-mx-host-string", json_hook=mx_host_string),
    _m("tlsrpt-local-time", json_hook=local_time),
    _m("tlsrpt-not-utc-day", window=last_24_hours),
    _m("tlsrpt-no-policy-string", report_hook=no_policy_string),
    _m("tlsrpt-policy-type-none", report_hook=sts_as_no_policy),
    _m("tlsrpt-no-retry", backoff=Backoff(horizon_s=0.0)),
    _m("tlsrpt-first-rua-only", rua_choice=first_uri_only),
    _m("tlsrpt-mail-unsigned", dkim=unsigned),
    _m("tlsrpt-dkim-l-tag", dkim=with_body_length),
    _m("tlsrpt-mail-no-report-headers", mail_shape=MailShape(report_headers=False)),
    _m("tlsrpt-mail-not-multipart-report", mail_shape=MailShape(content_type="multipart/mixed")),
    _m("tlsrpt-mail-enforces-sts", mail_exempt_from_tls_policy=False),
    _m("tlsrpt-counts-own-session", records_report_sessions=True),
    _m("tlsrpt-bad-filename", filename=txt_filename),
    _m("tlsrpt-accepts-two-records", record_selector=first_of_several_records),
    _m("tlsrpt-no-contact", json_hook=no_contact),
    _m("tlsrpt-ulabel-domain", json_hook=policy_domain_ulabels),
    _m("tlsrpt-transient-as-failure", transient_result=refused_as_starttls_not_supported),
    _m("tlsrpt-draft-keys", json_hook=draft_keys),
    _m("tlsrpt-no-failure-reason", report_hook=no_failure_reason),
    _m("tlsrpt-strict-https", strict_https=True),
)

TLSRPT_DESCRIPTIONS: dict[str, str] = {
    "tlsrpt-no-reports": "never sends TLSRPT reports (RFC 8460 3, 5)",
    "tlsrpt-wrong-media-type": "labels reports application/json (RFC 8460 5.3, 5.4)",
    "tlsrpt-gzip-labelled-json": "sends a gzip report as application/tlsrpt+json (RFC 8460 5.4)",
    "tlsrpt-no-gzip": "sends reports uncompressed as application/tlsrpt+json (RFC 8460 5.2 SHOULD)",
    "tlsrpt-totals-off": "total-failure-session-count is one less than the failure details (RFC 8460 4.2.2)",
    "tlsrpt-success-not-counted": "successful sessions are not counted (RFC 8460 4.2.1)",
    "tlsrpt-generic-result-type": "every failure is reported as validation-failure (RFC 8460 4.3)",
    "tlsrpt-mx-host-string": "mx-host is a single string, not an array (RFC 8460 4.4)",
    "tlsrpt-local-time": "the date-range has no zone suffix (RFC 8460 4.4, RFC 3339)",
    "tlsrpt-not-utc-day": "a report covers the last 24 hours, not the UTC day (RFC 8460 4.1)",
    "tlsrpt-no-policy-string": "an sts policy is reported without its policy-string (RFC 8460 4.4, 4.5)",
    "tlsrpt-policy-type-none": "an applied MTA-STS policy is reported as no-policy-found (RFC 8460 4.4)",
    "tlsrpt-no-retry": "a failed report POST is never retried (RFC 8460 5.5)",
    "tlsrpt-first-rua-only": "only the first rua URI is tried (RFC 8460 3)",
    "tlsrpt-mail-unsigned": "report mail carries no DKIM signature (RFC 8460 3)",
    "tlsrpt-dkim-l-tag": "report mail is DKIM-signed with l= (RFC 8460 3)",
    "tlsrpt-mail-no-report-headers": "report mail lacks TLS-Report-Domain and TLS-Report-Submitter (RFC 8460 5.3)",
    "tlsrpt-mail-not-multipart-report": "report mail is multipart/mixed, not multipart/report (RFC 8460 5.3)",
    "tlsrpt-mail-enforces-sts": "report mail obeys MTA-STS and is deferred when the policy fails (RFC 8460 3, 5.3.1)",
    "tlsrpt-counts-own-session": "the report mail's own sessions appear in the next report (RFC 8460 3)",
    "tlsrpt-bad-filename": "the report attachment is named .txt (RFC 8460 5.1)",
    "tlsrpt-accepts-two-records": "with two v=TLSRPTv1 records the first is used (RFC 8460 3)",
    "tlsrpt-no-contact": "the report has no contact-info (RFC 8460 4.4)",
    "tlsrpt-ulabel-domain": "policy-domain is written in U-labels (RFC 8460 4.4)",
    "tlsrpt-transient-as-failure": "a refused connection is reported as starttls-not-supported (RFC 8460 4.3.4)",
    "tlsrpt-draft-keys": "JSON keys of the prose placeholders, e.g. domain for policy-domain (RFC 8460 4.4)",
    "tlsrpt-no-failure-reason": "failure details carry no failure-reason-code (RFC 8460 4.3.1, 4.3.3)",
    "tlsrpt-strict-https": "refuses to post to an endpoint whose certificate does not validate (RFC 8460 3)",
}
