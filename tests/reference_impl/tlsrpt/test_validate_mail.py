"""Report mail (RFC 8460 sections 3, 5.3, 5.6): MIME structure, TLS-Report-* headers, Subject, DKIM."""

from __future__ import annotations

import base64
import gzip
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import SMTP

import pytest

from reference_impl.tlsrpt.errors import ReportError
from reference_impl.tlsrpt.validate import validate_report_mail
from tests.reference_impl.tlsrpt.test_validate_support import (
    GOOD_FILENAME,
    POLICY_DOMAIN,
    SELECTOR,
    SENDER,
    encode,
    good_report,
    gzipped,
    key_lookup,
    lookup,
    report_mail,
    report_part,
    rules,
    sign,
    signing_key,
    variant,
)


def _text_part() -> MIMEText:
    return MIMEText("This is an aggregate TLS report.\n", "plain", "us-ascii", policy=SMTP)


def test_signed_report_mail_passes_clean() -> None:
    validation = validate_report_mail(sign(report_mail()), txt_lookup=key_lookup())
    assert validation.findings == []
    assert validation.ok
    assert validation.dkim == "pass"
    assert validation.form == "mail"
    assert validation.filename == GOOD_FILENAME
    assert validation.report == good_report()
    assert validation.headers == {
        "From": f"tlsrpt@{SENDER}",
        "Subject": f"Report Domain: {POLICY_DOMAIN} Submitter: {SENDER} Report-ID: <report-001@{SENDER}>",
        "TLS-Report-Domain": POLICY_DOMAIN,
        "TLS-Report-Submitter": SENDER,
    }


def test_plain_json_report_part_is_accepted() -> None:
    part = report_part(encode(good_report()), "application/tlsrpt+json", GOOD_FILENAME[:-3])
    message = sign(report_mail(parts=[_text_part(), part]))
    validation = validate_report_mail(message, txt_lookup=key_lookup())
    assert rules(validation) == {("gzip-not-used", "warning")}
    assert validation.report == good_report()


def test_report_part_findings_name_the_mime_part() -> None:
    report = variant("policies/0/failure-details/0/result-type", "tls-downgrade")
    validation = validate_report_mail(sign(report_mail(report)), txt_lookup=key_lookup())
    (found,) = validation.findings
    assert found.rule == "result-type-unregistered"
    part = report_part(gzipped(good_report()), "application/tlsrpt+json")
    validation = validate_report_mail(sign(report_mail(parts=[_text_part(), part])), txt_lookup=key_lookup())
    assert [(f.rule, f.section, f.where) for f in validation.findings] == [
        ("media-type-mismatch", "5.3", "MIME part 2")
    ]


# ---------------------------------------------------------------- DKIM (section 3)


def test_unreadable_report_is_named_by_its_part() -> None:
    part = report_part(gzip.compress(b'{"organization-name": '))
    validation = validate_report_mail(sign(report_mail(parts=[_text_part(), part])), txt_lookup=key_lookup())
    assert [(f.rule, f.where) for f in validation.findings] == [("json-syntax", "MIME part 2")]
    assert validation.report is None


def test_tampered_body_is_dkim_invalid() -> None:
    message = sign(report_mail()).replace(b"aggregate TLS report", b"aggregate TLS rep0rt")
    validation = validate_report_mail(message, txt_lookup=key_lookup())
    assert rules(validation) == {("dkim-invalid", "error")}
    assert validation.dkim is not None and validation.dkim.startswith("fail: ")
    assert "body hash" in validation.dkim


def test_tampered_signed_header_is_dkim_invalid() -> None:
    message = sign(report_mail()).replace(b"TLS-Report-Domain: receiver.example", b"TLS-Report-Domain: receiver.exampl")
    validation = validate_report_mail(message, txt_lookup=key_lookup())
    assert ("dkim-invalid", "error") in rules(validation)


def test_l_tag_is_refused() -> None:
    validation = validate_report_mail(sign(report_mail(), length=True), txt_lookup=key_lookup())
    assert rules(validation) == {("dkim-l-tag", "error")}
    assert validation.dkim == "pass"  # the signature itself is good: l= is forbidden anyway


def test_unsigned_mail_is_dkim_missing() -> None:
    validation = validate_report_mail(report_mail(), txt_lookup=key_lookup())
    assert rules(validation) == {("dkim-missing", "error")}
    assert validation.dkim == "none"


def test_no_lookup_means_not_checked() -> None:
    validation = validate_report_mail(sign(report_mail()), txt_lookup=None)
    assert rules(validation) == {("dkim-not-checked", "info")}
    assert validation.dkim is None
    assert validation.ok


def test_checks_without_dns_still_run_without_lookup() -> None:
    assert rules(validate_report_mail(report_mail(), txt_lookup=None)) == {("dkim-missing", "error")}
    found = rules(validate_report_mail(sign(report_mail(), length=True), txt_lookup=None))
    assert found == {("dkim-l-tag", "error"), ("dkim-not-checked", "info")}


def test_unpublished_key_is_dkim_invalid() -> None:
    validation = validate_report_mail(sign(report_mail()), txt_lookup=lookup({}))
    assert rules(validation) == {("dkim-invalid", "error")}
    assert validation.dkim is not None and "missing public key" in validation.dkim


@pytest.mark.parametrize("service", ["email", "*", None])
def test_key_without_tlsrpt_service_is_a_warning(service: str | None) -> None:
    validation = validate_report_mail(sign(report_mail()), txt_lookup=key_lookup(service))
    assert rules(validation) == {("dkim-key-service-type", "warning")}
    assert validation.dkim == "pass"
    (found,) = validation.findings
    assert found.where == f"DNS {SELECTOR}._domainkey.{SENDER}"


def test_service_list_naming_tlsrpt_is_enough() -> None:
    validation = validate_report_mail(sign(report_mail()), txt_lookup=key_lookup("email:tlsrpt"))
    assert validation.findings == []
    assert validation.dkim == "pass"


def test_signature_by_another_domain_is_a_warning() -> None:
    message = sign(report_mail(), domain="esp.example")
    validation = validate_report_mail(message, txt_lookup=key_lookup(domain="esp.example"))
    assert rules(validation) == {("dkim-domain-mismatch", "warning")}
    assert validation.dkim == "pass"


def test_signature_by_a_parent_domain_is_aligned() -> None:
    report = variant("contact-info", f"tlsrpt@mta.{SENDER}")
    message = sign(report_mail(report, headers={"TLS-Report-Submitter": f"mta.{SENDER}"}))
    validation = validate_report_mail(message, txt_lookup=key_lookup())
    # d=sender.example signs for mta.sender.example; the Subject and filename still say sender.example.
    assert rules(validation) == {("mail-subject-body-mismatch", "info"), ("filename-body-mismatch", "info")}


def test_unsigned_report_headers_are_info() -> None:
    headers = ("from", "to", "subject", "date", "mime-version", "content-type")
    validation = validate_report_mail(sign(report_mail(), headers=headers), txt_lookup=key_lookup())
    assert rules(validation) == {("dkim-headers-not-signed", "info")}
    assert validation.dkim == "pass"


def test_one_good_signature_among_bad_ones_passes() -> None:
    good = sign(report_mail())
    broken = good.replace(b"b=", b"b=AAAA", 1)
    validation = validate_report_mail(sign(broken, domain="esp.example"), txt_lookup=key_lookup())
    assert validation.dkim == "pass"
    assert validation.errors == []


# ---------------------------------------------------------------- MIME and headers (sections 5.3, 5.6)


def _judge(message: bytes) -> set[tuple[str, str]]:
    return rules(validate_report_mail(sign(message), txt_lookup=key_lookup()))


def test_wrong_top_level_type_is_an_error() -> None:
    assert _judge(report_mail(content_type=("mixed", {}))) == {("mail-content-type", "error")}
    assert _judge(report_mail(content_type=("report", {"report-type": "delivery-status"}))) == {
        ("mail-content-type", "error")
    }


def test_report_type_is_case_insensitive() -> None:
    assert _judge(report_mail(content_type=("report", {"report-type": "TLSRPT"}))) == set()


def test_missing_human_readable_part_is_a_warning() -> None:
    message = report_mail(parts=[report_part(gzipped(good_report()))])
    assert _judge(message) == {("mail-human-part-missing", "warning")}


def test_alternative_text_and_html_is_human_readable() -> None:
    alternative = MIMEMultipart("alternative", policy=SMTP)
    alternative.attach(_text_part())
    alternative.attach(MIMEText("<p>This is an aggregate TLS report.</p>", "html", "us-ascii", policy=SMTP))
    assert _judge(report_mail(parts=[alternative, report_part(gzipped(good_report()))])) == set()


def test_missing_report_part_is_an_error() -> None:
    message = report_mail(parts=[_text_part()])
    validation = validate_report_mail(sign(message), txt_lookup=key_lookup())
    assert rules(validation) == {("mail-report-part-missing", "error")}
    assert validation.report is None


def test_report_in_a_generic_part_is_a_warning_and_still_judged() -> None:
    message = report_mail(parts=[_text_part(), report_part(gzipped(good_report()), "application/gzip")])
    validation = validate_report_mail(sign(message), txt_lookup=key_lookup())
    assert rules(validation) == {("mail-report-media-type", "warning")}
    assert validation.report == good_report()


def test_two_report_parts_are_an_error() -> None:
    part = report_part(gzipped(good_report()))
    message = report_mail(parts=[_text_part(), part, report_part(gzipped(good_report()))])
    assert _judge(message) == {("mail-report-parts-multiple", "error")}


@pytest.mark.parametrize("header", ["TLS-Report-Domain", "TLS-Report-Submitter"])
def test_missing_tls_report_header_is_an_error(header: str) -> None:
    found = _judge(report_mail(headers={header: None}))
    assert ("mail-tls-report-header-missing", "error") in found
    assert found <= {("mail-tls-report-header-missing", "error"), ("dkim-headers-not-signed", "info")}


def test_submitter_not_the_contact_domain_is_an_error() -> None:
    found = _judge(report_mail(headers={"TLS-Report-Submitter": "other.example"}))
    assert found == {("mail-submitter-mismatch", "error")}  # d= is the contact-info domain: aligned


def test_report_domain_not_the_policy_domain_is_a_warning() -> None:
    found = _judge(report_mail(headers={"TLS-Report-Domain": "other.example"}))
    assert found == {("mail-report-domain-mismatch", "warning")}


@pytest.mark.parametrize(
    "subject",
    [
        "TLS report for receiver.example",
        f"report domain: {POLICY_DOMAIN} submitter: {SENDER} report-id: <1@{SENDER}>",
        f"Report Domain: {POLICY_DOMAIN} Submitter: {SENDER} Report-ID: 1234",
        None,
    ],
)
def test_subject_not_in_the_recommended_form_is_a_warning(subject: str | None) -> None:
    found = _judge(report_mail(headers={"Subject": subject}))
    assert found == {("mail-subject-format", "warning")}


def test_subject_may_be_folded_and_end_in_a_comment() -> None:
    subject = f"Report Domain: {POLICY_DOMAIN} Submitter: {SENDER} Report-ID: <1@{SENDER}> (daily)"
    message = report_mail(headers={"Subject": subject})
    folded = message.replace(b" Submitter:", b"\r\n\tSubmitter:").replace(b" Report-ID:", b"\r\n Report-ID:")
    assert b"\r\n\tSubmitter:" in folded
    assert _judge(folded) == set()


def test_subject_disagreeing_with_the_body_is_info() -> None:
    subject = f"Report Domain: other.example Submitter: {SENDER} Report-ID: <1@{SENDER}>"
    assert _judge(report_mail(headers={"Subject": subject})) == {("mail-subject-body-mismatch", "info")}


def test_defective_base64_is_a_warning_and_the_rest_is_judged() -> None:
    encoded = base64.encodebytes(gzipped(good_report())).replace(b"\n", b"\r\n")
    message = (
        b"From: tlsrpt@sender.example\r\nTo: tlsrpt@receiver.example\r\n"
        b"Subject: Report Domain: receiver.example Submitter: sender.example Report-ID: <1@sender.example>\r\n"
        b"TLS-Report-Domain: receiver.example\r\nTLS-Report-Submitter: sender.example\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type="tlsrpt"; boundary="b1"\r\n\r\n'
        b"--b1\r\nContent-Type: text/plain\r\n\r\nreport\r\n"
        b"--b1\r\nContent-Type: application/tlsrpt+gzip\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"!" + encoded + b"--b1--\r\n"
    )
    validation = validate_report_mail(sign(message), txt_lookup=key_lookup())
    assert rules(validation) == {("mail-part-encoding", "warning")}
    assert validation.report == good_report()


def test_message_above_the_limit_is_refused() -> None:
    validation = validate_report_mail(sign(report_mail()), txt_lookup=key_lookup(), max_message=1000)
    assert rules(validation) == {("report-too-large", "error")}


def test_rfc_section_5_3_1_example_is_judged_without_a_crash() -> None:
    """The example as printed (indented, placeholder body): findings, not exceptions."""
    example = (
        b"From: tlsrpt@mail.sender.example.com\r\n"
        b"Subject: Report Domain: example.net\r\n    Submitter: mail.sender.example.com\r\n"
        b"    Report-ID: <735ff.e317+bf22029@example.net>\r\n"
        b"TLS-Report-Domain: example.net\r\nTLS-Report-Submitter: mail.sender.example.com\r\n"
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type="tlsrpt";\r\n    boundary="----=_NextPart_000"\r\n\r\n'
        b"------=_NextPart_000\r\nContent-Type: text/plain\r\n\r\nThis is an aggregate TLS report\r\n\r\n"
        b"------=_NextPart_000\r\nContent-Type: application/tlsrpt+gzip\r\nContent-Transfer-Encoding: base64\r\n"
        b'Content-Disposition: attachment;\r\n    filename="mail.sender.example!example.com!\r\n'
        b'              1013662812!1013749130.json.gz"\r\n\r\n'
        + base64.encodebytes(gzip.compress(b'{"organization-name": "x"}'))
        + b"\r\n------=_NextPart_000--\r\n"
    )
    validation = validate_report_mail(example, txt_lookup=lookup({}))
    assert "dkim-missing" in validation.errors
    assert "report-schema" in validation.errors
    assert "filename-format" in validation.warnings  # the folded filename keeps its spaces
    assert validation.headers["TLS-Report-Domain"] == "example.net"


def test_unusable_arguments_raise_report_error() -> None:
    with pytest.raises(ReportError):
        validate_report_mail("From: x\r\n\r\n", txt_lookup=None)  # type: ignore[arg-type]
    with pytest.raises(ReportError):
        validate_report_mail(b"From: x\r\n\r\n", txt_lookup={"a": [b"b"]})  # type: ignore[arg-type]


def test_signing_key_is_published_as_rfc_8460_shows() -> None:
    record = signing_key().record()
    assert record.startswith(b"v=DKIM1; k=rsa; s=tlsrpt; p=")
