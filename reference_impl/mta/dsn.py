"""Delivery status notifications (RFC 3464) and the DSN parameters of RFC 3461.

Implements:
- RFC 3464 section 2: a DSN is multipart/report; report-type=delivery-status, with a
  human-readable part, a message/delivery-status part, and the original headers (or message);
- RFC 3464 sections 2.2 and 2.3: per-message fields (Original-Envelope-Id, Reporting-MTA,
  Arrival-Date) and per-recipient fields (Original-Recipient, Final-Recipient, Action, Status,
  Remote-MTA, Diagnostic-Code, Last-Attempt-Date);
- RFC 3461 sections 4.1-4.4 (NOTIFY, ORCPT, RET, ENVID and their xtext encoding), 5.2 (no DSN
  for a null reverse path), 5.2.6 (when a failed DSN is owed), 6.1 (sent from ``<>``), 6.2 and
  6.3 (what the DSN contains).

Pure functions over bytes and strings: no I/O. Text that came from a remote server (reply
lines) or from the envelope is sanitised before it goes into a header field, so a hostile peer
cannot inject fields into the DSN.
"""

from __future__ import annotations

import email.policy
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.generator import BytesGenerator
from email.message import Message
from email.mime.base import MIMEBase
from email.mime.message import MIMEMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime
from enum import Enum
from io import BytesIO

from reference_impl.mta.errors import DsnParameterError

# RFC 3461 section 6.2: a full message MAY be cut down to its headers beyond a local limit.
FULL_RETURN_LIMIT = 1_000_000

# No folding: every field value is bounded below the 998-octet line limit (RFC 5322 2.1.1).
_POLICY = email.policy.compat32.clone(linesep="\r\n", max_line_length=None)
_STATUS_RE = re.compile(r"^([245])\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})$")
_XTEXT_HEX = re.compile(r"\+([0-9A-F]{2})")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


class Action(Enum):
    """RFC 3464 section 2.3.3 action values (the ones this MTA issues)."""

    FAILED = "failed"
    DELAYED = "delayed"


class Notify(Enum):
    """RFC 3461 section 4.1 NOTIFY keywords."""

    NEVER = "NEVER"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    DELAY = "DELAY"


@dataclass(frozen=True, slots=True)
class RecipientReport:
    """The per-recipient fields of one DSN (RFC 3464 section 2.3)."""

    final_recipient: str
    status: str  # enhanced status code, e.g. "5.1.1" (RFC 3463)
    action: Action = Action.FAILED
    diagnostic: str | None = None  # the remote SMTP reply, "550 5.1.1 no such user"
    remote_mta: str | None = None  # the MX host name that gave the diagnostic
    original_recipient: str | None = None  # the decoded ORCPT value, "rfc822;a@b"
    last_attempt_at: float | None = None


@dataclass(frozen=True, slots=True)
class DsnRequest:
    """Everything needed to write one DSN for one message."""

    reporting_mta: str
    original_sender: str  # the reverse path of the original message; never empty here
    original_message: bytes
    recipients: tuple[RecipientReport, ...]
    arrival_date: float
    created_at: float
    token: str  # unique per DSN: makes the Message-ID and the MIME boundary
    envid: str | None = None  # decoded ENVID (RFC 3461 section 6.3 (a))
    return_full: bool = False  # RET=FULL (RFC 3461 section 4.3)


def sanitize_field_text(text: str, limit: int = 900) -> str:
    """Make untrusted text safe inside one header field: no CR/LF or other control characters
    (RFC 3464 section 2.3.2 excepts exactly those from being copied verbatim), bounded."""
    return _CONTROL.sub(" ", text).strip()[:limit]


def xtext_decode(value: str) -> str:
    """Decode RFC 3461 section 4 xtext ("+" followed by two upper-case hex digits)."""
    if any(ord(c) < 33 or ord(c) > 126 or c == "=" for c in value):
        raise DsnParameterError(f"xtext contains a forbidden character: {value!r}", section="4")
    stripped = _XTEXT_HEX.sub("", value)
    if "+" in stripped:
        raise DsnParameterError(f"xtext has a '+' without two hex digits: {value!r}", section="4")
    return _XTEXT_HEX.sub(lambda m: chr(int(m.group(1), 16)), value)


def xtext_encode(value: str) -> str:
    """Encode text as RFC 3461 section 4 xtext; non-ASCII input is an error (section 4.4)."""
    out = []
    for ch in value:
        code = ord(ch)
        if code > 126:
            raise DsnParameterError(f"xtext cannot carry non-ASCII {ch!r}", section="4")
        out.append(f"+{code:02X}" if code < 33 or ch in "+=" else ch)
    return "".join(out)


def parse_notify(value: str) -> frozenset[Notify]:
    """RFC 3461 section 4.1: NEVER alone, or a comma list of SUCCESS/FAILURE/DELAY, any case."""
    words = [w.strip().upper() for w in value.split(",")]
    try:
        keywords = frozenset(Notify(w) for w in words)
    except ValueError as exc:
        raise DsnParameterError(f"unknown NOTIFY keyword in {value!r}", section="4.1") from exc
    # RFC 3461 section 4.1 note a: NEVER MUST appear by itself.
    if Notify.NEVER in keywords and len(words) > 1:
        raise DsnParameterError("NOTIFY=NEVER must appear by itself", section="4.1")
    return keywords


def esmtp_param(params: Iterable[str], keyword: str) -> str | None:
    """The value of ``KEYWORD=value`` among ESMTP parameters (keywords are case-insensitive)."""
    wanted = keyword.upper()
    for param in params:
        name, _, value = param.partition("=")
        if name.upper() == wanted:
            return value
    return None


def failure_dsn_wanted(sender: str, rcpt_params: Sequence[str]) -> bool:
    """Whether a "failed" DSN is owed for one recipient."""
    # RFC 3461 section 5.2: never a DSN for a message whose reverse path is null (no loops).
    if sender == "":
        return False
    notify = esmtp_param(rcpt_params, "NOTIFY")
    if notify is None:
        return True  # RFC 3461 section 5.2.6 (c)
    try:
        keywords = parse_notify(notify)
    except DsnParameterError:
        return True  # a malformed NOTIFY cannot opt out: err on the side of telling the sender
    return Notify.FAILURE in keywords  # RFC 3461 section 5.2.6 (a) and (b)


def original_recipient(rcpt_params: Sequence[str]) -> str | None:
    """RFC 3461 section 6.3 (d): the Original-Recipient value, from a well-formed ORCPT."""
    orcpt = esmtp_param(rcpt_params, "ORCPT")
    if orcpt is None or ";" not in orcpt:
        return None
    addr_type, _, xtext = orcpt.partition(";")
    try:
        return f"{addr_type};{xtext_decode(xtext)}"
    except DsnParameterError:
        return None


def envelope_id(mail_params: Sequence[str]) -> str | None:
    """RFC 3461 section 6.3 (a): the decoded ENVID, or None when absent or malformed."""
    envid = esmtp_param(mail_params, "ENVID")
    if envid is None:
        return None
    try:
        return xtext_decode(envid)
    except DsnParameterError:
        return None


def wants_full_return(mail_params: Sequence[str]) -> bool:
    """RFC 3461 section 4.3: RET=FULL asks for the whole message (any case)."""
    ret = esmtp_param(mail_params, "RET")
    return ret is not None and ret.upper() == "FULL"


def status_from_reply(code: int, text: str) -> str:
    """The enhanced status code (RFC 3463) for an SMTP reply: the one the server gave at the
    start of its text when it is well formed and agrees with the reply class, else the
    generic X.0.0 that RFC 3461 section 6.3 (g) prescribes."""
    first = text.split(" ", 1)[0] if text else ""
    match = _STATUS_RE.match(first)
    if match and match.group(1) == str(code)[0]:
        return first
    return "5.0.0" if 500 <= code < 600 else "4.0.0"


def address_field(address: str) -> str:
    """An envelope address as an RFC 3464 generic-address with its address-type: "rfc822" for
    ASCII, "utf-8" with RFC 6533 \\x{HEX} escapes otherwise (case preserved, section 2.3.2)."""
    clean = sanitize_field_text(address)
    if clean.isascii():
        return f"rfc822;{clean}"
    escaped = "".join(ch if ord(ch) < 128 else f"\\x{{{ord(ch):X}}}" for ch in clean)
    return f"utf-8;{escaped[:900]}"


def _date(at: float) -> str:
    # RFC 3464 sections 2.2.5 and 2.3.7: numeric time zones MUST be used.
    return format_datetime(datetime.fromtimestamp(at, UTC))


def _headers_of(message: bytes) -> bytes:
    for sep in (b"\r\n\r\n", b"\n\n"):
        index = message.find(sep)
        if index >= 0:
            return message[: index + len(sep) // 2]
    return message


def _human_part(request: DsnRequest) -> MIMEText:
    lines = [
        f"This is the mail system at host {request.reporting_mta}.",
        "",
        "Your message could not be delivered to one or more recipients.",
        "The mail system gave up on the recipients listed below.",
        "",
    ]
    for rcpt in request.recipients:
        reason = rcpt.diagnostic or f"status {rcpt.status}"
        host = f" (while talking to {rcpt.remote_mta})" if rcpt.remote_mta else ""
        lines.append(f"<{sanitize_field_text(rcpt.final_recipient)}>{host}: {reason}")
    body = "\n".join(sanitize_field_text(line) for line in lines) + "\n"
    return MIMEText(body, "plain", "us-ascii" if body.isascii() else "utf-8")


def _delivery_status_part(request: DsnRequest) -> MIMEBase:
    per_message = Message()
    if request.envid is not None:
        per_message["Original-Envelope-Id"] = sanitize_field_text(request.envid)
    # RFC 3461 section 6.3 (b): Reporting-MTA with mta-name-type "dns".
    per_message["Reporting-MTA"] = f"dns;{sanitize_field_text(request.reporting_mta)}"
    per_message["Arrival-Date"] = _date(request.arrival_date)
    blocks: list[Message | str] = [per_message]
    for rcpt in request.recipients:
        block = Message()
        if rcpt.original_recipient is not None:  # RFC 3461 section 6.3 (d)
            block["Original-Recipient"] = sanitize_field_text(rcpt.original_recipient)
        block["Final-Recipient"] = address_field(rcpt.final_recipient)  # section 6.3 (e)
        block["Action"] = rcpt.action.value  # RFC 3464 section 2.3.3
        block["Status"] = rcpt.status if _STATUS_RE.match(rcpt.status) else "5.0.0"
        if rcpt.remote_mta is not None:  # RFC 3461 section 6.3 (h)
            block["Remote-MTA"] = f"dns;{sanitize_field_text(rcpt.remote_mta)}"
        if rcpt.diagnostic is not None:  # RFC 3461 section 6.3 (i)
            block["Diagnostic-Code"] = f"smtp;{sanitize_field_text(rcpt.diagnostic)}"
        if rcpt.last_attempt_at is not None:
            block["Last-Attempt-Date"] = _date(rcpt.last_attempt_at)
        blocks.append(block)
    part = MIMEBase("message", "delivery-status")
    del part["MIME-Version"]
    part.set_payload(blocks)
    return part


def _returned_part(request: DsnRequest) -> Message:
    original = request.original_message
    if request.return_full and len(original) <= FULL_RETURN_LIMIT:
        part: Message = MIMEMessage(email.message_from_bytes(original, policy=_POLICY))
    else:
        headers = _headers_of(original).decode("utf-8", errors="replace").replace("\r\n", "\n")
        part = MIMEText(headers, "rfc822-headers", "us-ascii" if headers.isascii() else "utf-8")
    del part["MIME-Version"]
    return part


def build_dsn(request: DsnRequest) -> bytes:
    """The DSN as a complete RFC 5322 message (CRLF line ends), to be sent from ``<>`` to
    ``request.original_sender`` (RFC 3461 section 6.1, RFC 3464 section 2)."""
    if not request.original_sender:
        raise ValueError("RFC 3461 section 5.2: no DSN for a message with a null reverse path")
    if not request.recipients:
        raise ValueError("a DSN reports on at least one recipient (RFC 3464 section 2.1)")
    report = MIMEMultipart("report", boundary=f"=_dsn_{request.token}", report_type="delivery-status")
    host = sanitize_field_text(request.reporting_mta)
    report["From"] = f"Mail Delivery System <MAILER-DAEMON@{host}>"
    # RFC 3464 section 2: addressed in the header to the envelope return address.
    report["To"] = f"<{sanitize_field_text(request.original_sender)}>"
    report["Subject"] = "Undelivered Mail Returned to Sender"
    report["Date"] = _date(request.created_at)
    report["Message-ID"] = f"<{request.token}@{host}>"
    report["Auto-Submitted"] = "auto-replied"  # RFC 3834 section 5: no auto-replies to it
    report.attach(_human_part(request))
    report.attach(_delivery_status_part(request))
    report.attach(_returned_part(request))
    buffer = BytesIO()
    BytesGenerator(buffer, mangle_from_=False, policy=_POLICY).flatten(report)
    return buffer.getvalue()
