"""RFC 8460 sections 3 and 5.1-5.4: filename, compression, HTTPS payload, report mail and DKIM."""

from __future__ import annotations

import base64
import email
import email.policy
import gzip
import importlib
import json
import re
from datetime import UTC, date, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from hypothesis import given
from hypothesis import strategies as st

from reference_impl.tlsrpt.compose import (
    MEDIA_TYPE_GZIP,
    MEDIA_TYPE_JSON,
    DkimSigner,
    MailShape,
    dkim_key_record,
    gzip_bytes,
    https_payload,
    report_filename,
    report_mail,
    report_subject,
    submitter_of,
)
from reference_impl.tlsrpt.errors import ReportError, TlsRptError
from reference_impl.tlsrpt.model import FailureDetail, PolicyReport, PolicyType, Report, ResultType, day_window

dkim: Any = importlib.import_module("dkim")

START, END = day_window(date(2026, 11, 28))
REPORT = Report(
    organization_name="Example Reporter",
    start=START,
    end=END,
    contact_info="tlsrpt@reporter.test",
    report_id="2026-11-28.d.test.ab12@reporter.test",
    policies=(
        PolicyReport(
            PolicyType.STS,
            "d.test",
            ("version: STSv1", "mode: enforce", "mx: mx1.d.test", "max_age: 86400"),
            ("mx1.d.test",),
            successful=3,
            failed=1,
            failures=(FailureDetail(ResultType.CERTIFICATE_EXPIRED, 1, receiving_mx_hostname="mx1.d.test"),),
        ),
    ),
)
FILENAME = re.compile(r"^[a-z0-9.\-]+![a-z0-9.\-]+!\d+!\d+(![A-Za-z0-9]+)?\.json(\.gz)?$")  # section 5.1


@pytest.fixture(scope="module")
def key_pem() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def signer(key_pem: bytes, **changes: Any) -> DkimSigner:
    return DkimSigner(domain="reporter.test", selector="tlsrpt", private_key_pem=key_pem, **changes)


def dns_for(key_pem: bytes) -> Any:
    record = dkim_key_record(key_pem).encode()

    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        return record if name == b"tlsrpt._domainkey.reporter.test." else None

    return lookup


def mail(key_pem: bytes | None, **changes: Any) -> bytes:
    values: dict[str, Any] = {
        "from_addr": "tlsrpt-noreply@reporter.test",
        "to_addr": "reports@d.test",
        "submitter": "reporter.test",
        "date": datetime(2026, 11, 29, 0, 5, tzinfo=UTC),
        "message_id": "m1@reporter.test",
        "dkim": signer(key_pem) if key_pem else None,
        "unique_id": "ab12",
    }
    values.update(changes)
    return report_mail(REPORT, **values)


# -- filename, compression, HTTPS (5.1, 5.2, 5.4) ----------------------------------------------


def test_filename_follows_section_5_1() -> None:
    name = report_filename("reporter.test", "d.test", START, END, "ab12")
    assert name == f"reporter.test!d.test!{int(START.timestamp())}!{int(END.timestamp())}!ab12.json.gz"
    assert report_filename("reporter.test", "d.test", START, END, gzip=False).endswith(f"!{int(END.timestamp())}.json")
    with pytest.raises(ReportError, match="unique-id"):
        report_filename("reporter.test", "d.test", START, END, "a-b")
    with pytest.raises(ReportError, match="filename"):
        report_filename("report!er.test", "d.test", START, END)


@given(st.text(max_size=30), st.text(max_size=30), st.one_of(st.none(), st.text(max_size=10)), st.booleans())
def test_filename_is_well_formed_or_refused(submitter: str, domain: str, unique: str | None, gz: bool) -> None:
    try:
        name = report_filename(submitter, domain, START, END, unique, gzip=gz)
    except ReportError:
        return
    assert name.count("!") == (4 if unique is not None else 3) + submitter.count("!") + domain.count("!")
    assert name.endswith(".json.gz" if gz else ".json")


def test_gzip_is_deterministic_and_round_trips() -> None:
    data = REPORT.to_bytes()
    packed = gzip_bytes(data)
    assert packed[:2] == b"\x1f\x8b" and packed == gzip_bytes(data)
    assert gzip.decompress(packed) == data


def test_https_payload_media_types() -> None:
    body, media_type = https_payload(REPORT)
    assert media_type == MEDIA_TYPE_GZIP == "application/tlsrpt+gzip"
    assert json.loads(gzip.decompress(body)) == REPORT.to_json()
    plain, plain_type = https_payload(REPORT, gzip=False, document=b'{"x": 1}')
    assert (plain, plain_type) == (b'{"x": 1}', MEDIA_TYPE_JSON)


def test_subject_and_submitter() -> None:
    assert (
        report_subject("d.test", "reporter.test", "r@x")
        == "Report Domain: d.test Submitter: reporter.test Report-ID: <r@x>"
    )
    assert submitter_of("TLSRPT@Reporter.Test.") == "reporter.test"
    with pytest.raises(ReportError):
        submitter_of("no-domain")


# -- report mail (3, 5.3) ----------------------------------------------------------------------


def test_report_mail_structure(key_pem: bytes) -> None:
    raw = mail(key_pem)
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    message: Any = email.message_from_bytes(raw, policy=email.policy.default)
    assert message.get_content_type() == "multipart/report"
    assert message.get_param("report-type") == "tlsrpt"
    assert message["TLS-Report-Domain"] == "d.test"
    assert message["TLS-Report-Submitter"] == "reporter.test" == submitter_of(REPORT.contact_info)
    subject = " ".join(str(message["Subject"]).split())
    assert subject == "Report Domain: d.test Submitter: reporter.test Report-ID: <2026-11-28.d.test.ab12@reporter.test>"
    assert message["Message-ID"] == "<m1@reporter.test>"
    text, report_part = message.iter_parts()
    assert text.get_content_type() == "text/plain" and "aggregate TLS report" in text.get_content()
    assert report_part.get_content_type() == "application/tlsrpt+gzip"
    assert report_part.get_content_disposition() == "attachment"
    filename = report_part.get_filename()
    assert FILENAME.match(filename) and filename.startswith("reporter.test!d.test!")
    assert json.loads(gzip.decompress(report_part.get_content())) == REPORT.to_json()


def test_report_mail_is_dkim_signed_without_l_and_covers_the_report_headers(key_pem: bytes) -> None:
    raw = mail(key_pem)
    assert raw.startswith(b"DKIM-Signature: ")
    assert dkim.verify(raw, dnsfunc=dns_for(key_pem), tlsrpt="strict")
    signature = raw.split(b"\r\n\r\n", 1)[0].split(b"\r\nFrom:", 1)[0]
    tags = dict(
        (k.strip(), v.strip())
        for k, _, v in (t.partition(b"=") for t in re.sub(rb"\s+", b"", signature[16:]).split(b";"))
    )
    assert tags[b"d"] == b"reporter.test" and tags[b"s"] == b"tlsrpt"
    assert b"l" not in tags
    signed = set(tags[b"h"].lower().split(b":"))
    assert {b"from", b"subject", b"date", b"message-id", b"tls-report-domain", b"tls-report-submitter"} <= signed
    # Section 3: appending to a signed report breaks the signature.
    assert not dkim.verify(raw + b"extra\r\n", dnsfunc=dns_for(key_pem), tlsrpt="strict")


def test_variants_of_the_mail(key_pem: bytes) -> None:
    unsigned = mail(None)
    assert not unsigned.startswith(b"DKIM-Signature")
    with_l = mail(key_pem, dkim=signer(key_pem, body_length_tag=True))
    assert re.search(rb";\s*l=\d+", with_l.split(b"\r\nFrom:", 1)[0])
    bare: Any = email.message_from_bytes(
        mail(key_pem, shape=MailShape(report_headers=False)), policy=email.policy.default
    )
    assert bare["TLS-Report-Domain"] is None and bare["TLS-Report-Submitter"] is None
    mixed: Any = email.message_from_bytes(
        mail(key_pem, shape=MailShape(content_type="multipart/mixed")), policy=email.policy.default
    )
    assert mixed.get_content_type() == "multipart/mixed"
    plain: Any = email.message_from_bytes(mail(None, gzip=False), policy=email.policy.default)
    part = list(plain.iter_parts())[1]
    assert part.get_content_type() == "application/tlsrpt+json" and part.get_filename().endswith(".json")
    assert json.loads(part.get_content()) == REPORT.to_json()


def test_report_mail_refuses_header_injection_and_empty_reports(key_pem: bytes) -> None:
    with pytest.raises(ReportError, match="control characters"):
        mail(None, to_addr="a@d.test\r\nBcc: x@evil.test")
    with pytest.raises(ReportError, match="policy"):
        report_mail(
            Report("o", START, END, "c@r.test", "id@r.test", ()),
            from_addr="a@r.test",
            to_addr="b@d.test",
            submitter="r.test",
            date=END,
            message_id="m@r.test",
            dkim=None,
        )


def test_bad_signing_key_is_a_tlsrpt_error() -> None:
    with pytest.raises(TlsRptError, match="DKIM-sign"):
        mail(None, dkim=DkimSigner("reporter.test", "tlsrpt", b"not a key"))


# -- the DKIM key record (3) -------------------------------------------------------------------


def test_dkim_key_record_from_any_key_form(key_pem: bytes) -> None:
    private = serialization.load_pem_private_key(key_pem, password=None)
    public = private.public_key()
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    record = dkim_key_record(key_pem)
    assert record == dkim_key_record(pem) == dkim_key_record(der) == dkim_key_record(pem.decode())
    assert record.startswith("v=DKIM1; k=rsa; s=tlsrpt; p=")
    assert base64.b64decode(record.split("p=", 1)[1]) == der


def test_dkim_key_record_for_ed25519() -> None:
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    record = dkim_key_record(
        key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    assert record == f"v=DKIM1; k=ed25519; s=tlsrpt; p={base64.b64encode(raw).decode()}"


@given(st.one_of(st.binary(max_size=200), st.text(max_size=200)))
def test_dkim_key_record_reads_a_key_or_raises_its_error(data: bytes | str) -> None:
    record: str | None = None
    try:
        record = dkim_key_record(data)
    except TlsRptError as exc:
        rule = exc.rule
    if record is None:
        assert rule == "dkim-key-unreadable"
    else:
        assert record.startswith("v=DKIM1; k=")
