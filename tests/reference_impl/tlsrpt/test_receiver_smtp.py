"""The receiver's SMTP listener end to end: a sending MTA delivers report mail (RFC 8460 3, 5.3)."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import trustme

from reference_impl.smtp.aio_client import AsyncSmtpClient
from reference_impl.smtp.aio_server import SessionInfo
from reference_impl.smtp.replies import Reply
from reference_impl.smtp.server_events import Envelope, Recipient
from reference_impl.tlsrpt.receiver import ReportReceiver
from reference_impl.tlsrpt.receiver_mail import VARIANCE_RULE, MailIntake
from reference_impl.tlsrpt.receiver_smtp import ReportMailHandler
from reference_impl.tlsrpt.receiver_store import ReportStore

from .receiver_support import (
    POLICY_DOMAIN,
    SENDER_DOMAIN,
    best_judge,
    dict_lookup,
    key_records,
    report_message,
    sample_report,
    signed,
)

MX = "mx.company-y.example"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
async def receiver(ca: trustme.CA, tmp_path: Path) -> AsyncIterator[ReportReceiver]:
    https = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("reports.example").configure_cert(https)
    smtp = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(MX).configure_cert(smtp)
    server = ReportReceiver(
        tmp_path / "store",
        tls=https,
        payload_judge=best_judge(),
        txt_lookup=dict_lookup(key_records()),
        report_domain=POLICY_DOMAIN,
        smtp_tls=smtp,
        smtp_hostname=MX,
    )
    async with server:
        yield server
    server.check_errors()


Deliver = Callable[..., Any]


@pytest.fixture
def deliver(receiver: ReportReceiver, ca: trustme.CA) -> Deliver:
    async def send(message: bytes, *, recipient: str = f"tlsrpt@{POLICY_DOMAIN}") -> dict[str, Reply | bool]:
        address = receiver.smtp_address
        assert address is not None
        client = await AsyncSmtpClient.connect(address[0], address[1], timeout=10, local_hostname=SENDER_DOMAIN)
        try:
            await client.ehlo()
            offered = "STARTTLS" in client.extensions
            context = ssl.create_default_context()
            ca.configure_trust(context)
            await client.starttls(context, MX)
            await client.ehlo()
            await client.mail(f"tlsrpt@{SENDER_DOMAIN}")
            rcpt = await client.rcpt(recipient)
            data = await client.data(message) if rcpt.code == 250 else rcpt
            await client.quit()
        finally:
            await client.close()
        return {"starttls": offered, "rcpt": rcpt, "data": data}

    return send


async def test_signed_report_mail_is_stored(receiver: ReportReceiver, deliver: Deliver) -> None:
    result = await deliver(signed(report_message()))
    assert result["starttls"] is True
    assert isinstance(result["data"], Reply) and result["data"].code == 250
    (stored,) = receiver.received()
    assert stored.transport == "mail"
    assert stored.report == sample_report()
    assert stored.policy_domain == POLICY_DOMAIN


async def test_unsigned_report_mail_gets_250_but_is_ignored(receiver: ReportReceiver, deliver: Deliver) -> None:
    result = await deliver(report_message())
    assert isinstance(result["data"], Reply) and result["data"].code == 250
    assert receiver.received() == []
    (entry,) = receiver.log()
    assert entry.transport == "mail" and entry.outcome == "ignored" and "DKIM" in entry.reason


async def test_recipient_outside_the_report_domain_is_refused(receiver: ReportReceiver, deliver: Deliver) -> None:
    result = await deliver(signed(report_message()), recipient="someone@elsewhere.example")
    assert isinstance(result["rcpt"], Reply) and result["rcpt"].code == 550
    assert receiver.received() == []


async def test_accept_mail_without_smtp(receiver: ReportReceiver) -> None:
    verdict = receiver.accept_mail(signed(report_message(subject_domain="wrong.example")))
    assert verdict.accepted and verdict.policy_domain == POLICY_DOMAIN
    assert [stored.policy_domain for stored in receiver.received()] == [POLICY_DOMAIN]


# -- the handler's answers, without a network --------------------------------------------------

SESSION = SessionInfo(("127.0.0.1", 40000), SENDER_DOMAIN, None, None, False)


def handler(tmp_path: Path, lookup: Any) -> ReportMailHandler:
    intake = MailIntake(payload_judge=best_judge(), txt_lookup=lookup, store=ReportStore(tmp_path / "store"))
    return ReportMailHandler(intake, report_domain=POLICY_DOMAIN + ".")


def envelope(message: bytes) -> Envelope:
    return Envelope(f"tlsrpt@{SENDER_DOMAIN}", {}, (Recipient(f"tlsrpt@{POLICY_DOMAIN}"),), message)


async def test_failed_key_lookup_is_451_so_the_sender_retries(tmp_path: Path) -> None:
    def broken(name: str) -> list[bytes] | None:
        raise TimeoutError("no DNS answer")

    reply = await handler(tmp_path, broken).on_message(SESSION, envelope(signed(report_message())))
    assert reply.code == 451


async def test_store_failure_is_451(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mail = handler(tmp_path, dict_lookup(key_records()))

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ReportStore, "save", full)
    reply = await mail.on_message(SESSION, envelope(signed(report_message())))
    assert reply.code == 451


async def test_handler_keeps_verdicts_and_matches_domains_case_insensitively(tmp_path: Path) -> None:
    mail = handler(tmp_path, dict_lookup(key_records()))
    assert await mail.on_rcpt(SESSION, f"TLSRPT@{POLICY_DOMAIN.upper()}", {}) is None
    refused = await mail.on_rcpt(SESSION, "postmaster", {})
    assert refused is not None and refused.code == 550
    assert (await mail.on_message(SESSION, envelope(report_message()))).code == 250
    assert [verdict.accepted for verdict in mail.verdicts] == [False]


def test_default_judges_are_the_project_validator(tmp_path: Path) -> None:
    receiver = ReportReceiver(
        tmp_path / "store",
        tls=ssl.create_default_context(ssl.Purpose.CLIENT_AUTH),
        txt_lookup=dict_lookup(key_records()),
    )
    verdict = receiver.accept_mail(signed(report_message(subject_domain="other.example")))
    assert verdict.accepted
    rules = {finding.rule for finding in verdict.findings}
    # The validator's own 5.6 finding and the receiver's note, kept with the stored report.
    assert {"mail-subject-body-mismatch", VARIANCE_RULE} <= rules
    assert verdict.stored is not None and set(verdict.stored.findings) == set(verdict.findings)
