"""The keys each object of a TLSRPT report may hold (RFC 8460 section 4.4), and the draft-era ones.

The JSON keys are those of the schema listing at the start of section 4.4. The bullets after it
describe value placeholders with other names (``domain``, ``mx-host-pattern``, ``ip-address``,
``additional-info-uri``, ``email-address``); a report using those as keys, or a key of the
drafts before the RFC, gets a ``draft-key`` warning naming the RFC key, so a reporter sees what
to rename. Any other key is an ``unknown-key`` info: section 3 has parsers accept a superset of
the specification, and a receiver that ignores an extension loses nothing.
"""

from __future__ import annotations

from typing import Any

from reference_impl.tlsrpt.errors import Finding
from reference_impl.tlsrpt.validate_result import finding, json_pointer, quote

__all__ = ["DRAFT_KEYS", "RFC_KEYS", "check_keys"]

RFC_KEYS: dict[str, frozenset[str]] = {
    "report": frozenset({"organization-name", "date-range", "contact-info", "report-id", "policies"}),
    "date-range": frozenset({"start-datetime", "end-datetime"}),
    "policy-entry": frozenset({"policy", "summary", "failure-details"}),
    "policy": frozenset({"policy-type", "policy-string", "policy-domain", "mx-host"}),
    "summary": frozenset({"total-successful-session-count", "total-failure-session-count"}),
    "failure-detail": frozenset(
        {
            "result-type",
            "sending-mta-ip",
            "receiving-mx-hostname",
            "receiving-mx-helo",
            "receiving-ip",
            "failed-session-count",
            "additional-information",
            "failure-reason-code",
        }
    ),
}

# key as sent -> the RFC key it stands for, per object kind.
DRAFT_KEYS: dict[str, dict[str, str]] = {
    "report": {
        "policy": "policies",  # section 4: "MUST be an array and not a singular value"
        "email-address": "contact-info",
        "organization": "organization-name",
        "report-uuid": "report-id",
        "date-time": "date-range",
    },
    "date-range": {
        "start": "start-datetime",
        "end": "end-datetime",
        "start-date-time": "start-datetime",
        "end-date-time": "end-datetime",
    },
    "policy-entry": {"failure-detail": "failure-details", "policies": "policy"},
    "policy": {
        "domain": "policy-domain",
        "mx-host-pattern": "mx-host",
        "mx-hosts": "mx-host",
        "policy-strings": "policy-string",
    },
    "summary": {
        "successful-session-count": "total-successful-session-count",
        "failure-session-count": "total-failure-session-count",
        "total-success-session-count": "total-successful-session-count",
    },
    "failure-detail": {
        "ip-address": "sending-mta-ip",
        "additional-info-uri": "additional-information",
        "failure-reason": "failure-reason-code",
        "session-count": "failed-session-count",
        "receiving-mx-host": "receiving-mx-hostname",
    },
}


def check_keys(obj: dict[str, Any], kind: str, path: tuple[str | int, ...], findings: list[Finding]) -> None:
    """A ``draft-key`` warning or an ``unknown-key`` info for every key of ``obj`` the RFC does not name."""
    known = RFC_KEYS[kind]
    drafts = DRAFT_KEYS[kind]
    for key in obj:
        if key in known:
            continue
        where = json_pointer(*path, key)
        if key in drafts:
            message = f"draft-era key {quote(key)}: RFC 8460 names it {drafts[key]!r}"
            findings.append(finding("draft-key", "4.4", "warning", message, where))
        else:
            message = f"key {quote(key)} is not in RFC 8460 (allowed, ignored)"
            findings.append(finding("unknown-key", "4.4", "info", message, where))
