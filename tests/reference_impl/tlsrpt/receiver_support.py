"""Shared test data for the receiver tests: sample reports, a stub judge, signed report mail."""

from __future__ import annotations

import base64
import functools
import gzip
import json
import zlib
from dataclasses import dataclass, field
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import SMTP
from typing import Any

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from reference_impl.tlsrpt.errors import Finding
from reference_impl.tlsrpt.receiver_judges import PayloadJudge, ValidationResult

POLICY_DOMAIN = "company-y.example"
SENDER_DOMAIN = "company-x.example"
SELECTOR = "tlsrpt2024"


def sample_report(
    *,
    policy_domain: str = POLICY_DOMAIN,
    contact: str = f"smtp-tls-reporting@{SENDER_DOMAIN}",
    report_id: str = "5065427c-23d3-47ca-b6e0-946ea0e8c4be",
    organization: str = "Company-X",
) -> dict[str, Any]:
    """A valid report in the shape of RFC 8460 Appendix B, with the keys of the 4.4 schema."""
    return {
        "organization-name": organization,
        "date-range": {"start-datetime": "2016-04-01T00:00:00Z", "end-datetime": "2016-04-02T00:00:00Z"},
        "contact-info": contact,
        "report-id": report_id,
        "policies": [
            {
                "policy": {
                    "policy-type": "sts",
                    "policy-string": [
                        "version: STSv1",
                        "mode: testing",
                        f"mx: *.mail.{policy_domain}",
                        "max_age: 86400",
                    ],
                    "policy-domain": policy_domain,
                    "mx-host": [f"*.mail.{policy_domain}"],
                },
                "summary": {"total-successful-session-count": 5326, "total-failure-session-count": 303},
                "failure-details": [
                    {
                        "result-type": "certificate-expired",
                        "sending-mta-ip": "2001:db8:abcd:12::1",
                        "receiving-mx-hostname": f"mx1.mail.{policy_domain}",
                        "receiving-ip": "2001:db8:abcd:13::1",
                        "failed-session-count": 100,
                    },
                    {
                        "result-type": "starttls-not-supported",
                        "sending-mta-ip": "2001:db8:abcd:12::1",
                        "receiving-mx-hostname": f"mx2.mail.{policy_domain}",
                        "receiving-ip": "203.0.113.56",
                        "failed-session-count": 200,
                        "additional-information": "https://reports.company-x.example/report_info?id=5065427c",
                    },
                    {
                        "result-type": "validation-failure",
                        "sending-mta-ip": "198.51.100.62",
                        "receiving-ip": "203.0.113.58",
                        "receiving-mx-hostname": f"mx-backup.mail.{policy_domain}",
                        "failed-session-count": 3,
                        "failure-reason-code": "X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED",
                    },
                ],
            }
        ],
    }


def report_json(report: dict[str, Any] | None = None) -> bytes:
    return json.dumps(report if report is not None else sample_report(), indent=1).encode("utf-8")


def report_gzip(report: dict[str, Any] | None = None) -> bytes:
    return gzip.compress(report_json(report), mtime=0)


# -- a stub judge: the core tests do not depend on the validator's rule set ------------------


@dataclass
class StubValidation:
    findings: list[Finding] = field(default_factory=list)
    report: dict[str, Any] | None = None


REQUIRED_KEYS = ("organization-name", "date-range", "contact-info", "report-id", "policies")


def stub_judge(data: bytes, *, content_type: str | None = None, filename: str | None = None) -> ValidationResult:
    """Gzip by media type (or magic), JSON, the five top-level keys; errors name a rule."""
    result = StubValidation()
    gzipped = content_type == "application/tlsrpt+gzip" or (content_type is None and data[:2] == b"\x1f\x8b")
    if gzipped:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error):
            result.findings.append(Finding("gzip-invalid", "5.2", "error", "not gzip"))
            return result
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        result.findings.append(Finding("json-syntax", "4", "error", "not JSON"))
        return result
    if not isinstance(value, dict):
        result.findings.append(Finding("report-schema", "4.4", "error", "not an object"))
        return result
    result.report = value
    for key in REQUIRED_KEYS:
        if key not in value:
            result.findings.append(Finding("report-schema", "4.4", "error", f"{key} missing", where=f"/{key}"))
    return result


def real_judge() -> PayloadJudge | None:
    """The project's validator, once ``reference_impl.tlsrpt.validate`` exists."""
    try:
        from reference_impl.tlsrpt.receiver_judges import default_payload_judge

        return default_payload_judge()
    except RuntimeError:
        return None


def best_judge() -> PayloadJudge:
    return real_judge() or stub_judge


# -- DKIM-signed report mail ------------------------------------------------------------------


@dataclass(frozen=True)
class SigningKey:
    private_pem: bytes
    public_b64: bytes

    def record(self, service: str | None = "tlsrpt") -> bytes:
        tag = f" s={service};" if service is not None else ""
        return f"v=DKIM1; k=rsa;{tag} p=".encode("ascii") + self.public_b64


@functools.cache
def signing_key(index: int = 0) -> SigningKey:
    """An RSA-2048 key (cached: key generation is slow); ``index`` picks another key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return SigningKey(pem, base64.b64encode(der))


def report_message(
    payload: bytes | None = None,
    *,
    media_type: str = "application/tlsrpt+gzip",
    subject_domain: str = POLICY_DOMAIN,
    header_domain: str = POLICY_DOMAIN,
    submitter: str = SENDER_DOMAIN,
    filename: str | None = None,
    sender: str = f"tlsrpt@{SENDER_DOMAIN}",
    recipient: str = f"tlsrpt@{POLICY_DOMAIN}",
) -> bytes:
    """A section 5.3 report message (multipart/report; report-type="tlsrpt"), unsigned."""
    data = payload if payload is not None else report_gzip()
    suffix = ".json.gz" if media_type.endswith("gzip") else ".json"
    name = filename if filename is not None else f"{submitter}!{subject_domain}!1459468800!1459555200{suffix}"
    message = MIMEMultipart("report")
    message.set_param("report-type", "tlsrpt")
    message["From"] = sender
    message["To"] = recipient
    message["Date"] = "Fri, 01 Apr 2016 16:54:30 -0800"
    message["Subject"] = f"Report Domain: {subject_domain} Submitter: {submitter} Report-ID: <5065427c@{submitter}>"
    message["TLS-Report-Domain"] = header_domain
    message["TLS-Report-Submitter"] = submitter
    message.attach(MIMEText(f"This is an aggregate TLS report from {submitter}\n"))
    part = MIMEApplication(data, media_type.split("/", 1)[1])
    part.add_header("Content-Disposition", "attachment", filename=name)
    message.attach(part)
    return message.as_bytes(policy=SMTP)


SIGNED_HEADERS = [b"from", b"to", b"date", b"subject", b"tls-report-domain", b"tls-report-submitter", b"content-type"]


def signed(
    message: bytes,
    *,
    domain: str = SENDER_DOMAIN,
    selector: str = SELECTOR,
    key: SigningKey | None = None,
    length: bool = False,
) -> bytes:
    """``message`` with a DKIM-Signature by ``domain`` prepended (dkimpy, rsa-sha256)."""
    key = key or signing_key()
    signature = dkim.sign(
        message,
        selector.encode("ascii"),
        domain.encode("ascii"),
        key.private_pem,
        include_headers=SIGNED_HEADERS,
        length=length,
    )
    return bytes(signature) + message


def key_records(
    domain: str = SENDER_DOMAIN,
    selector: str = SELECTOR,
    *,
    service: str | None = "tlsrpt",
    key: SigningKey | None = None,
) -> dict[str, list[bytes]]:
    return {f"{selector}._domainkey.{domain}": [(key or signing_key()).record(service)]}


def dict_lookup(records: dict[str, list[bytes]]) -> Any:
    """A dict-backed ``txt_lookup``: names without the trailing dot, case-insensitive."""
    lowered = {name.lower(): value for name, value in records.items()}

    def lookup(name: str) -> list[bytes] | None:
        return lowered.get(name.rstrip(".").lower())

    return lookup
