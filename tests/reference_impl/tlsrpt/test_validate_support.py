"""Builders for the validator tests: a clean report, its variants, report mails and DKIM keys.

Written from RFC 8460 alone (not from the reference generator), like the validator itself.
Holds no tests; the name only keeps it among the validator's test files.
"""

from __future__ import annotations

import base64
import copy
import functools
import gzip
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import SMTP
from pathlib import Path
from typing import Any

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from reference_impl.tlsrpt.validate import Validation

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "tlsrpt"
START = datetime(2026, 11, 27, tzinfo=UTC)
BEGIN_STAMP = int(START.timestamp())
END_STAMP = BEGIN_STAMP + 86400
SENDER = "sender.example"
POLICY_DOMAIN = "receiver.example"
GOOD_FILENAME = f"{SENDER}!{POLICY_DOMAIN}!{BEGIN_STAMP}!{END_STAMP}!001.json.gz"
SELECTOR = "tlsrpt2026"

_GOOD: dict[str, Any] = {
    "organization-name": "Sender Example Inc.",
    "date-range": {"start-datetime": "2026-11-27T00:00:00Z", "end-datetime": "2026-11-28T00:00:00Z"},
    "contact-info": f"tlsrpt@{SENDER}",
    "report-id": "2026-11-27T00:00:00Z_receiver.example",
    "policies": [
        {
            "policy": {
                "policy-type": "sts",
                "policy-string": [
                    "version: STSv1",
                    "mode: enforce",
                    "mx: mx1.receiver.example",
                    "mx: *.backup.receiver.example",
                    "max_age: 604800",
                ],
                "policy-domain": POLICY_DOMAIN,
                "mx-host": ["mx1.receiver.example", "*.backup.receiver.example"],
            },
            "summary": {"total-successful-session-count": 120, "total-failure-session-count": 5},
            "failure-details": [
                {
                    "result-type": "certificate-expired",
                    "sending-mta-ip": "192.0.2.10",
                    "receiving-mx-hostname": "mx1.receiver.example",
                    "receiving-mx-helo": "mx1.receiver.example",
                    "receiving-ip": "198.51.100.25",
                    "failed-session-count": 3,
                },
                {
                    "result-type": "validation-failure",
                    "sending-mta-ip": "2001:db8::10",
                    "receiving-mx-hostname": "mx2.backup.receiver.example",
                    "receiving-ip": "2001:db8:1::25",
                    "failed-session-count": 2,
                    "additional-information": "https://reports.sender.example/info?id=42",
                    "failure-reason-code": "X509_V_ERR_UNHANDLED_CRITICAL_CRL_EXTENSION",
                },
            ],
        },
        {
            "policy": {
                "policy-type": "tlsa",
                "policy-string": ["3 1 1 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF"],
                "policy-domain": POLICY_DOMAIN,
            },
            "summary": {"total-successful-session-count": 40, "total-failure-session-count": 0},
        },
    ],
}

DELETE = object()  # the value that removes a key in :func:`variant`


def good_report() -> dict[str, Any]:
    """A report that breaks no rule: every field, both policy kinds, counts that add up."""
    return copy.deepcopy(_GOOD)


def variant(path: str, value: object, report: dict[str, Any] | None = None) -> dict[str, Any]:
    """A copy of ``report`` (default: the good one) with ``value`` at the "/"-separated ``path``."""
    out = copy.deepcopy(report) if report is not None else good_report()
    *parents, last = [int(part) if part.isdigit() else part for part in path.strip("/").split("/")]
    node: Any = out
    for part in parents:
        node = node[part]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return out


def encode(report: object) -> bytes:
    return json.dumps(report, indent=1).encode("utf-8")


def gzipped(report: object) -> bytes:
    return gzip.compress(encode(report), mtime=0)


def appendix_b() -> bytes:
    return (FIXTURES / "appendix-b.json").read_bytes()


def rules(validation: Validation) -> set[tuple[str, str]]:
    """``{(rule, severity)}`` of every finding."""
    return {(f.rule, f.severity) for f in validation.findings}


# ---------------------------------------------------------------- mail and DKIM


@dataclass(frozen=True)
class SigningKey:
    pem: bytes  # PKCS#1, the form dkimpy reads
    public_b64: str

    def record(self, service: str | None = "tlsrpt") -> bytes:
        tags = ["v=DKIM1", "k=rsa"] + ([f"s={service}"] if service is not None else []) + [f"p={self.public_b64}"]
        return "; ".join(tags).encode("ascii")


@functools.cache
def signing_key() -> SigningKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return SigningKey(pem, base64.b64encode(der).decode("ascii"))


def lookup(records: dict[str, list[bytes]]) -> Callable[[str], list[bytes] | None]:
    """A ``txt_lookup`` answering from a dict (name without trailing dot)."""
    return lambda name: records.get(name.lower())


def key_lookup(service: str | None = "tlsrpt", domain: str = SENDER) -> Callable[[str], list[bytes] | None]:
    return lookup({f"{SELECTOR}._domainkey.{domain}": [signing_key().record(service)]})


REPORT_SIGNED_HEADERS = (
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "mime-version",
    "content-type",
    "tls-report-domain",
    "tls-report-submitter",
)


def sign(
    message: bytes,
    *,
    domain: str = SENDER,
    headers: Sequence[str] = REPORT_SIGNED_HEADERS,
    length: bool = False,
) -> bytes:
    """``message`` with a DKIM-Signature (rsa-sha256, relaxed/simple) prepended."""
    signature = dkim.sign(
        message,
        SELECTOR.encode(),
        domain.encode(),
        signing_key().pem,
        include_headers=[h.encode() for h in headers],
        length=length,
    )
    assert isinstance(signature, bytes)
    return signature + message


def report_part(
    body: bytes, media_type: str = "application/tlsrpt+gzip", filename: str | None = GOOD_FILENAME
) -> Message:
    maintype, subtype = media_type.split("/", 1)
    part = MIMEApplication(body, subtype, policy=SMTP)
    if maintype != "application":
        part.replace_header("Content-Type", media_type)
    if filename is not None:
        part.add_header("Content-Disposition", "attachment", filename=filename)
    return part


def report_mail(
    report: object | None = None,
    *,
    parts: Sequence[Message] | None = None,
    content_type: tuple[str, dict[str, str]] = ("report", {"report-type": "tlsrpt"}),
    headers: dict[str, str | None] | None = None,
) -> bytes:
    """An unsigned report message (section 5.3): multipart/report, a text part, the gzip report."""
    if parts is None:
        text = MIMEText(f"This is an aggregate TLS report from {SENDER}\n", "plain", "us-ascii", policy=SMTP)
        parts = [text, report_part(gzipped(report if report is not None else good_report()))]
    subtype, params = content_type
    msg = MIMEMultipart(subtype, policy=SMTP)
    for param, param_value in params.items():
        msg.set_param(param, param_value)
    for part in parts:
        msg.attach(part)
    fields: dict[str, str | None] = {
        "From": f"tlsrpt@{SENDER}",
        "To": f"tlsrpt@{POLICY_DOMAIN}",
        "Date": "Sat, 28 Nov 2026 04:12:00 +0000",
        "Message-ID": f"<report-001@{SENDER}>",
        "Subject": f"Report Domain: {POLICY_DOMAIN} Submitter: {SENDER} Report-ID: <report-001@{SENDER}>",
        "TLS-Report-Domain": POLICY_DOMAIN,
        "TLS-Report-Submitter": SENDER,
    }
    fields.update(headers or {})
    for name, value in fields.items():
        if value is not None:
            msg[name] = value
    return msg.as_bytes()
