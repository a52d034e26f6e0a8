"""The checks REQUIRETLS scenarios use (RFC 8689): the MAIL parameter on delivery, the bounce's
status / REQUIRETLS / headers only, and no message command in cleartext."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from conformance.catalog.model import Expectation
from conformance.drivers.checks import Context, Decision, evaluate_sending
from conformance.world.observe import DeliveredMessage, ObservationLog, SmtpSession, TranscriptLine
from conformance.world.world import MAILBOX_HOST

CHECK: TypeAdapter[Any] = TypeAdapter(Expectation)


def ctx(settled: str | None = None) -> Context:
    return Context(expand=lambda s: s, sut_records=None, settled=settled, smtp_hosts=frozenset({"mx1.d.test"}))


def message(host: str, options: tuple[str, ...] = (), data: bytes = b"x", tls: bool = True) -> DeliveredMessage:
    return DeliveredMessage(host, "a@s.test", options, ("b@d.test",), data, tls, "TLSv1.3" if tls else None, None, 1.0)


def dsn(status: str, returned: str) -> bytes:
    return (
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nfailed\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.test\r\n\r\n"
        f"Final-Recipient: rfc822; b@d.test\r\nAction: failed\r\nStatus: {status}\r\n\r\n"
        f"--b\r\nContent-Type: {returned}\r\n\r\nSubject: x\r\n\r\n--b--\r\n"
    ).encode()


def judge(spec: dict[str, Any], log: ObservationLog, final: bool = True) -> Any:
    return evaluate_sending(CHECK.validate_python(spec), log, ctx(), final)


def test_delivered_with_the_requiretls_parameter() -> None:
    log = ObservationLog()
    log.add(message("mx1.d.test", ("REQUIRETLS", "BODY=8BITMIME")))
    assert judge({"check": "delivered", "mail_params": ["REQUIRETLS"]}, log).ok
    bare = ObservationLog()
    bare.add(message("mx1.d.test"))
    decision = judge({"check": "delivered", "mail_params": ["REQUIRETLS"]}, bare)
    assert not decision.ok and "REQUIRETLS" in decision.detail


def test_bounce_status_requiretls_and_headers_only() -> None:
    log = ObservationLog()
    log.add(message(MAILBOX_HOST, ("REQUIRETLS",), dsn("5.7.30", "text/rfc822-headers")))
    assert judge({"check": "bounced", "status": "5.7.30", "requiretls": True, "headers_only": True}, log).ok
    assert not judge({"check": "bounced", "status": "5.7.10"}, log).ok
    full = ObservationLog()
    full.add(message(MAILBOX_HOST, (), dsn("5.7.10", "message/rfc822")))
    assert not judge({"check": "bounced", "headers_only": True}, full).ok
    assert not judge({"check": "bounced", "requiretls": True}, full).ok
    assert judge({"check": "bounced", "status": "5.7.10"}, full).ok


def test_a_tlsrpt_report_in_the_mailbox_is_no_bounce() -> None:
    log = ObservationLog()
    log.add(message(MAILBOX_HOST, (), b"Content-Type: application/tlsrpt+gzip\r\n\r\nx"))
    assert not judge({"check": "bounced"}, log).ok


def test_no_plaintext_message_fails_on_a_cleartext_mail_command() -> None:
    def session(tls: bool) -> SmtpSession:
        lines = (
            TranscriptLine("c2s", "EHLO sut.test", False, 0.0),
            TranscriptLine("c2s", "MAIL FROM:<a@s.test> REQUIRETLS", tls, 0.1),
        )
        return SmtpSession("mx1.d.test", "c", lines, None, None, None, (), 0.0, 1.0, "quit")

    clean = ObservationLog()
    clean.add(session(tls=True))
    assert judge({"check": "no-plaintext-message"}, clean, final=False) is None
    assert judge({"check": "no-plaintext-message"}, clean).ok
    leaked = ObservationLog()
    leaked.add(session(tls=False))
    decision = judge({"check": "no-plaintext-message"}, leaked, final=False)
    assert not decision.ok and "cleartext" in decision.detail


def test_a_null_path_message_at_an_mx_is_a_bounce_not_a_delivery() -> None:
    """A sender in the recipient domain gets its NDN at the scenario's MX hosts (RFC 8689 5)."""
    log = ObservationLog()
    ndn = DeliveredMessage(
        "mx2.d.test", "", (), ("a@d.test",), dsn("5.7.30", "text/rfc822-headers"), True, "TLSv1.3", None, 1.0
    )
    log.add(ndn)
    assert judge({"check": "not-delivered"}, log).ok
    assert judge({"check": "bounced", "host": "mx2.d.test", "status": "5.7.30"}, log).ok
    decision = judge({"check": "bounced", "host": "mx1.d.test"}, log)
    assert not decision.ok and "mx2.d.test" in decision.detail


def judged(decision: Decision | None) -> Decision:
    assert decision is not None
    return decision


def test_an_any_of_reading_the_target_claims_is_the_only_one() -> None:
    spec = {
        "check": "any-of",
        "readings": [
            {"name": "delivered", "claim": "reads-delivered", "expect": [{"check": "delivered"}]},
            {"name": "bounced", "claim": "reads-bounced", "expect": [{"check": "bounced"}]},
        ],
    }
    log = ObservationLog()
    log.add(message(MAILBOX_HOST, (), dsn("5.7.10", "text/rfc822-headers")))
    check = CHECK.validate_python(spec)
    unclaimed = Context(expand=lambda s: s, sut_records=None, settled=None)
    assert judged(evaluate_sending(check, log, unclaimed, True)).ok
    claims_bounce = Context(expand=lambda s: s, sut_records=None, settled=None, claims=frozenset({"reads-bounced"}))
    assert judged(evaluate_sending(check, log, claims_bounce, True)).ok
    claims_delivery = Context(expand=lambda s: s, sut_records=None, settled=None, claims=frozenset({"reads-delivered"}))
    decision = judged(evaluate_sending(check, log, claims_delivery, True))
    assert not decision.ok and "'delivered'" in decision.detail
