"""A TLSRPT report delivered by mail: MIME structure, headers, Subject (RFC 8460 sections 5.3, 5.6).

The message is parsed with the ``email`` package under ``compat32``, whose parser records
defects instead of raising; every access that can still fail on hostile input is guarded, so a
malformed message yields findings, never an exception. The report part is judged by
:func:`~reference_impl.tlsrpt.validate_payload.judge_payload` (with its filename parameter),
the DKIM signature by :mod:`reference_impl.tlsrpt.validate_dkim`.

============================== ======== ========================================================
rule                           severity when
============================== ======== ========================================================
report-too-large               error    the message is above ``MAX_MESSAGE_BYTES``
mail-unparseable               error    the email package could not take the message apart
mail-content-type              error    not ``multipart/report; report-type="tlsrpt"`` (5.3)
mail-human-part-missing        warning  the first part is not text/* (5.3; RFC 6522 section 3)
mail-report-part-missing       error    no report part at all
mail-report-media-type         warning  the report is in a part of another type (application/
                                        gzip, application/json, ...): 5.3 names tlsrpt+json/+gzip
mail-report-parts-multiple     error    more than one report part: which one counts is unclear
mail-part-encoding             warning  the report part's transfer encoding has defects
mail-tls-report-header-missing error    TLS-Report-Domain or TLS-Report-Submitter absent (MUST)
mail-submitter-mismatch        error    TLS-Report-Submitter is not the contact-info domain (MUST)
mail-report-domain-mismatch    warning  TLS-Report-Domain is not a policy-domain of the body (5.6)
mail-subject-format            warning  Subject is not ``Report Domain: ... Submitter: ...
                                        Report-ID: <...>`` (SHOULD)
mail-subject-body-mismatch     info     Subject's domains differ from the body (5.6: body wins)
============================== ======== ========================================================
"""

from __future__ import annotations

import email
import email.errors
import email.utils
import re
from collections.abc import Callable, Iterator
from email.header import Header, decode_header, make_header
from email.message import Message
from email.policy import compat32

from reference_impl.tlsrpt.errors import Finding, ReportError
from reference_impl.tlsrpt.limits import MAX_MESSAGE_BYTES
from reference_impl.tlsrpt.validate_dkim import check_dkim
from reference_impl.tlsrpt.validate_filename import report_policy_domains
from reference_impl.tlsrpt.validate_payload import MEDIA_TYPE_GZIP, MEDIA_TYPE_JSON, judge_payload
from reference_impl.tlsrpt.validate_result import Validation, finding, quote
from reference_impl.tlsrpt.validate_rules import contact_domain

__all__ = ["REPORT_HEADERS", "TxtLookup", "validate_report_mail"]

TxtLookup = Callable[[str], list[bytes] | None]
"""``txt_lookup(name)``: the TXT records at ``name`` (no trailing dot, each record's strings
joined), or None when there are none."""

REPORT_HEADERS = ("TLS-Report-Domain", "TLS-Report-Submitter")
_KEPT_HEADERS = ("From", "Subject", *REPORT_HEADERS)
_TOP_TYPE = 'multipart/report; report-type="tlsrpt"'
_REPORT_TYPES = (MEDIA_TYPE_GZIP, MEDIA_TYPE_JSON)
_FALLBACK_TYPES = ("application/gzip", "application/x-gzip", "application/json", "application/octet-stream")
_MAX_MIME_DEPTH = 8  # a report mail has 2 levels; deeper nesting is not walked
# What the email package can raise on hostile input even under compat32.
_EMAIL_FAILURES = (email.errors.MessageError, ValueError, LookupError, TypeError, IndexError, AttributeError)
_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
_SUBJECT = re.compile(
    rf"Report\s+Domain:\s+(?P<domain>{_NAME})\s+Submitter:\s+(?P<submitter>{_NAME})\s+"
    r"Report-ID:\s+<[^<>@\s]+@[^<>@\s]+>\s*(?:\([^()]*\)\s*)?"
)


def validate_report_mail(
    message: bytes, *, txt_lookup: TxtLookup | None, max_message: int = MAX_MESSAGE_BYTES
) -> Validation:
    """Judge a whole report message: MIME, the report part, the TLS-Report-* headers, DKIM.

    ``txt_lookup`` answers the DKIM key lookups; None skips verification (an info finding says
    so) while the checks that need no DNS (signature present, no ``l=``) still run.
    """
    if not isinstance(message, bytes | bytearray | memoryview):
        raise ReportError("validator-argument", "5.3", f"message must be bytes, not {type(message).__name__}")
    if txt_lookup is not None and not callable(txt_lookup):
        raise ReportError("validator-argument", "5.3", "txt_lookup must be callable or None")
    raw = bytes(message)
    validation = Validation(form="mail")
    if len(raw) > max_message:
        text = f"a message of {len(raw)} bytes, above the limit of {max_message}"
        validation.findings.append(finding("report-too-large", "5.3", "error", text, ""))
        return validation
    try:
        msg = email.message_from_bytes(raw, policy=compat32)
        _check_structure(msg, validation)
        _check_headers(msg, validation)
    except (*_EMAIL_FAILURES, RecursionError) as exc:
        text = f"the message cannot be taken apart: {type(exc).__name__}: {quote(str(exc), 120)}"
        validation.findings.append(finding("mail-unparseable", "5.3", "error", text, ""))
        return validation
    # Section 3: "signature by the reporting domain": the submitter, i.e. the contact-info domain.
    reporting = {validation.headers.get("TLS-Report-Submitter", "")}
    contact = validation.report.get("contact-info") if validation.report else None
    if isinstance(contact, str):
        reporting.add(contact_domain(contact) or "")
    check_dkim(raw, msg, validation, txt_lookup, reporting_domains={d.lower().rstrip(".") for d in reporting if d})
    return validation


def _parts(msg: Message, number: str = "", depth: int = 0) -> Iterator[tuple[str, Message]]:
    """The leaf parts with their IMAP-style numbers ("1", "2", "2.1"); a single-part message is "1"."""
    if not msg.is_multipart():
        yield number or "1", msg
        return
    if depth >= _MAX_MIME_DEPTH:
        return
    children = msg.get_payload()
    for index, child in enumerate(children if isinstance(children, list) else [], start=1):
        if isinstance(child, Message):
            yield from _parts(child, f"{number}.{index}" if number else str(index), depth + 1)


def _check_structure(msg: Message, validation: Validation) -> None:
    findings = validation.findings
    content_type = msg.get_content_type()
    report_type = msg.get_param("report-type")
    report_type_text = email.utils.collapse_rfc2231_value(report_type) if report_type is not None else ""
    if content_type != "multipart/report" or str(report_type_text).strip().lower() != "tlsrpt":
        text = f"top-level {content_type}, report-type {quote(report_type_text)}: 5.3 defines {_TOP_TYPE}"
        findings.append(finding("mail-content-type", "5.3", "error", text, "MIME part 0"))
    elif not _first_part_is_text(msg):
        text = "the first part is not human-readable text (5.3: 'typically text/plain'; RFC 6522 section 3)"
        findings.append(finding("mail-human-part-missing", "5.3", "warning", text, "MIME part 1"))
    leaves = list(_parts(msg))
    reports = [(n, p) for n, p in leaves if p.get_content_type() in _REPORT_TYPES]
    if not reports:
        fallback = [(n, p) for n, p in leaves if _looks_like_report(p)]
        if not fallback:
            text = "no application/tlsrpt+gzip or application/tlsrpt+json part"
            findings.append(finding("mail-report-part-missing", "5.3", "error", text, ""))
            return
        number, part = fallback[0]
        text = f"the report is in a {part.get_content_type()} part: 5.3 names {MEDIA_TYPE_GZIP} / {MEDIA_TYPE_JSON}"
        findings.append(finding("mail-report-media-type", "5.3", "warning", text, f"MIME part {number}"))
        number, part = fallback[0]
        _judge_report_part(number, part, validation, content_type=None)  # its type is said above
        return
    elif len(reports) > 1:
        numbers = ", ".join(n for n, _ in reports)
        text = f"{len(reports)} report parts ({numbers}): 5.3 has exactly one; only the first is judged"
        findings.append(finding("mail-report-parts-multiple", "5.3", "error", text, f"MIME part {reports[1][0]}"))
    number, part = reports[0]
    _judge_report_part(number, part, validation, content_type=part.get_content_type())


def _first_part_is_text(msg: Message) -> bool:
    children = msg.get_payload()
    if not isinstance(children, list) or not children or not isinstance(children[0], Message):
        return False
    # text/plain typically (5.3); multipart/alternative (text and HTML) is as readable.
    return children[0].get_content_maintype() == "text" or children[0].get_content_type() == "multipart/alternative"


def _looks_like_report(part: Message) -> bool:
    name = _filename(part) or ""
    return part.get_content_type() in _FALLBACK_TYPES or name.lower().endswith((".json", ".json.gz"))


def _filename(part: Message) -> str | None:
    name = part.get_filename()
    return re.sub(r"\r?\n", "", str(name)) if name is not None else None  # unfold, keep the spaces


def _judge_report_part(number: str, part: Message, validation: Validation, *, content_type: str | None) -> None:
    where = f"MIME part {number}"
    defects_before = len(part.defects)
    payload = part.get_payload(decode=True)
    body = payload if isinstance(payload, bytes) else b""
    if len(part.defects) > defects_before:
        names = ", ".join(type(d).__name__ for d in part.defects[defects_before:])
        text = f"the transfer encoding has defects ({names}); the decoded bytes are judged"
        validation.findings.append(finding("mail-part-encoding", "5.3", "warning", text, where))
    filename = _filename(part)
    judged = judge_payload(body, content_type=content_type, filename=filename, transport_section="5.3", where=where)
    validation.findings += judged.findings
    validation.report = judged.report
    validation.filename = filename


def _header(msg: Message, name: str) -> str | None:
    """A header's text: RFC 2047 words decoded, unfolded, stripped; None when absent."""
    raw = msg.get(name)
    if raw is None:
        return None
    text = str(raw) if not isinstance(raw, Header) else raw.encode()
    try:
        text = str(make_header(decode_header(text)))
    except (*_EMAIL_FAILURES, UnicodeError):
        pass  # keep the raw text: a broken encoded-word is still worth showing
    return re.sub(r"\r?\n(?=[ \t])", "", text).strip()


def _check_headers(msg: Message, validation: Validation) -> None:
    findings = validation.findings
    for name in _KEPT_HEADERS:
        value = _header(msg, name)
        if value is not None:
            validation.headers[name] = value
    for name in REPORT_HEADERS:
        if name not in validation.headers:
            text = f"no {name} header: 5.3 says it MUST be included"
            findings.append(finding("mail-tls-report-header-missing", "5.3", "error", text, f"header {name}"))
    report = validation.report
    domains = report_policy_domains(report) if report is not None else set()
    contact = report.get("contact-info") if report is not None else None
    contact_at = contact_domain(contact) if isinstance(contact, str) else None
    domain = validation.headers.get("TLS-Report-Domain")
    if domain is not None and domains and domain.lower().rstrip(".") not in domains:
        text = f"TLS-Report-Domain {quote(domain)} is not the body's policy-domain {sorted(domains)} (the body wins)"
        findings.append(finding("mail-report-domain-mismatch", "5.6", "warning", text, "header TLS-Report-Domain"))
    submitter = validation.headers.get("TLS-Report-Submitter")
    if submitter is not None and contact_at is not None and submitter.lower().rstrip(".") != contact_at:
        text = f"TLS-Report-Submitter {quote(submitter)} is not the contact-info domain {contact_at!r} (MUST match)"
        findings.append(finding("mail-submitter-mismatch", "5.3", "error", text, "header TLS-Report-Submitter"))
    known = domains or ({domain.lower().rstrip(".")} if domain else set())
    findings += _check_subject(validation.headers.get("Subject"), known, contact_at)


def _check_subject(subject: str | None, domains: set[str], contact_at: str | None) -> list[Finding]:
    where = "header Subject"
    match = _SUBJECT.fullmatch(subject) if subject is not None else None
    if match is None:
        text = f"Subject {quote(subject)} is not 'Report Domain: <domain> Submitter: <domain> Report-ID: <id>'"
        return [finding("mail-subject-format", "5.3", "warning", text, where)]
    findings = []
    if domains and match["domain"].lower().rstrip(".") not in domains:
        text = f"Subject's domain {quote(match['domain'])} is not the report's {sorted(domains)}; the body wins"
        findings.append(finding("mail-subject-body-mismatch", "5.6", "info", text, where))
    if contact_at is not None and match["submitter"].lower().rstrip(".") != contact_at:
        text = f"Subject's submitter {quote(match['submitter'])} is not the contact-info domain {contact_at!r}"
        findings.append(finding("mail-subject-body-mismatch", "5.6", "info", text, where))
    return findings
