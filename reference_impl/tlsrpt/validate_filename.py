"""The report filename of RFC 8460 section 5.1, and how it compares with the body (section 5.6).

    filename = sender "!" policy-domain "!" begin-timestamp "!" end-timestamp [ "!" unique-id ] "." extension

The construction is RECOMMENDED; the extension is a MUST ("json" for plain JSON, "json.gz" for
gzip). Where the filename and the body disagree, "the report MUST be considered the
authoritative source" (5.6), so a disagreement is an info finding, not an error.

========================== ======== =========================================================
rule                       severity when
========================== ======== =========================================================
filename-extension         error    the name ends in neither ``.json`` nor ``.json.gz``
filename-extension-mismatch error   ``.json.gz`` on plain JSON, or ``.json`` on gzip
filename-format            warning  not ``sender!policy-domain!begin!end[!unique-id]``
domain-not-a-label         error    sender or policy-domain in U-labels (5.1: MUST A-labels)
filename-body-mismatch     info     policy-domain, sender or timestamps differ from the body
========================== ======== =========================================================
"""

from __future__ import annotations

import re
from typing import Any

from reference_impl.tlsrpt.errors import Finding
from reference_impl.tlsrpt.validate_result import finding, quote
from reference_impl.tlsrpt.validate_rules import contact_domain, parse_datetime

__all__ = ["check_filename", "report_policy_domains"]

_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_DOMAIN = re.compile(rf"(?:{_LABEL}\.)*{_LABEL}")
_TIMESTAMP = re.compile(r"[0-9]+")
_UNIQUE_ID = re.compile(r"[A-Za-z0-9]+")


def report_policy_domains(report: dict[str, Any]) -> set[str]:
    """The policy-domain of every "policies" entry, lower case, without a trailing dot."""
    domains: set[str] = set()
    policies = report.get("policies")
    for entry in policies if isinstance(policies, list) else []:
        policy = entry.get("policy") if isinstance(entry, dict) else None
        domain = policy.get("policy-domain") if isinstance(policy, dict) else None
        if isinstance(domain, str):
            domains.add(domain.lower().rstrip("."))
    return domains


def check_filename(name: str, *, is_gzip: bool, report: dict[str, Any] | None, where: str) -> list[Finding]:
    """Every finding about one report filename (``where`` names the part or argument it came from)."""
    lowered = name.lower()  # ABNF quoted strings ("json", "json.gz") are case-insensitive
    if lowered.endswith(".json.gz"):
        extension = "json.gz"
    elif lowered.endswith(".json"):
        extension = "json"
    else:
        message = f"{quote(name)} ends in neither .json nor .json.gz"
        return [finding("filename-extension", "5.1", "error", message, where)]
    findings: list[Finding] = []
    if (extension == "json.gz") != is_gzip:
        body = "gzip" if is_gzip else "plain JSON"
        message = f"extension .{extension} on a {body} body: the extension MUST say whether it is gzip"
        findings.append(finding("filename-extension-mismatch", "5.1", "error", message, where))
    fields = name[: -len(extension) - 1].split("!")
    problems = _format_problems(fields, where, findings)
    if problems:
        message = f"{quote(name)} is not sender!policy-domain!begin!end[!unique-id]: " + "; ".join(problems)
        findings.append(finding("filename-format", "5.1", "warning", message, where))
    elif report is not None:
        findings += _compare_with_body(fields, report, where)
    return findings


def _format_problems(fields: list[str], where: str, findings: list[Finding]) -> list[str]:
    if len(fields) not in (4, 5):
        return [f"{len(fields)} '!'-separated fields, not 4 or 5"]
    problems = []
    for label, value in (("sender", fields[0]), ("policy-domain", fields[1])):
        if not value.isascii():
            message = f"{label} {quote(value)} has U-labels: 5.1 requires Punycode A-labels"
            findings.append(finding("domain-not-a-label", "5.1", "error", message, where))
        elif _DOMAIN.fullmatch(value) is None:
            problems.append(f"{label} {quote(value)} is no domain")
    for label, value in (("begin-timestamp", fields[2]), ("end-timestamp", fields[3])):
        if _TIMESTAMP.fullmatch(value) is None:
            problems.append(f"{label} {quote(value)} is not decimal seconds")
    if len(fields) == 5 and _UNIQUE_ID.fullmatch(fields[4]) is None:
        problems.append(f"unique-id {quote(fields[4])} is not letters and digits")
    if not problems and int(fields[2]) >= int(fields[3]):
        problems.append("the end timestamp is not after the begin timestamp")
    return problems


def _compare_with_body(fields: list[str], report: dict[str, Any], where: str) -> list[Finding]:
    """5.6: the body is authoritative; each disagreement is shown, none is an error."""
    sender, domain, begin, end = fields[0].lower(), fields[1].lower(), int(fields[2]), int(fields[3])
    disagreements: list[str] = []
    domains = report_policy_domains(report)
    # A U-label field is already an error; comparing it with an A-label body would say it twice.
    if domains and domain.isascii() and domain not in domains:
        disagreements.append(f"policy-domain {quote(fields[1])} is not the body's {sorted(domains)}")
    contact = report.get("contact-info")
    contact_at = contact_domain(contact) if isinstance(contact, str) else None
    if contact_at is not None and sender.isascii() and sender != contact_at:
        disagreements.append(f"sender {quote(fields[0])} is not the contact-info domain {contact_at!r}")
    date_range = report.get("date-range")
    if isinstance(date_range, dict):
        for label, stamp, key in (("begin", begin, "start-datetime"), ("end", end, "end-datetime")):
            text = date_range.get(key)
            moment = parse_datetime(text)[0] if isinstance(text, str) else None
            # One second of slack: a 23:59:59Z end (Appendix B) may be written as either stamp.
            if moment is not None and abs(int(moment.timestamp()) - stamp) > 1:
                disagreements.append(f"{label} {stamp} is not the body's {key} {text!r}")
    return [finding("filename-body-mismatch", "5.6", "info", f"{text}; the body wins", where) for text in disagreements]
