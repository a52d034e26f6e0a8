"""The mail intake of the report receiver (RFC 8460 sections 3, 5.3, 5.6).

:meth:`MailIntake.assess` decides, without I/O apart from the injected TXT lookup, what to do
with one report message; :meth:`MailIntake.accept_mail` also stores or logs it.

* Section 5.3: the report is the ``application/tlsrpt+json`` or ``application/tlsrpt+gzip``
  part of a ``multipart/report; report-type="tlsrpt"`` message. Its body is judged by the
  same validator as an HTTPS POST (``validate_report_payload``); a body with an error finding
  is ignored. The whole message also goes to ``validate_report_mail`` when one is given: its
  findings (headers, Subject, filename, DKIM tags) are kept with the report, not obeyed.
* Section 3: "Reports lacking [a valid DKIM signature by the reporting domain] MUST be
  ignored by the recipient": the reporting domain is the domain of the body's
  ``contact-info`` (failing that, ``TLS-Report-Submitter``, then the From address); see
  ``receiver_dkim``. A key without ``s=tlsrpt`` "MAY" be ignored: the constructor option
  ``ignore_keys_without_tlsrpt`` (default: accept, with a note).
* Section 5.6: when the Subject or the filename disagree with the body, "the report MUST be
  considered the authoritative source": the report is stored under the body's policy domain
  and each disagreement is kept as an ``info`` finding (rule ``receiver-metadata-variance``).

Ignored reports are dropped silently (the SMTP answer is 250 all the same) and logged with
the reason. Only a DKIM key lookup that failed (not an answer, a failure) makes the verdict
``temporary``, so that the SMTP listener can ask the sender to retry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32
from email.utils import getaddresses
from typing import Any
from urllib.parse import urlsplit

from reference_impl.tlsrpt.errors import Finding, TlsRptError
from reference_impl.tlsrpt.receiver_dkim import DkimResult, check_signatures
from reference_impl.tlsrpt.receiver_http import best_effort_report
from reference_impl.tlsrpt.receiver_judges import MailJudge, PayloadJudge, TxtLookup, error_rules
from reference_impl.tlsrpt.receiver_store import Outcome, ReportStore, StoredReport, report_policy_domain
from reference_impl.tlsrpt.receiver_variant import REPORT_MEDIA_TYPES, ReceiverVariant

__all__ = ["MailIntake", "MailMetadata", "MailVerdict", "ReportPart", "mail_metadata"]

VARIANCE_RULE = "receiver-metadata-variance"
NO_TLSRPT_SERVICE_RULE = "receiver-dkim-key-no-tlsrpt-service"

# Section 5.3 tlsrpt-subject, unfolded; "Report-ID" value kept whole.
_SUBJECT = re.compile(
    r"Report\s+Domain:\s*(?P<domain>\S+)\s+Submitter:\s*(?P<submitter>\S+)\s+Report-ID:\s*(?P<id><[^>]*>)"
)
# Section 5.1: sender "!" policy-domain "!" begin "!" end [ "!" unique-id ] "." extension
_FILENAME = re.compile(
    r"(?P<sender>[^!]+)!(?P<domain>[^!]+)!(?P<begin>[0-9]{1,12})!(?P<end>[0-9]{1,12})(?:![A-Za-z0-9]+)?\.json(?:\.gz)?"
)


@dataclass(frozen=True, slots=True)
class ReportPart:
    """The report MIME part: decoded bytes, media type, filename."""

    data: bytes
    content_type: str
    filename: str | None


@dataclass(frozen=True, slots=True)
class MailMetadata:
    """What the message says about the report outside its body (sections 5.1 and 5.3)."""

    subject_domain: str | None = None
    subject_submitter: str | None = None
    header_domain: str | None = None  # TLS-Report-Domain
    header_submitter: str | None = None  # TLS-Report-Submitter
    from_domain: str | None = None
    filename_sender: str | None = None
    filename_domain: str | None = None
    filename_begin: int | None = None
    filename_end: int | None = None


@dataclass(frozen=True, slots=True)
class MailVerdict:
    """What the intake did with one message."""

    accepted: bool  # the report is (to be) stored
    reason: str
    policy_domain: str | None = None
    report: dict[str, Any] | None = None
    findings: tuple[Finding, ...] = ()
    dkim: DkimResult | None = None
    temporary: bool = False  # a DKIM key lookup failed; a retry may succeed
    refused: bool = False  # answer with an error instead of 250 (a negative control only)
    part: ReportPart | None = None
    stored: StoredReport | None = None
    duplicate: bool = False


def _text(value: object) -> str | None:
    # compat32 hands back a Header object for non-ASCII bytes; str() of it never raises.
    return None if value is None else " ".join(str(value).split())


def mail_metadata(message: Message, part: ReportPart | None) -> MailMetadata:
    subject = _text(message.get("subject")) or ""
    match = _SUBJECT.search(subject)
    senders = getaddresses([_text(message.get("from")) or ""])
    from_domain = (senders[0][1].rpartition("@")[2] or None) if senders else None
    found = _FILENAME.fullmatch(part.filename) if part is not None and part.filename else None
    return MailMetadata(
        subject_domain=match["domain"] if match else None,
        subject_submitter=match["submitter"] if match else None,
        header_domain=_text(message.get("tls-report-domain")),
        header_submitter=_text(message.get("tls-report-submitter")),
        from_domain=from_domain,
        filename_sender=found["sender"] if found else None,
        filename_domain=found["domain"] if found else None,
        filename_begin=int(found["begin"]) if found else None,
        filename_end=int(found["end"]) if found else None,
    )


def report_part(message: Message) -> tuple[ReportPart | None, int]:
    """The first report part (section 5.3) and how many there are."""
    parts: list[ReportPart] = []
    for part in message.walk():
        media = part.get_content_type().lower()
        if media not in REPORT_MEDIA_TYPES or part.is_multipart():
            continue
        payload = part.get_payload(decode=True)
        try:
            filename = part.get_filename()
        except (ValueError, LookupError):  # a malformed RFC 2231 parameter
            filename = None
        parts.append(ReportPart(payload if isinstance(payload, bytes) else b"", media, _text(filename)))
    return (parts[0] if parts else None), len(parts)


def contact_domain(report: dict[str, Any]) -> str | None:
    """The domain of ``contact-info``: an addr-spec (section 4.4) or, in practice, a URI."""
    contact = report.get("contact-info")
    if not isinstance(contact, str) or not contact.strip():
        return None
    if "@" in contact:
        return contact.rpartition("@")[2].strip().strip(">").rstrip(".") or None
    try:
        return urlsplit(contact.strip()).hostname
    except ValueError:
        return None


class MailIntake:
    """Judges emailed reports and, given a store, stores or logs them."""

    def __init__(
        self,
        *,
        payload_judge: PayloadJudge,
        txt_lookup: TxtLookup | None,
        mail_judge: MailJudge | None = None,
        variant: ReceiverVariant | None = None,
        ignore_keys_without_tlsrpt: bool = False,
        store: ReportStore | None = None,
    ) -> None:
        self._payload_judge = payload_judge
        self._mail_judge = mail_judge
        self._txt_lookup = txt_lookup
        self.variant = variant if variant is not None else ReceiverVariant()
        self.ignore_keys_without_tlsrpt = ignore_keys_without_tlsrpt
        self.store = store

    def accept_mail(self, message: bytes) -> MailVerdict:
        """Assess ``message``, then store the report or log why it was ignored."""
        verdict = self.assess(message)
        if self.store is None:
            return verdict
        if not verdict.accepted or verdict.report is None:
            # A temporary failure is refused (the sender retries), anything else ignored (section 3).
            outcome: Outcome = "refused" if verdict.temporary or verdict.refused else "ignored"
            rules = error_rules(verdict.findings)
            self.store.record("mail", outcome, verdict.reason, rules=rules, policy_domain=verdict.policy_domain)
            return verdict
        part = verdict.part
        stored, duplicate = self.store.save(
            verdict.report,
            transport="mail",
            body=part.data if part is not None else b"",
            findings=verdict.findings,
            policy_domain=verdict.policy_domain,
            content_type=part.content_type if part is not None else None,
            filename=part.filename if part is not None else None,
            notes=(verdict.reason,),
        )
        return replace(verdict, stored=stored, duplicate=duplicate)

    def assess(self, message: bytes) -> MailVerdict:
        """What to do with ``message``; no I/O but the TXT lookups of the DKIM check."""
        parsed = BytesParser(policy=compat32).parsebytes(message)
        part, count = report_part(parsed)
        findings: list[Finding] = []
        if self._mail_judge is not None:
            findings.extend(self._judge_mail(message))
        if count > 1:
            findings.append(_note("5.3", f"{count} report parts; only the first is read", "MIME"))
        meta = mail_metadata(parsed, part)
        report: dict[str, Any] | None = None
        refused: str | None = None
        if part is None:
            refused = "no application/tlsrpt+json or application/tlsrpt+gzip part (RFC 8460 section 5.3)"
        elif not self.variant.validate:
            report = best_effort_report(part.data)
        else:
            report, refused = self._judge_body(part, findings)
        body_domain = report_policy_domain(report) if report is not None else None
        policy_domain = body_domain
        if self.variant.domain_from_subject and meta.subject_domain:
            policy_domain = meta.subject_domain  # the negative control of section 5.6
        base = MailVerdict(False, "", policy_domain, report, (), None, part=part)

        # Section 3: a valid DKIM signature by the reporting domain, or the report is ignored.
        dkim = check_signatures(message, self._txt_lookup)
        reporters = [contact_domain(report) if report else None, meta.header_submitter, meta.from_domain]
        reporter = next((domain for domain in reporters if domain), None)
        signature = dkim.by([reporter] if reporter else [])
        dkim_problem: str | None = None
        if signature is None:
            dkim_problem = (
                f"no valid DKIM signature by the reporting domain {reporter or '(unknown)'}: {dkim.describe()}"
            )
        elif not signature.declares_tlsrpt:
            text = f"DKIM key {signature.selector}._domainkey.{signature.domain} lacks s=tlsrpt"
            if self.ignore_keys_without_tlsrpt:
                dkim_problem = text + " (RFC 8460 section 3: MAY be ignored)"
            else:
                findings.append(_note("3", text + "; accepted", "DKIM-Signature", NO_TLSRPT_SERVICE_RULE))
        if dkim_problem is not None:
            if self.variant.require_dkim:
                temporary = dkim.temporary and signature is None
                return replace(
                    base,
                    reason=("deferred: " if temporary else "ignored: ") + dkim_problem,
                    findings=_unique(findings),
                    dkim=dkim,
                    temporary=temporary,
                )
            findings.append(_note("3", "stored although " + dkim_problem, "DKIM-Signature"))
        if refused is not None or report is None:
            reason = refused or "no report found"
            return replace(base, reason="ignored: " + reason, findings=_unique(findings), dkim=dkim)
        if body_domain is not None:
            findings.extend(_variances(report, body_domain, meta))
        if self.variant.status_on_valid is not None:
            # The negative control that fails valid reports: nothing stored, an error answered.
            reason = f"refused: this receiver fails valid reports ({self.variant.status_on_valid})"
            return replace(base, reason=reason, findings=_unique(findings), dkim=dkim, refused=True)
        return replace(base, accepted=True, reason="accepted", findings=_unique(findings), dkim=dkim)

    def _judge_body(self, part: ReportPart, findings: list[Finding]) -> tuple[dict[str, Any] | None, str | None]:
        try:
            # No filename: it is metadata (section 5.6), and a filename the validator dislikes
            # (an extension error) must not cost a report whose body is sound. The mail judge
            # still reports on it.
            validation = self._payload_judge(part.data, content_type=part.content_type)
        except TlsRptError as exc:
            return None, f"report refused: {exc.rule}"
        findings.extend(validation.findings)
        errors = error_rules(validation.findings)
        if errors:
            return None, "report refused: " + ", ".join(errors)
        if validation.report is None:
            return None, "report refused: no report found"
        return dict(validation.report), None

    def _judge_mail(self, message: bytes) -> list[Finding]:
        assert self._mail_judge is not None
        lookup = self._txt_lookup
        quiet = None if lookup is None else _quiet(lookup)
        try:
            return list(self._mail_judge(message, txt_lookup=quiet).findings)
        except TlsRptError as exc:
            return [Finding(exc.rule, exc.section, "error", exc.detail, exc.line)]


def _quiet(lookup: TxtLookup) -> TxtLookup:
    """``lookup`` with failures read as "no record": the mail judge's findings are only kept,
    and a failed key lookup is the receiver's own DKIM check to report (as temporary)."""

    def quiet(name: str) -> list[bytes] | None:
        try:
            return lookup(name)
        except Exception:
            return None

    return quiet


def _unique(findings: list[Finding]) -> tuple[Finding, ...]:
    """Each finding once: the mail judge reads the report part too, as the payload judge did."""
    return tuple(dict.fromkeys(findings))


def _note(section: str, message: str, where: str, rule: str = VARIANCE_RULE) -> Finding:
    return Finding(rule=rule, section=section, severity="info", message=message, where=where)


def _variances(report: dict[str, Any], body_domain: str, meta: MailMetadata) -> list[Finding]:
    """Section 5.6: every place the Subject or filename disagrees with the body (which wins)."""
    notes: list[Finding] = []
    wanted = body_domain.rstrip(".").lower()

    def differs(value: str | None) -> bool:
        return value is not None and value.rstrip(".").lower() != wanted

    for where, value in (("Subject", meta.subject_domain), ("filename", meta.filename_domain)):
        if differs(value):
            notes.append(_note("5.6", f"{where} names policy domain {value!r}, the body {body_domain!r}", where))
    sender = contact_domain(report)
    for where, value in (("Subject", meta.subject_submitter), ("filename", meta.filename_sender)):
        if sender is not None and value is not None and value.rstrip(".").lower() != sender.lower():
            notes.append(_note("5.6", f"{where} names submitter {value!r}, contact-info {sender!r}", where))
    window = report.get("date-range")
    if isinstance(window, dict):
        for label, key, stamp in (
            ("begin", "start-datetime", meta.filename_begin),
            ("end", "end-datetime", meta.filename_end),
        ):
            moment = _epoch(window.get(key))
            if stamp is not None and moment is not None and stamp != moment:
                notes.append(_note("5.6", f"filename {label} {stamp} is not the body's {key} ({moment})", "filename"))
    return notes


def _epoch(value: object) -> int | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return int(moment.timestamp()) if moment.tzinfo is not None else None
