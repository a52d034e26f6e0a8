"""Packaging a TLSRPT report for delivery (RFC 8460 sections 3, 5.1-5.4), sans-IO.

* :func:`report_filename`, section 5.1:
  ``sender!policy-domain!begin-timestamp!end-timestamp[!unique-id].(json|json.gz)``, the
  sender being the domain of ``contact-info`` and both domains in A-labels.
* :func:`gzip_bytes`, section 5.2: the report SHOULD be gzip-compressed, for mail and HTTPS
  alike (``mtime`` 0, so the same report always compresses to the same bytes).
* :func:`https_payload`, section 5.4: the POST body and its media type,
  ``application/tlsrpt+gzip`` or ``application/tlsrpt+json``.
* :func:`report_mail`, sections 3 and 5.3: a ``multipart/report; report-type="tlsrpt"``
  message with a human-readable ``text/plain`` part and the report part (attachment named by
  5.1), the header fields ``TLS-Report-Domain`` and ``TLS-Report-Submitter`` (the latter
  equal to the domain of ``contact-info``), the Subject of 5.3 (``Report Domain: <d>
  Submitter: <s> Report-ID: <id>``), signed with DKIM by the reporting domain without ``l=``
  (section 3) over a header list that includes both TLS-Report fields (5.3: "SHOULD be
  included in the DKIM signature"). The example in 5.3.1 is not self-consistent (its filename
  names other domains than its headers); the fields here follow the prose.
* :func:`dkim_key_record`, section 3: the reporter's DKIM key record with ``s=tlsrpt``.

The MIME text is written here rather than by :mod:`email`: the stdlib generator encodes a long
Subject's ``Report-ID`` as RFC 2047 words and a long filename as RFC 2231 continuations, both
legal but neither what section 5.3 shows, and a receiver that greps for ``Report-ID: <`` or the
filename would miss them. Lines end in CRLF; the longest (the filename parameter) stays far
below the 998 octets of RFC 5322.

dkimpy ships no type hints; it is reached through :meth:`DkimSigner.sign` only.
"""

from __future__ import annotations

import base64
import email.utils
import gzip as gzip_module
import importlib
import json
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from reference_impl.tlsrpt.errors import ReportError, TlsRptError
from reference_impl.tlsrpt.model import Report, rfc3339

__all__ = [
    "DKIM_SIGNED_HEADERS",
    "MEDIA_TYPE_GZIP",
    "MEDIA_TYPE_JSON",
    "DkimSigner",
    "MailShape",
    "dkim_key_record",
    "document_bytes",
    "gzip_bytes",
    "https_payload",
    "media_type",
    "report_filename",
    "report_mail",
    "report_subject",
    "submitter_of",
]

MEDIA_TYPE_GZIP = "application/tlsrpt+gzip"  # sections 5.3, 5.4, 6.4
MEDIA_TYPE_JSON = "application/tlsrpt+json"  # sections 5.3, 5.4, 6.3
REPORT_CONTAINER = 'multipart/report; report-type="tlsrpt"'  # section 5.3, 6.2

# Section 3 "DKIM" and 5.3: From is required by RFC 6376; the TLS-Report fields SHOULD be signed.
DKIM_SIGNED_HEADERS = (
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "TLS-Report-Domain",
    "TLS-Report-Submitter",
    "MIME-Version",
    "Content-Type",
)

_UNIQUE_ID = re.compile(r"[A-Za-z0-9]+")  # section 5.1: unique-id = 1*(ALPHA / DIGIT)
_BAD_HEADER_TEXT = re.compile(r"[\x00-\x1f\x7f]")


def media_type(gzip: bool) -> str:
    """Section 5.4: ``application/tlsrpt+gzip`` for a compressed report, else ``+json``."""
    return MEDIA_TYPE_GZIP if gzip else MEDIA_TYPE_JSON


def gzip_bytes(data: bytes) -> bytes:
    """Section 5.2: gzip (RFC 1952), deterministic (no timestamp, no file name)."""
    return gzip_module.compress(data, mtime=0)


def document_bytes(document: dict[str, Any]) -> bytes:
    """A report document as I-JSON text (RFC 7493), the way :meth:`Report.to_bytes` writes it."""
    return json.dumps(document, ensure_ascii=False, indent=1).encode("utf-8")


def submitter_of(contact_info: str) -> str:
    """Section 5.1 ``sender`` / 5.3 ``TLS-Report-Submitter``: the domain of ``contact-info``."""
    _, at, domain = contact_info.rpartition("@")
    if not at or not domain:
        raise ReportError("contact-info-not-address", "5.3", f"contact-info {contact_info!r} has no domain")
    return domain.rstrip(".").lower()


def report_filename(
    submitter: str,
    policy_domain: str,
    start: datetime,
    end: datetime,
    unique_id: str | None = None,
    *,
    gzip: bool = True,
) -> str:
    """Section 5.1: ``submitter!policy-domain!begin!end[!unique-id].json[.gz]`` (UNIX seconds)."""
    if unique_id is not None and not _UNIQUE_ID.fullmatch(unique_id):
        raise ReportError("filename-unique-id", "5.1", f"unique-id {unique_id!r} is not 1*(ALPHA / DIGIT)")
    for name in (submitter, policy_domain):
        if not name or "!" in name or _BAD_HEADER_TEXT.search(name):
            raise ReportError("filename-domain", "5.1", f"{name!r} cannot be a filename domain")
    parts = [submitter, policy_domain, str(int(start.timestamp())), str(int(end.timestamp()))]
    if unique_id is not None:
        parts.append(unique_id)
    # Section 5.1: "The extension MUST be "json" for a plain JSON file or "json.gz" for ... gzip."
    return "!".join(parts) + (".json.gz" if gzip else ".json")


def https_payload(report: Report, *, gzip: bool = True, document: bytes | None = None) -> tuple[bytes, str]:
    """Section 5.4: the POST body (the report, gzip-compressed unless ``gzip`` is false) and
    its media type. ``document`` replaces the report's own JSON text (variants use it)."""
    text = report.to_bytes() if document is None else document
    return (gzip_bytes(text) if gzip else text), media_type(gzip)


def report_subject(policy_domain: str, submitter: str, report_id: str) -> str:
    """Section 5.3 ``tlsrpt-subject``, unfolded: ``Report Domain: d Submitter: s Report-ID: <id>``."""
    return f"Report Domain: {policy_domain} Submitter: {submitter} Report-ID: <{report_id}>"


@dataclass(frozen=True, slots=True)
class MailShape:
    """The parts of the message's form that variants change; the defaults are section 5.3."""

    report_headers: bool = True  # TLS-Report-Domain and TLS-Report-Submitter ("MUST be included")
    content_type: str = REPORT_CONTAINER


@dataclass(frozen=True, slots=True)
class DkimSigner:
    """Signs report mail for the reporting domain (section 3: a valid DKIM signature, no ``l=``)."""

    domain: str
    selector: str
    private_key_pem: bytes
    body_length_tag: bool = False  # ``l=``: section 3 "MUST NOT"; True only in a mutant

    def sign(self, message: bytes, headers: tuple[str, ...]) -> bytes:
        """The ``DKIM-Signature`` header field (CRLF-terminated) for ``message``."""
        dkim: Any = importlib.import_module("dkim")  # untyped library, one typed entry point
        try:
            field: bytes = dkim.sign(
                message,
                self.selector.encode("ascii"),
                self.domain.encode("ascii"),
                self.private_key_pem,
                include_headers=[h.encode("ascii") for h in headers],
                canonicalize=(b"relaxed", b"relaxed"),
                length=self.body_length_tag,
                # dkimpy's tlsrpt mode drops l= by itself (RFC 8460 section 3); the mutant needs it off.
                tlsrpt=not self.body_length_tag,
            )
        except (dkim.DKIMException, ValueError, UnicodeError) as exc:
            raise TlsRptError("dkim-sign-failed", "3", f"cannot DKIM-sign the report: {exc}") from exc
        return field


def _header(name: str, value: str) -> bytes:
    if _BAD_HEADER_TEXT.search(value.replace("\r\n ", "")):
        raise ReportError("mail-header-text", "5.3", f"{name} value {value!r} has control characters")
    return f"{name}: {value}\r\n".encode()


def _base64_lines(data: bytes) -> bytes:
    encoded = base64.b64encode(data)
    return b"".join(encoded[i : i + 76] + b"\r\n" for i in range(0, len(encoded), 76))


def _text_part(report: Report, policy_domain: str, submitter: str) -> tuple[str, bytes]:
    failed = sum(p.failed for p in report.policies)
    succeeded = sum(p.successful for p in report.policies)
    text = (
        f"This is an aggregate TLS report from {submitter} about {policy_domain}\r\n"
        f"(RFC 8460), covering {rfc3339(report.start)} to {rfc3339(report.end)}.\r\n"
        f"\r\n"
        f"Organization: {report.organization_name}\r\n"
        f"Report-ID: {report.report_id}\r\n"
        f"Successful sessions: {succeeded}\r\n"
        f"Failed sessions: {failed}\r\n"
    )
    if text.isascii():
        return 'Content-Type: text/plain; charset="us-ascii"\r\nContent-Transfer-Encoding: 7bit\r\n', text.encode()
    head = 'Content-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: base64\r\n'
    return head, _base64_lines(text.encode("utf-8"))


def report_mail(
    report: Report,
    *,
    from_addr: str,
    to_addr: str,
    submitter: str,
    date: datetime,
    message_id: str,
    dkim: DkimSigner | None,
    gzip: bool = True,
    document: bytes | None = None,
    part_type: str | None = None,
    filename: str | None = None,
    shape: MailShape | None = None,
    boundary: str | None = None,
    unique_id: str | None = None,
) -> bytes:
    """The report as an RFC 5322 message (section 5.3), DKIM-signed when ``dkim`` is given.

    ``document`` replaces the report's JSON text, ``part_type`` the report part's media type,
    ``filename`` the 5.1 name and ``shape`` the message's form (variants use them).
    """
    if not report.policies:
        raise ReportError("report-no-policies", "4", "a report names at least one policy")
    policy_domain = report.policies[0].policy_domain
    shape = shape or MailShape()
    text = report.to_bytes() if document is None else document
    body = gzip_bytes(text) if gzip else text
    name = filename or report_filename(submitter, policy_domain, report.start, report.end, unique_id, gzip=gzip)
    boundary = boundary or f"=_tlsrpt_{secrets.token_hex(12)}"
    msg_id = message_id if message_id.startswith("<") else f"<{message_id}>"

    headers = [
        _header("From", from_addr),
        _header("To", to_addr),
        _header("Date", email.utils.format_datetime(date)),
        _header("Message-ID", msg_id),
        # Section 5.3: the Subject folded at its FWS, as the example shows.
        _header(
            "Subject", f"Report Domain: {policy_domain}\r\n Submitter: {submitter}\r\n Report-ID: <{report.report_id}>"
        ),
    ]
    if shape.report_headers:
        headers += [_header("TLS-Report-Domain", policy_domain), _header("TLS-Report-Submitter", submitter)]
    headers += [
        _header("MIME-Version", "1.0"),
        _header("Content-Type", f'{shape.content_type};\r\n boundary="{boundary}"'),
    ]
    text_head, text_body = _text_part(report, policy_domain, submitter)
    delimiter = f"--{boundary}\r\n".encode()
    content = b"".join(
        [
            b"\r\nThis is a multipart message in MIME format.\r\n\r\n",
            delimiter,
            text_head.encode(),
            b"\r\n",
            text_body,
            b"\r\n",
            delimiter,
            f"Content-Type: {part_type or media_type(gzip)}\r\n".encode(),
            b"Content-Transfer-Encoding: base64\r\n",
            f'Content-Disposition: attachment;\r\n filename="{name}"\r\n'.encode(),
            b"\r\n",
            _base64_lines(body),
            f"--{boundary}--\r\n".encode(),
        ]
    )
    message = b"".join(headers) + content
    if dkim is None:
        return message
    present = {line.split(b":", 1)[0].decode().lower() for line in headers}
    signed = tuple(h for h in DKIM_SIGNED_HEADERS if h.lower() in present)
    return dkim.sign(message, signed) + message


def dkim_key_record(public_key: bytes | str) -> str:
    """Section 3: the DKIM key record of the reporter, ``v=DKIM1; k=rsa; s=tlsrpt; p=<base64>``.

    Takes a public key (PEM or DER SubjectPublicKeyInfo) or a PEM private key (its public half
    is published). ``s=tlsrpt`` is the service type section 3 asks for ("SHOULD contain").
    """
    data = public_key.encode("ascii", "replace") if isinstance(public_key, str) else public_key
    try:
        if b"PRIVATE KEY-----" in data:
            key: Any = serialization.load_pem_private_key(data, password=None).public_key()
        elif data.lstrip().startswith(b"-----BEGIN"):
            key = serialization.load_pem_public_key(data)
        else:
            key = serialization.load_der_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise TlsRptError("dkim-key-unreadable", "3", f"not a usable key: {exc}") from exc
    if isinstance(key, rsa.RSAPublicKey):
        kind = "rsa"
        der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    elif isinstance(key, ed25519.Ed25519PublicKey):
        kind = "ed25519"  # RFC 8463: p= is the raw 32-octet key
        der = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    else:
        raise TlsRptError("dkim-key-unreadable", "3", f"DKIM has no key type for {type(key).__name__}")
    return f"v=DKIM1; k={kind}; s=tlsrpt; p={base64.b64encode(der).decode('ascii')}"
