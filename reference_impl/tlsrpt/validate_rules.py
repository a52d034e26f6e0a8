"""The semantic rules of a TLSRPT report, beyond its schema (RFC 8460 sections 4, 4.1, 4.3, 4.4, 4.5, 6.6).

They run on whatever JSON object was read, schema errors or not, and look only at values of the
expected type (a wrong type is already a ``report-schema`` finding). A report from the wild with
an optional or commonly omitted field missing gets a warning at most, never an error.

============================ ======== ======== ===================================================
rule                         section  severity when
============================ ======== ======== ===================================================
date-range-format            4.4      error    not an RFC 3339 date-time, or one without a zone
date-range-order             4.4      error    the end is not after the start
date-range-not-utc-day       4.1      warning  not one whole UTC day (4.1: SHOULD)
date-range-end-inclusive     4.4      info     ends at 23:59:59Z the same day (Appendix B's form;
                                               the prose says 00:00-24:00): both accepted
contact-info-format          4.4      warning  neither an addr-spec (RFC 5322 3.4.1) nor a URI
policies-empty               4        error    "policies" is an empty array: a report of nothing
mx-host-string               4.4      warning  "mx-host" is a string (4.4 says an array of
                                               strings; Appendix B sends a string)
sts-policy-string-missing    4.5      warning  an sts policy without "policy-string"
sts-policy-string-lines      4.5      error    an entry holding several policy lines, or one "mx"
                                               line naming several hosts
sts-policy-string-version    4.5      error    no "version: STSv1" line (info when the entry also
                                               reports sts-policy-invalid / -fetch-error: 4.5
                                               reports the policy "including any errors")
sts-mx-host-missing          4.4      warning  an sts policy without "mx-host"
tlsa-policy-string-missing   4.5      warning  a tlsa policy without "policy-string"
tlsa-policy-string-format    4.5      error    an entry that is not four presentation-format
                                               fields with no internal spaces
tlsa-policy-string-joined    4, 4.5   warning  RRs joined by ";" in one string (section 4's
                                               wording) instead of one string per RR (4.5)
domain-not-a-label           4.4      error    policy-domain or an mx-host pattern in U-labels
domain-syntax                4.4      warning  policy-domain or an mx-host pattern is no hostname
failure-count-mismatch       4, 4.4   warning  failed-session-counts add up to less than the
                                               total (info when more: section 4 allows counts
                                               that overlap)
result-type-unregistered     6.6      error    a result-type outside the 11 registered
failure-reason-code-missing  4.3.1/3  warning  certificate-not-trusted / validation-failure
                                               without failure-reason-code (SHOULD)
failure-detail-field-missing 4.4      warning  sending-mta-ip, receiving-mx-hostname or
                                               receiving-ip absent (listed without "(optional)",
                                               yet Appendix B omits receiving-ip); the receiving
                                               fields are not expected for sts-policy-* results,
                                               which fail before any MX is contacted
ip-address-invalid           4.4      error    sending-mta-ip / receiving-ip not IPv4 or IPv6
additional-information-uri   4.4      warning  additional-information is not a URI
draft-key                    4.4      warning  a key from a draft or from 4.4's placeholder
                                               names ("domain", "mx-host-pattern", ...)
unknown-key                  4.4      info     any other key: allowed, shown
============================ ======== ======== ===================================================
"""

from __future__ import annotations

import ipaddress
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from reference_impl.tlsrpt.errors import Finding
from reference_impl.tlsrpt.model import ResultType
from reference_impl.tlsrpt.validate_keys import check_keys
from reference_impl.tlsrpt.validate_result import finding, json_pointer, quote

__all__ = ["DATE_TIME_PATTERN", "REGISTERED_RESULT_TYPES", "check_report", "contact_domain", "parse_datetime"]

REGISTERED_RESULT_TYPES = frozenset(result.value for result in ResultType)
# 4.3.1 / 4.3.3: "the reporting MTA SHOULD utilize the failure-reason-code".
_REASON_EXPECTED = {ResultType.CERTIFICATE_NOT_TRUSTED.value: "4.3.1", ResultType.VALIDATION_FAILURE.value: "4.3.3"}
# 4.3.2.2: these fail while fetching or reading the policy, before any MX is contacted.
_NO_MX_RESULTS = frozenset({"sts-policy-fetch-error", "sts-policy-invalid", "sts-webpki-invalid"})
_BROKEN_STS_RESULTS = frozenset({"sts-policy-fetch-error", "sts-policy-invalid"})

DATE_TIME_PATTERN = (
    r"(?P<y>[0-9]{4})-(?P<mo>[0-9]{2})-(?P<d>[0-9]{2})[Tt ](?P<h>[0-9]{2}):(?P<mi>[0-9]{2}):(?P<s>[0-9]{2})"
    r"(?P<frac>\.[0-9]+)?(?:(?P<z>[Zz])|(?P<sign>[+-])(?P<oh>[0-9]{2}):(?P<om>[0-9]{2}))?"
)
"""RFC 3339 section 5.6 date-time, with the zone optional so that its absence gets its own message."""
_DATE_TIME = re.compile(DATE_TIME_PATTERN)
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_DOT_ATOM = rf"{_ATEXT}+(?:\.{_ATEXT}+)*"
_QUOTED = r'"(?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\[\x20-\x7e])*"'
_ADDR_SPEC = re.compile(rf"(?:{_DOT_ATOM}|{_QUOTED})@(?P<domain>{_DOT_ATOM}|\[[\x21-\x5a\x5e-\x7e]*\])")
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[\x21-\x7e]+")
_URI_HOST = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://(?:[^@/?#]*@)?(?P<host>[^:/?#\[\]]+)")
_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOSTNAME = re.compile(rf"(?:{_LABEL}\.)*{_LABEL}\.?")
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_TLSA = re.compile(rf"{_OCTET} {_OCTET} {_OCTET} [0-9A-Fa-f]+")
# Days at the edges of the calendar are refused, so the day-window arithmetic cannot overflow.
_EARLIEST = datetime.min.replace(tzinfo=UTC) + timedelta(days=1)
_LATEST = datetime.max.replace(tzinfo=UTC) - timedelta(days=2)
_STS_VERSION = re.compile(r"version:[ \t]*STSv1[ \t]*")
_STS_MX = re.compile(r"mx:[ \t]*(?P<value>.*)")

Path = tuple[str | int, ...]


def check_report(report: dict[str, Any]) -> list[Finding]:
    """Every semantic finding of a report object, in document order."""
    findings: list[Finding] = []
    check_keys(report, "report", (), findings)
    date_range = report.get("date-range")
    if isinstance(date_range, dict):
        check_keys(date_range, "date-range", ("date-range",), findings)
        _check_date_range(date_range, findings)
    contact = report.get("contact-info")
    if isinstance(contact, str) and _ADDR_SPEC.fullmatch(contact) is None and _URI.fullmatch(contact) is None:
        message = f"{quote(contact)} is neither an addr-spec (RFC 5322 3.4.1) nor a URI"
        findings.append(finding("contact-info-format", "4.4", "warning", message, "/contact-info"))
    policies = report.get("policies")
    if isinstance(policies, list):
        if not policies:
            message = "no policies: section 4 has a report carry the policy applied and its counts"
            findings.append(finding("policies-empty", "4", "error", message, "/policies"))
        for index, entry in enumerate(policies):
            if isinstance(entry, dict):
                _check_policy_entry(entry, ("policies", index), findings)
    return findings


def contact_domain(contact: str) -> str | None:
    """The domain of "contact-info" (an addr-spec, a ``mailto:`` or an ``https:`` URI), lower case."""
    text = contact.strip()
    if text.lower().startswith("mailto:"):
        text = text[len("mailto:") :].split("?", 1)[0]
    address = _ADDR_SPEC.fullmatch(text)
    if address is not None:
        return address.group("domain").lower().rstrip(".")
    uri = _URI_HOST.match(text)
    return uri.group("host").lower().rstrip(".") if uri is not None else None


def parse_datetime(text: str) -> tuple[datetime | None, str | None]:
    """An RFC 3339 date-time (section 5.6) as an aware datetime in UTC, or ``(None, why not)``."""
    match = _DATE_TIME.fullmatch(text)
    if match is None:
        return None, "is not an RFC 3339 date-time (section 5.6)"
    if match["z"] is None and match["sign"] is None:
        return None, "has no time zone: RFC 3339 section 5.6 requires 'Z' or an offset"
    try:
        zone = UTC
        if match["sign"] is not None:
            offset = timedelta(hours=int(match["oh"]), minutes=int(match["om"]))
            if offset >= timedelta(days=1) or int(match["om"]) > 59:
                raise ValueError("offset out of range")
            zone = timezone(-offset if match["sign"] == "-" else offset)
        fraction = int((match["frac"] or ".0")[1:7].ljust(6, "0"))
        second = min(int(match["s"]), 59)  # a leap second (60) is legal in RFC 3339; datetime has none
        if int(match["s"]) > 60:
            raise ValueError("second out of range")
        moment = datetime(
            int(match["y"]), int(match["mo"]), int(match["d"]), int(match["h"]), int(match["mi"]), second, fraction
        )
        utc = moment.replace(tzinfo=zone).astimezone(UTC)
        if not _EARLIEST <= utc <= _LATEST:
            raise OverflowError("at the edge of the calendar")
    except (ValueError, OverflowError):
        return None, "is not a valid date and time (or is out of range)"
    return utc, None


def _check_date_range(date_range: dict[str, Any], findings: list[Finding]) -> None:
    moments: list[datetime] = []
    for key in ("start-datetime", "end-datetime"):
        text = date_range.get(key)
        if not isinstance(text, str):
            continue
        moment, problem = parse_datetime(text)
        if moment is None:
            message = f"{quote(text)} {problem}"
            findings.append(finding("date-range-format", "4.4", "error", message, json_pointer("date-range", key)))
        else:
            moments.append(moment)
    if len(moments) != 2:
        return
    start, end = moments
    if end <= start:
        message = f"the range ends ({end.isoformat()}) before it starts ({start.isoformat()})"
        findings.append(finding("date-range-order", "4.4", "error", message, "/date-range"))
        return
    start_utc = start.astimezone(UTC)
    midnight = start_utc.replace(hour=0, minute=0, second=0, microsecond=0)
    next_midnight = midnight + timedelta(days=1)
    if start_utc != midnight:
        message = f"starts at {start_utc.isoformat()}, not 00:00:00 UTC (4.1: a full UTC day)"
        findings.append(finding("date-range-not-utc-day", "4.1", "warning", message, "/date-range/start-datetime"))
    elif end == next_midnight:
        return
    elif next_midnight - timedelta(seconds=1) <= end < next_midnight:
        message = "ends at 23:59:59 UTC (Appendix B's form); the prose of 4.1 and 4.4 says 00:00-24:00"
        findings.append(finding("date-range-end-inclusive", "4.4", "info", message, "/date-range/end-datetime"))
    else:
        message = f"ends at {end.astimezone(UTC).isoformat()}, not the next 00:00:00 UTC (4.1: a full UTC day)"
        findings.append(finding("date-range-not-utc-day", "4.1", "warning", message, "/date-range/end-datetime"))


def _check_policy_entry(entry: dict[str, Any], path: Path, findings: list[Finding]) -> None:
    check_keys(entry, "policy-entry", path, findings)
    details = entry.get("failure-details")
    detail_list = [d for d in details if isinstance(d, dict)] if isinstance(details, list) else []
    results = {d["result-type"] for d in detail_list if isinstance(d.get("result-type"), str)}
    policy = entry.get("policy")
    if isinstance(policy, dict):
        _check_policy(policy, (*path, "policy"), results, findings)
    summary = entry.get("summary")
    if isinstance(summary, dict):
        check_keys(summary, "summary", (*path, "summary"), findings)
    if isinstance(details, list):
        for index, detail in enumerate(details):
            if isinstance(detail, dict):
                _check_failure_detail(detail, (*path, "failure-details", index), findings)
        if isinstance(summary, dict):
            _check_totals(summary, details, path, findings)


def _check_policy(policy: dict[str, Any], path: Path, results: set[str], findings: list[Finding]) -> None:
    check_keys(policy, "policy", path, findings)
    domain = policy.get("policy-domain")
    if isinstance(domain, str):
        _check_domain(domain, json_pointer(*path, "policy-domain"), "policy-domain", findings)
    mx_host = policy.get("mx-host")
    patterns: list[tuple[str, str]] = []
    if isinstance(mx_host, str):
        message = "a string: section 4.4 says a JSON array of strings (Appendix B sends a string)"
        findings.append(finding("mx-host-string", "4.4", "warning", message, json_pointer(*path, "mx-host")))
        patterns = [(mx_host, json_pointer(*path, "mx-host"))]
    elif isinstance(mx_host, list):
        patterns = [(p, json_pointer(*path, "mx-host", i)) for i, p in enumerate(mx_host) if isinstance(p, str)]
    for pattern, where in patterns:
        _check_domain(pattern.removeprefix("*."), where, "mx-host pattern", findings)
    policy_type = policy.get("policy-type")
    strings = policy.get("policy-string")
    if policy_type == "sts":
        if "policy-string" not in policy:
            message = "an sts policy without policy-string: 4.5 reports the policy applied, one string per line"
            findings.append(finding("sts-policy-string-missing", "4.5", "warning", message, json_pointer(*path)))
        elif isinstance(strings, list):
            _check_sts_strings(strings, (*path, "policy-string"), results, findings)
        if "mx-host" not in policy:
            message = "an sts policy without mx-host (4.4: the MX patterns of the applied policy)"
            findings.append(finding("sts-mx-host-missing", "4.4", "warning", message, json_pointer(*path)))
    elif policy_type == "tlsa":
        if "policy-string" not in policy:
            message = "a tlsa policy without policy-string: 4.5 reports the TLSA RRset, one string per RR"
            findings.append(finding("tlsa-policy-string-missing", "4.5", "warning", message, json_pointer(*path)))
        elif isinstance(strings, list):
            _check_tlsa_strings(strings, (*path, "policy-string"), findings)


def _check_domain(name: str, where: str, what: str, findings: list[Finding]) -> None:
    if not name.isascii():
        message = f"{what} {quote(name)} has U-labels: 4.4 requires Punycode A-labels ('xn--...')"
        findings.append(finding("domain-not-a-label", "4.4", "error", message, where))
    elif len(name.rstrip(".")) > 253 or _HOSTNAME.fullmatch(name) is None:
        findings.append(finding("domain-syntax", "4.4", "warning", f"{what} {quote(name)} is no hostname", where))


def _check_sts_strings(strings: list[Any], path: Path, results: set[str], findings: list[Finding]) -> None:
    lines = [(index, text) for index, text in enumerate(strings) if isinstance(text, str)]
    for index, text in lines:
        mx = _STS_MX.fullmatch(text.strip())
        if "\n" in text or "\r" in text:
            message = f"{quote(text)} holds several lines: 4.5 lists one string per policy line"
        elif mx is not None and re.search(r"[\s,]", mx["value"].strip()):
            message = f"{quote(text)} names several MX patterns: 4.5 lists each mx as a separate element"
        else:
            continue
        findings.append(finding("sts-policy-string-lines", "4.5", "error", message, json_pointer(*path, index)))
    if any(_STS_VERSION.fullmatch(text.strip("\r\n")) for _, text in lines):
        return
    if results & _BROKEN_STS_RESULTS:
        message = "no 'version: STSv1' line, reported with a policy failure (4.5: the policy as declared)"
        findings.append(finding("sts-policy-string-version", "4.5", "info", message, json_pointer(*path)))
    else:
        message = "no 'version: STSv1' line: not an MTA-STS policy that could have been applied"
        findings.append(finding("sts-policy-string-version", "4.5", "error", message, json_pointer(*path)))


def _check_tlsa_strings(strings: list[Any], path: Path, findings: list[Finding]) -> None:
    for index, text in enumerate(strings):
        if not isinstance(text, str) or _TLSA.fullmatch(text):
            continue
        where = json_pointer(*path, index)
        parts = [part.strip() for part in text.split(";") if part.strip()]
        if len(parts) > 1 and all(_TLSA.fullmatch(part) for part in parts):
            message = f"{len(parts)} RRs joined by ';' (section 4's wording); 4.5 wants one string per RR"
            findings.append(finding("tlsa-policy-string-joined", "4, 4.5", "warning", message, where))
            continue
        message = f"{quote(text)} is not 'usage selector matching-type hex' with no internal spaces"
        findings.append(finding("tlsa-policy-string-format", "4.5", "error", message, where))


def _check_failure_detail(detail: dict[str, Any], path: Path, findings: list[Finding]) -> None:
    check_keys(detail, "failure-detail", path, findings)
    result = detail.get("result-type")
    if isinstance(result, str):
        if result not in REGISTERED_RESULT_TYPES:
            message = f"{quote(result)} is not a registered result type (6.6 lists 11)"
            findings.append(finding("result-type-unregistered", "6.6", "error", message, json_pointer(*path)))
        elif result in _REASON_EXPECTED and "failure-reason-code" not in detail:
            message = f"{result} without failure-reason-code (the reporting MTA SHOULD give one)"
            section = _REASON_EXPECTED[result]
            findings.append(finding("failure-reason-code-missing", section, "warning", message, json_pointer(*path)))
    expected = ["sending-mta-ip"]
    if not (isinstance(result, str) and result in _NO_MX_RESULTS):
        expected += ["receiving-mx-hostname", "receiving-ip"]
    for key in expected:
        if key not in detail:
            message = f"{key} is absent (4.4 lists it without '(optional)')"
            findings.append(finding("failure-detail-field-missing", "4.4", "warning", message, json_pointer(*path)))
    for key in ("sending-mta-ip", "receiving-ip"):
        value = detail.get(key)
        if isinstance(value, str) and not _is_ip_address(value):
            message = f"{quote(value)} is neither an IPv4 nor an IPv6 address"
            findings.append(finding("ip-address-invalid", "4.4", "error", message, json_pointer(*path, key)))
    info = detail.get("additional-information")
    if isinstance(info, str) and _URI.fullmatch(info) is None:
        message = f"{quote(info)} is not a URI (4.4 additional-info-uri, RFC 3986)"
        where = json_pointer(*path, "additional-information")
        findings.append(finding("additional-information-uri", "4.4", "warning", message, where))


def _is_ip_address(text: str) -> bool:
    if "%" in text:  # a zone index (fe80::1%eth0) is local to the reporter and no RFC 5952 form
        return False
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _check_totals(summary: dict[str, Any], details: list[Any], path: Path, findings: list[Finding]) -> None:
    total = _count(summary.get("total-failure-session-count"))
    counts = [_count(d.get("failed-session-count")) if isinstance(d, dict) else None for d in details]
    if total is None or None in counts:
        return
    added = sum(c for c in counts if c is not None)
    where = json_pointer(*path, "summary", "total-failure-session-count")
    if added < total:
        message = f"failure-details add up to {added}, the total says {total}: {total - added} failures untold"
        findings.append(finding("failure-count-mismatch", "4.4", "warning", message, where))
    elif added > total:
        message = f"failure-details add up to {added}, above the total {total} (section 4: types may overlap)"
        findings.append(finding("failure-count-mismatch", "4", "info", message, where))
