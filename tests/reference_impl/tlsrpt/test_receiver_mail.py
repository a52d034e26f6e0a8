"""The receiver's mail intake: DKIM (RFC 8460 section 3), the report part (5.3), the body wins (5.6)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reference_impl.tlsrpt.receiver_dkim import aligned, check_signatures, service_types
from reference_impl.tlsrpt.receiver_mail import (
    NO_TLSRPT_SERVICE_RULE,
    VARIANCE_RULE,
    MailIntake,
    contact_domain,
)
from reference_impl.tlsrpt.receiver_store import ReportStore

from .receiver_support import (
    POLICY_DOMAIN,
    SELECTOR,
    SENDER_DOMAIN,
    best_judge,
    dict_lookup,
    key_records,
    report_gzip,
    report_json,
    report_message,
    sample_report,
    signed,
    signing_key,
    stub_judge,
)


def intake(
    tmp_path: Path | None = None,
    *,
    records: dict[str, list[bytes]] | None = None,
    lookup: Any = None,
    **options: Any,
) -> MailIntake:
    txt_lookup = lookup if lookup is not None else dict_lookup(records if records is not None else key_records())
    store = ReportStore(tmp_path / "store") if tmp_path is not None else None
    return MailIntake(payload_judge=stub_judge, txt_lookup=txt_lookup, store=store, **options)


def test_signed_report_is_stored_under_the_body_domain(tmp_path: Path) -> None:
    mail = intake(tmp_path)
    verdict = mail.accept_mail(signed(report_message()))
    assert verdict.accepted and verdict.stored is not None and not verdict.duplicate
    (stored,) = mail.store.received() if mail.store else []
    assert stored.transport == "mail"
    assert stored.policy_domain == POLICY_DOMAIN
    assert stored.report == sample_report()
    assert stored.content_type == "application/tlsrpt+gzip"
    assert stored.filename is not None and stored.filename.endswith(".json.gz")


def test_plain_json_part_is_accepted() -> None:
    verdict = intake().assess(signed(report_message(report_json(), media_type="application/tlsrpt+json")))
    assert verdict.accepted and verdict.report == sample_report()


def test_unsigned_report_is_ignored_and_logged(tmp_path: Path) -> None:
    mail = intake(tmp_path)
    verdict = mail.accept_mail(report_message())
    assert not verdict.accepted and verdict.stored is None
    assert "no valid DKIM signature" in verdict.reason and "no DKIM-Signature field" in verdict.reason
    assert mail.store is not None and mail.store.received() == []
    (entry,) = mail.store.log()
    assert entry.outcome == "ignored" and "DKIM" in entry.reason


def test_tampered_report_is_ignored() -> None:
    message = signed(report_message())
    tampered = message.replace(b"This is an aggregate", b"This is a forged")
    verdict = intake().assess(tampered)
    assert not verdict.accepted
    assert verdict.dkim is not None and "body hash mismatch" in verdict.dkim.describe()


def test_signature_by_another_domain_is_ignored() -> None:
    other = signing_key(1)
    message = signed(report_message(), domain="attacker.example", key=other)
    verdict = intake(records=key_records("attacker.example", key=other)).assess(message)
    assert verdict.dkim is not None and verdict.dkim.signatures[0].verified
    assert not verdict.accepted and "reporting domain company-x.example" in verdict.reason


def test_signature_by_a_parent_domain_aligns() -> None:
    report = sample_report(contact=f"tlsrpt@mail.{SENDER_DOMAIN}")
    message = signed(report_message(report_gzip(report)))
    assert intake().assess(message).accepted


def test_key_without_tlsrpt_service_is_accepted_with_a_note_by_default() -> None:
    verdict = intake(records=key_records(service="email")).assess(signed(report_message()))
    assert verdict.accepted
    assert NO_TLSRPT_SERVICE_RULE in {finding.rule for finding in verdict.findings}


def test_key_without_tlsrpt_service_may_be_ignored() -> None:
    mail = intake(records=key_records(service=None), ignore_keys_without_tlsrpt=True)
    verdict = mail.assess(signed(report_message()))
    assert not verdict.accepted and "lacks s=tlsrpt" in verdict.reason


@pytest.mark.parametrize("service", ["email:tlsrpt", "*", "tlsrpt"])
def test_keys_declaring_tlsrpt_are_accepted_even_when_required(service: str) -> None:
    mail = intake(records=key_records(service=service), ignore_keys_without_tlsrpt=True)
    verdict = mail.assess(signed(report_message()))
    assert verdict.accepted, verdict.reason
    assert NO_TLSRPT_SERVICE_RULE not in {finding.rule for finding in verdict.findings}


def test_length_tag_makes_a_signature_not_count() -> None:
    verdict = intake().assess(signed(report_message(), length=True))
    assert verdict.dkim is not None and verdict.dkim.signatures[0].length_tag
    assert not verdict.accepted and "l=" in verdict.reason


def test_missing_key_and_missing_lookup_are_ignored() -> None:
    assert not intake(records={}).assess(signed(report_message())).accepted
    no_dns = MailIntake(payload_judge=stub_judge, txt_lookup=None)
    assert not no_dns.assess(signed(report_message())).accepted


def test_failing_key_lookup_is_temporary(tmp_path: Path) -> None:
    def broken(name: str) -> list[bytes] | None:
        raise OSError("resolver unreachable")

    mail = intake(tmp_path, lookup=broken)
    verdict = mail.accept_mail(signed(report_message()))
    assert verdict.temporary and not verdict.accepted and verdict.reason.startswith("deferred")
    assert mail.store is not None and [entry.outcome for entry in mail.store.log()] == ["refused"]


def test_subject_and_filename_disagreeing_with_the_body_lose(tmp_path: Path) -> None:
    message = report_message(subject_domain="other.example", filename="evil.example!other.example!1!2.json.gz")
    mail = intake(tmp_path)
    verdict = mail.accept_mail(signed(message))
    assert verdict.accepted and verdict.policy_domain == POLICY_DOMAIN
    assert verdict.stored is not None and verdict.stored.policy_domain == POLICY_DOMAIN
    variances = [finding for finding in verdict.findings if finding.rule == VARIANCE_RULE]
    assert {finding.where for finding in variances} == {"Subject", "filename"}
    assert any("begin 1" in finding.message for finding in variances)
    assert any("submitter 'evil.example'" in finding.message for finding in variances)


def test_invalid_body_is_ignored_even_when_signed(tmp_path: Path) -> None:
    mail = intake(tmp_path)
    verdict = mail.accept_mail(signed(report_message(b"{not json", media_type="application/tlsrpt+json")))
    assert not verdict.accepted and "json-syntax" in verdict.reason
    assert mail.store is not None and mail.store.log()[0].rules == ("json-syntax",)


def test_message_without_a_report_part_is_ignored() -> None:
    message = b"From: a@company-x.example\r\nTo: b@company-y.example\r\nSubject: hello\r\n\r\nno report\r\n"
    verdict = intake().assess(signed(message))
    assert not verdict.accepted and "no application/tlsrpt+json" in verdict.reason


def test_same_report_twice_is_a_duplicate(tmp_path: Path) -> None:
    mail = intake(tmp_path)
    mail.accept_mail(signed(report_message()))
    again = mail.accept_mail(signed(report_message()))
    assert again.accepted and again.duplicate
    assert mail.store is not None and len(mail.store.received()) == 1


def test_mail_judge_findings_are_kept() -> None:
    from reference_impl.tlsrpt.errors import Finding

    from .receiver_support import StubValidation

    def mail_judge(message: bytes, *, txt_lookup: Any) -> StubValidation:
        return StubValidation([Finding("subject-format", "5.3", "warning", "odd Subject")])

    verdict = intake(mail_judge=mail_judge).assess(signed(report_message()))
    assert verdict.accepted
    assert "subject-format" in {finding.rule for finding in verdict.findings}


# -- the DKIM helpers -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("signer", "reporter", "expected"),
    [
        ("company-x.example", "company-x.example", True),
        ("Company-X.Example.", "company-x.example", True),
        ("company-x.example", "mail.company-x.example", True),
        ("mail.company-x.example", "company-x.example", True),
        ("example", "company-x.example", False),
        ("x.example", "company-x.example", False),
        ("other.example", "company-x.example", False),
        ("", "company-x.example", False),
    ],
)
def test_aligned(signer: str, reporter: str, expected: bool) -> None:
    assert aligned(signer, reporter) is expected


@pytest.mark.parametrize(
    ("record", "types"),
    [
        (b"v=DKIM1; k=rsa; s=tlsrpt; p=AB", ("tlsrpt",)),
        (b"v=DKIM1;s = email : TLSRPT ;p=AB", ("email", "tlsrpt")),
        (b"v=DKIM1; p=AB", None),
    ],
)
def test_service_types(record: bytes, types: tuple[str, ...] | None) -> None:
    assert service_types(record) == types


@pytest.mark.parametrize(
    ("contact", "domain"),
    [
        ("tlsrpt@company-x.example", "company-x.example"),
        ("mailto:tlsrpt@company-x.example", "company-x.example"),
        ("https://reports.company-x.example/x", "reports.company-x.example"),
        ("", None),
    ],
)
def test_contact_domain(contact: str, domain: str | None) -> None:
    assert contact_domain({"contact-info": contact}) == domain


def test_every_signature_is_checked() -> None:
    other = signing_key(1)
    message = signed(signed(report_message()), domain="relay.example", key=other)
    result = check_signatures(message, dict_lookup(key_records()))
    assert [signature.domain for signature in result.signatures] == ["relay.example", SENDER_DOMAIN]
    assert result.by([SENDER_DOMAIN]) is not None
    assert result.signatures[0].selector == SELECTOR and not result.signatures[0].verified


# -- property: the intake is total ------------------------------------------------------------

_SIGNED = signed(report_message())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.binary(max_size=400)
    | st.builds(
        lambda cut, junk: _SIGNED[:cut] + junk + _SIGNED[cut:], st.integers(0, len(_SIGNED)), st.binary(max_size=8)
    )
    | st.builds(lambda cut: _SIGNED[:cut], st.integers(0, len(_SIGNED)))
)
def test_intake_never_raises(message: bytes) -> None:
    from reference_impl.tlsrpt.receiver_judges import default_mail_judge

    mail = MailIntake(
        payload_judge=best_judge(), mail_judge=default_mail_judge(), txt_lookup=dict_lookup(key_records())
    )
    verdict = mail.assess(message)
    assert verdict.reason
    assert verdict.accepted is (verdict.reason == "accepted")


def test_failing_lookup_does_not_break_the_mail_judge() -> None:
    from reference_impl.tlsrpt.receiver_judges import default_mail_judge

    def broken(name: str) -> list[bytes] | None:
        raise RuntimeError("resolver exploded")

    mail = MailIntake(payload_judge=best_judge(), mail_judge=default_mail_judge(), txt_lookup=broken)
    verdict = mail.assess(signed(report_message()))
    assert verdict.temporary and not verdict.accepted
