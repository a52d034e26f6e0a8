"""Tests of the world's mailbox (conformance.world.mailbox): it collects bounces and reports."""

from __future__ import annotations

import asyncio
import smtplib
import ssl

import pytest
import trustme

from conformance.world.mailbox import Mailbox
from conformance.world.observe import DeliveredMessage, Observation, SmtpSession, TlsHandshake

HOST = "reports.example.test"
DSN = (
    b"From: MAILER-DAEMON@mx.sut.test\r\n"
    b"Subject: Undelivered Mail Returned to Sender\r\n"
    b"Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n"
    b"\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\n"
    b"Reporting-MTA: dns; mx.sut.test\r\n\r\nFinal-Recipient: rfc822; a@example.test\r\n"
    b"Action: failed\r\nStatus: 5.7.10\r\n--b--\r\n"
)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


async def test_collects_a_dsn_with_null_sender() -> None:
    received: list[DeliveredMessage] = []
    mailbox = Mailbox(HOST, received.append)
    await mailbox.start("127.0.0.1", 0)
    host, port = mailbox.address

    def bounce() -> bool:
        with smtplib.SMTP(host, port, timeout=5) as smtp:
            smtp.ehlo("mx.sut.test")
            smtp.sendmail("<>", ["postmaster@sender.test"], DSN, mail_options=["RET=HDRS"])
            return smtp.has_extn("starttls")

    offered_starttls = await asyncio.to_thread(bounce)
    await mailbox.stop()
    assert not offered_starttls  # no TLS context, no STARTTLS
    (message,) = received
    assert (message.host, message.mail_from, message.rcpt_tos) == (
        HOST,
        "",
        ("postmaster@sender.test",),
    )
    # SIZE is there because the mailbox advertises it (RFC 1870) and smtplib uses it.
    assert message.mail_options == (f"SIZE={len(DSN)}", "RET=HDRS")
    assert (message.data, message.tls) == (DSN, False)


async def test_accepts_requiretls_mail_over_starttls(ca: trustme.CA) -> None:
    cert = ca.issue_cert(HOST, "127.0.0.1")  # smtplib checks the name it connected to

    def server_context() -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(ctx)
        return ctx

    received: list[DeliveredMessage] = []
    observed: list[Observation] = []
    mailbox = Mailbox(HOST, received.append, server_context, observe=observed.append)
    await mailbox.start("127.0.0.1", 0)
    host, port = mailbox.address

    def report() -> bool:
        client_ctx = ssl.create_default_context()
        ca.configure_trust(client_ctx)
        with smtplib.SMTP(host, port, timeout=5) as smtp:
            smtp.starttls(context=client_ctx)
            smtp.ehlo("mx.sut.test")
            # RFC 8689 section 5: the bounce of a REQUIRETLS message carries REQUIRETLS.
            smtp.sendmail(
                "",
                ["a@sender.test", "b@sender.test"],
                DSN,
                mail_options=["REQUIRETLS"],
                rcpt_options=["NOTIFY=NEVER"],
            )
            return smtp.has_extn("requiretls")

    offered_requiretls = await asyncio.to_thread(report)
    await mailbox.stop()
    assert offered_requiretls
    (message,) = received
    assert message.mail_options == (f"SIZE={len(DSN)}", "REQUIRETLS")
    assert message.rcpt_tos == ("a@sender.test", "b@sender.test")
    assert (message.mail_from, message.tls) == ("", True)
    sessions = [o for o in observed if isinstance(o, SmtpSession)]
    assert [s.tls_version for s in sessions] == ["TLSv1.3"]
    assert [o.ok for o in observed if isinstance(o, TlsHandshake)] == [True]
    assert not any(isinstance(o, DeliveredMessage) for o in observed)  # those go to the sink
