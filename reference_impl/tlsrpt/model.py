"""The TLSRPT report (RFC 8460 section 4.4) as immutable values, and its JSON form.

The JSON keys are those of the schema in section 4.4 (``policy-domain``, ``mx-host``,
``sending-mta-ip``, ``additional-information``), not the placeholder names of the prose that
follows it (``domain``, ``mx-host-pattern``, ``ip-address``, ``additional-info-uri``).
``mx-host`` is written as a JSON array of strings, as section 4.4 says (Appendix B sends a
single string; the validator accepts both and flags the string form).

The report window is one UTC day (section 4.1: "24-hour periods ... in UTC"); ``end`` is
written as the next midnight (``...T00:00:00Z``), the form the prose of section 4.4 uses;
``23:59:59Z`` (Appendix B) is accepted by the validator.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any

__all__ = [
    "FailureDetail",
    "PolicyReport",
    "PolicyType",
    "Report",
    "ResultType",
    "day_window",
    "rfc3339",
]


class ResultType(StrEnum):
    """The result types registered by RFC 8460 section 6.6 (defined in section 4.3)."""

    STARTTLS_NOT_SUPPORTED = "starttls-not-supported"  # 4.3.1
    CERTIFICATE_HOST_MISMATCH = "certificate-host-mismatch"  # 4.3.1
    CERTIFICATE_EXPIRED = "certificate-expired"  # 4.3.1
    CERTIFICATE_NOT_TRUSTED = "certificate-not-trusted"  # 4.3.1
    VALIDATION_FAILURE = "validation-failure"  # 4.3.3
    TLSA_INVALID = "tlsa-invalid"  # 4.3.2.1
    DNSSEC_INVALID = "dnssec-invalid"  # 4.3.2.1
    DANE_REQUIRED = "dane-required"  # 4.3.2.1
    STS_POLICY_FETCH_ERROR = "sts-policy-fetch-error"  # 4.3.2.2
    STS_POLICY_INVALID = "sts-policy-invalid"  # 4.3.2.2
    STS_WEBPKI_INVALID = "sts-webpki-invalid"  # 4.3.2.2


class PolicyType(StrEnum):
    """Section 4.4 "policy-type"."""

    TLSA = "tlsa"
    STS = "sts"
    NO_POLICY_FOUND = "no-policy-found"


@dataclass(frozen=True, slots=True)
class FailureDetail:
    """One entry of "failure-details": sessions that failed the same way at the same MX."""

    result_type: ResultType
    failed_session_count: int
    sending_mta_ip: str | None = None
    receiving_mx_hostname: str | None = None
    receiving_mx_helo: str | None = None  # optional
    receiving_ip: str | None = None
    failure_reason_code: str | None = None
    additional_information: str | None = None  # optional URI

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"result-type": self.result_type.value}
        optional = (
            ("sending-mta-ip", self.sending_mta_ip),
            ("receiving-mx-hostname", self.receiving_mx_hostname),
            ("receiving-mx-helo", self.receiving_mx_helo),
            ("receiving-ip", self.receiving_ip),
        )
        out.update({key: value for key, value in optional if value is not None})
        out["failed-session-count"] = self.failed_session_count
        if self.additional_information is not None:
            out["additional-information"] = self.additional_information
        if self.failure_reason_code is not None:
            out["failure-reason-code"] = self.failure_reason_code
        return out


@dataclass(frozen=True, slots=True)
class PolicyReport:
    """One entry of "policies": a policy domain, the policy applied, counts and failures."""

    policy_type: PolicyType
    policy_domain: str  # A-labels (section 4.4)
    policy_strings: tuple[str, ...] = ()  # sts: one string per policy line; tlsa: one per RR
    mx_hosts: tuple[str, ...] = ()  # sts: the policy's mx patterns
    successful: int = 0
    failed: int = 0
    failures: tuple[FailureDetail, ...] = ()

    def to_json(self) -> dict[str, Any]:
        policy: dict[str, Any] = {"policy-type": self.policy_type.value}
        if self.policy_strings:
            policy["policy-string"] = list(self.policy_strings)
        policy["policy-domain"] = self.policy_domain
        if self.mx_hosts:
            policy["mx-host"] = list(self.mx_hosts)
        out: dict[str, Any] = {
            "policy": policy,
            "summary": {
                "total-successful-session-count": self.successful,
                "total-failure-session-count": self.failed,
            },
        }
        if self.failures:
            out["failure-details"] = [failure.to_json() for failure in self.failures]
        return out


@dataclass(frozen=True, slots=True)
class Report:
    """A whole report: who sends it, the day it covers, and one entry per policy."""

    organization_name: str
    start: datetime  # aware, UTC
    end: datetime
    contact_info: str  # an addr-spec or a URI (section 4.4 "contact-info")
    report_id: str
    policies: tuple[PolicyReport, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "organization-name": self.organization_name,
            "date-range": {"start-datetime": rfc3339(self.start), "end-datetime": rfc3339(self.end)},
            "contact-info": self.contact_info,
            "report-id": self.report_id,
            "policies": [policy.to_json() for policy in self.policies],
        }

    def to_bytes(self) -> bytes:
        """I-JSON (RFC 7493): UTF-8, no duplicate keys, integers only."""
        return json.dumps(self.to_json(), ensure_ascii=False, indent=1).encode("utf-8")


def rfc3339(moment: datetime) -> str:
    """``2026-11-28T00:00:00Z``: RFC 3339 in UTC with the ``Z`` suffix (section 4.4)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def day_window(day: date) -> tuple[datetime, datetime]:
    """The UTC day ``day`` as [midnight, next midnight)."""
    start = datetime.combine(day, time(0), tzinfo=UTC)
    return start, start + timedelta(days=1)
