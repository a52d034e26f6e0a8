"""Tests of the world's scripted SMTP peer (conformance.world.smtp_peer)."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from conformance.world.observe import (
    DeliveredMessage,
    ObservationLog,
    SmtpSession,
    TlsHandshake,
)
from conformance.world.smtp_peer import SmtpPeer
from conformance.world.smtp_script import LINE_LIMIT, PeerFailure, PeerNotRunning
from conformance.world.spec import Reply, SmtpBehaviour
from tests.world.smtp_helpers import (
    SmtpClient,
    TestCa,
    new_log,
    session_of,
    texts,
)

HOST = "mx1.example.test"
BODY = b"Subject: hi\r\n\r\n..dotted line\r\nbody\r\n"  # as sent, dot-stuffed
OK, READY, BYE = 250, 220, 221
START_MAIL = 354
NOT_RECOGNIZED, SYNTAX_ERROR, BAD_SEQUENCE = 502, 501, 503
PARAM_NOT_RECOGNIZED, TOO_BIG, NOT_AVAILABLE = 555, 552, 454


StartPeer = Callable[..., Awaitable[tuple[SmtpPeer, ObservationLog]]]


@pytest.fixture
async def start_peer(ca: TestCa) -> AsyncIterator[StartPeer]:
    peers: list[SmtpPeer] = []

    async def start(
        behaviour: SmtpBehaviour | None = None, *, tls: bool = True, **kwargs: float
    ) -> tuple[SmtpPeer, ObservationLog]:
        log, sink = new_log()
        factory = ca.server_factory(HOST) if tls else None
        peer = SmtpPeer(HOST, behaviour or SmtpBehaviour(), factory, sink, **kwargs)  # type: ignore[arg-type]
        await peer.start("127.0.0.1", 0)
        peers.append(peer)
        return peer, log

    yield start
    for peer in peers:
        await peer.stop()


async def ehlo(client: SmtpClient) -> list[str]:
    greeting = await client.reply()
    assert greeting.code == READY
    reply = await client.command("EHLO client.example.test")
    assert reply.code == OK
    return list(reply.lines)


async def upgrade(client: SmtpClient, ca: TestCa, maximum: ssl.TLSVersion | None = None) -> None:
    assert (await client.command("STARTTLS")).code == READY
    await client.starttls(ca.client_context(maximum), HOST)


async def send_message(client: SmtpClient, mail: str = "MAIL FROM:<a@sender.test>") -> int:
    assert (await client.command(mail)).code == OK
    assert (await client.command("RCPT TO:<b@example.test>")).code == OK
    assert (await client.command("DATA")).code == START_MAIL
    await client.send(BODY + b".\r\n")
    return (await client.reply()).code


# -- greeting and EHLO ---------------------------------------------------------------------


async def test_default_greeting_and_ehlo_offer_starttls_last(start_peer: StartPeer) -> None:
    peer, log = await start_peer()
    client = await SmtpClient.connect(peer.address)
    greeting = await client.reply()
    assert (greeting.code, greeting.text) == (READY, f"{HOST} ESMTP world peer")
    lines = (await client.command("EHLO c.test")).lines
    assert lines == (HOST, "PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8", "STARTTLS")
    assert (await client.command("QUIT")).code == BYE
    assert await client.at_eof()
    await client.close()
    session = await session_of(log)
    assert session.close_reason == "quit"
    assert session.tls_version is None
    assert texts(session, "c2s") == ["EHLO c.test", "QUIT"]


async def test_scripted_greeting_then_close(start_peer: StartPeer) -> None:
    behaviour = SmtpBehaviour(greeting=Reply(code=554, text="5.3.2 go away\nreally"), close_after_greeting=True)
    peer, log = await start_peer(behaviour)
    client = await SmtpClient.connect(peer.address)
    greeting = await client.reply()
    assert (greeting.code, greeting.lines) == (554, (f"{HOST} 5.3.2 go away", "really"))
    assert await client.at_eof()
    await client.close()
    session = await session_of(log)
    assert session.close_reason == "peer-closed"
    assert texts(session, "s2c") == [f"554-{HOST} 5.3.2 go away", "554 really"]


async def test_starttls_not_offered_is_refused(start_peer: StartPeer) -> None:
    peer, _ = await start_peer(SmtpBehaviour(starttls=False))
    client = await SmtpClient.connect(peer.address)
    assert "STARTTLS" not in await ehlo(client)
    assert (await client.command("STARTTLS")).code == NOT_RECOGNIZED
    await client.close()


async def test_starttls_without_tls_context_answers_454(start_peer: StartPeer) -> None:
    peer, _ = await start_peer(tls=False)
    client = await SmtpClient.connect(peer.address)
    await ehlo(client)
    assert (await client.command("STARTTLS")).code == NOT_AVAILABLE
    await client.close()


# -- scripted replies ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "code", "text"),
    [
        ("mail_reply", 451, "4.3.0 try later"),
        ("rcpt_reply", 550, "5.1.1 no such user"),
        ("data_reply", 552, "5.3.4 too big"),
        ("data_reply", 250, "2.0.0 first\nsecond"),
    ],
)
async def test_scripted_transaction_replies(start_peer: StartPeer, field: str, code: int, text: str) -> None:
    peer, log = await start_peer(SmtpBehaviour(**{field: Reply(code=code, text=text)}))
    client = await SmtpClient.connect(peer.address)
    await ehlo(client)
    replies = [await client.command("MAIL FROM:<a@sender.test>")]
    if field != "mail_reply":
        replies.append(await client.command("RCPT TO:<b@example.test>"))
    if field == "data_reply":
        assert (await client.command("DATA")).code == START_MAIL
        await client.send(b"x\r\n.\r\n")
        replies.append(await client.reply())
    assert (replies[-1].code, replies[-1].text) == (code, text)
    await client.close()
    session = await session_of(log)
    delivered = log.of(DeliveredMessage)
    assert len(delivered) == (1 if code == OK else 0)
    assert session.delivered == tuple(delivered)


async def test_rcpt_before_mail_and_data_before_rcpt_are_bad_sequence(
    start_peer: StartPeer,
) -> None:
    peer, _ = await start_peer()
    client = await SmtpClient.connect(peer.address)
    await ehlo(client)
    assert (await client.command("RCPT TO:<b@example.test>")).code == BAD_SEQUENCE
    assert (await client.command("MAIL FROM:<a@sender.test>")).code == OK
    assert (await client.command("DATA")).code == BAD_SEQUENCE
    assert (await client.command("MAIL FROM:<a@sender.test>")).code == BAD_SEQUENCE
    await client.close()


# -- STARTTLS -------------------------------------------------------------------------------


async def test_starttls_upgrade_records_tls_state_sni_and_handshake(start_peer: StartPeer, ca: TestCa) -> None:
    behaviour = SmtpBehaviour(ehlo_keywords_tls=("REQUIRETLS", "8BITMIME"))
    peer, log = await start_peer(behaviour)
    client = await SmtpClient.connect(peer.address)
    await ehlo(client)
    await upgrade(client, ca)
    # RFC 3207 section 4.2: EHLO again; the post-TLS keywords, no STARTTLS.
    assert (await client.command("EHLO c.test")).lines == (HOST, "REQUIRETLS", "8BITMIME")
    assert await send_message(client) == OK
    await client.close()
    session = await session_of(log)
    assert session.sni == HOST
    assert session.tls_version == "TLSv1.3"
    assert session.cipher
    before = [line for line in session.lines if not line.tls]
    after = [line for line in session.lines if line.tls]
    assert [line.text for line in before][-2:] == ["STARTTLS", "220 2.0.0 Ready to start TLS"]
    assert after[0].text == "EHLO c.test"
    (handshake,) = log.of(TlsHandshake)
    assert (handshake.ok, handshake.sni, handshake.version) == (True, HOST, "TLSv1.3")
    (message,) = session.delivered
    assert (message.tls, message.tls_version) == (True, "TLSv1.3")
    assert message.data == b"Subject: hi\r\n\r\n.dotted line\r\nbody\r\n"


async def test_starttls_refusal_reply_keeps_plaintext(start_peer: StartPeer) -> None:
    behaviour = SmtpBehaviour(starttls_reply=Reply(code=454, text="4.7.0 not now"))
    peer, log = await start_peer(behaviour)
    client = await SmtpClient.connect(peer.address)
    await ehlo(client)
    assert (await client.command("STARTTLS")).code == NOT_AVAILABLE
    assert await send_message(client) == OK
    await client.close()
    session = await session_of(log)
    assert session.tls_version is None
    assert not any(line.tls for line in session.lines)
    assert log.of(TlsHandshake) == []


async def test_tls_min_13_refuses_a_tls12_client(start_peer: StartPeer, ca: TestCa) -> None:
    peer, log = await start_peer(SmtpBehaviour(tls_min="TLSv1.3"))
    client = await SmtpClient.connect(peer.address)
    await ehlo(client)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        await upgrade(client, ca, maximum=ssl.TLSVersion.TLSv1_2)
    await client.close()
    session = await session_of(log)
    (handshake,) = log.of(TlsHandshake)
    assert not handshake.ok
    assert handshake.error
    assert session.close_reason.startswith("error: TLS handshake failed")
    assert session.tls_version is None


async def test_tls_max_12_negotiates_tls12(start_peer: StartPeer, ca: TestCa) -> None:
    peer, log = await start_peer(SmtpBehaviour(tls_max="TLSv1.2"))
    client = await SmtpClient.connect(peer.address)
    await ehlo(client)
    await upgrade(client, ca)
    assert (await client.command("NOOP")).code == OK
    await client.close()
    assert (await session_of(log)).tls_version == "TLSv1.2"


async def test_garbage_instead_of_client_hello_fails_cleanly(start_peer: StartPeer) -> None:
    peer, log = await start_peer()
    client = await SmtpClient.connect(peer.address)
    await ehlo(client)
    assert (await client.command("STARTTLS")).code == READY
    await client.send(b"this is not TLS at all\r\n" * 4)
    assert await client.at_eof()
    await client.close()
    session = await session_of(log)
    assert session.close_reason.startswith("error: TLS handshake failed")
    assert [h.ok for h in log.of(TlsHandshake)] == [False]


async def test_plaintext_pipelined_behind_starttls_is_discarded(start_peer: StartPeer, ca: TestCa) -> None:
    peer, log = await start_peer()
    client = await SmtpClient.connect(peer.address)
    await ehlo(client)
    await client.send(b"STARTTLS\r\nMAIL FROM:<evil@attacker.test>\r\n")
    assert (await client.reply()).code == READY
    await client.starttls(ca.client_context(), HOST)
    # RFC 3207 section 4.2: the injected MAIL must not have started a transaction.
    assert (await client.command("EHLO c.test")).code == OK
    assert (await client.command("RCPT TO:<b@example.test>")).code == BAD_SEQUENCE
    await client.close()
    session = await session_of(log)
    plain = texts(session, "c2s", tls=False)
    assert plain[-2:] == ["STARTTLS", "MAIL FROM:<evil@attacker.test>"]
    assert "MAIL FROM:<evil@attacker.test>" not in texts(session, "c2s", tls=True)


# -- MAIL parameters and messages -------------------------------------------------------------


async def test_requiretls_and_other_parameters_recorded_at_once(start_peer: StartPeer, ca: TestCa) -> None:
    peer, log = await start_peer()
    client = await SmtpClient.connect(peer.address)
    await ehlo(client)
    await upgrade(client, ca)
    await client.command("EHLO c.test")
    mail = "MAIL FROM:<a@sender.test> REQUIRETLS BODY=8bitmime SIZE=40 SMTPUTF8 RET=HDRS ENVID=Q+2B1"
    assert await send_message(client, mail) == OK
    # Reported when the 250 went out, while the session is still open.
    (message,) = log.of(DeliveredMessage)
    assert log.of(SmtpSession) == []
    assert message.mail_options == (
        "REQUIRETLS",
        "BODY=8BITMIME",
        "SIZE=40",
        "SMTPUTF8",
        "RET=HDRS",
        "ENVID=Q+2B1",
    )
    assert (message.host, message.mail_from, message.rcpt_tos) == (
        HOST,
        "a@sender.test",
        ("b@example.test",),
    )
    await client.close()
    session = await session_of(log)
    summaries = [t for t in texts(session, "c2s") if t.startswith("<message")]
    assert summaries == [f"<message {len(BODY)} bytes>"]  # one line, not the content


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ("REQUIRETLS=YES", SYNTAX_ERROR),
        ("X-UNKNOWN=1", PARAM_NOT_RECOGNIZED),
        ("BODY=9BIT", SYNTAX_ERROR),
        ("SIZE=100000", TOO_BIG),
        ("REQUIRETLS REQUIRETLS", SYNTAX_ERROR),
    ],
)
async def test_bad_mail_parameters_refused(start_peer: StartPeer, params: str, code: int) -> None:
    peer, _ = await start_peer(max_message_bytes=1000)
    client = await SmtpClient.connect(peer.address)
    await ehlo(client)
    assert (await client.command(f"MAIL FROM:<a@sender.test> {params}")).code == code
    assert (await client.command("MAIL FROM:<a@sender.test>")).code == OK  # nothing was kept
    await client.close()


async def test_null_reverse_path_accepted(start_peer: StartPeer) -> None:
    peer, log = await start_peer()
    client = await SmtpClient.connect(peer.address)
    await ehlo(client)
    assert await send_message(client, "MAIL FROM:<> RET=HDRS") == OK
    await client.close()
    (message,) = log.of(DeliveredMessage)
    assert (message.mail_from, message.mail_options, message.tls) == ("", ("RET=HDRS",), False)


async def test_message_over_size_limit_is_refused_not_delivered(start_peer: StartPeer) -> None:
    peer, log = await start_peer(max_message_bytes=100)
    client = await SmtpClient.connect(peer.address)
    await ehlo(client)
    assert (await client.command("MAIL FROM:<a@sender.test>")).code == OK
    assert (await client.command("RCPT TO:<b@example.test>")).code == OK
    assert (await client.command("DATA")).code == START_MAIL
    await client.send(b"x" * 60 + b"\r\n" + b"y" * 60 + b"\r\n.\r\n")
    assert (await client.reply()).code == TOO_BIG
    await client.close()
    session = await session_of(log)
    assert log.of(DeliveredMessage) == []
    assert "<message 124 bytes>" in texts(session, "c2s")


async def test_smtplib_delivers_over_starttls(ca: TestCa) -> None:
    log, sink = new_log()
    # smtplib checks the certificate against the address it connected to.
    peer = SmtpPeer(HOST, SmtpBehaviour(), ca.server_factory(HOST, "127.0.0.1"), sink)
    await peer.start("127.0.0.1", 0)
    host, port = peer.address

    def deliver() -> None:
        with smtplib.SMTP(host, port, timeout=5) as smtp:
            smtp.starttls(context=ca.client_context())
            smtp.sendmail("a@sender.test", ["b@example.test"], b"Subject: t\r\n\r\nhello\r\n")

    await asyncio.to_thread(deliver)
    await peer.stop()
    session = await session_of(log)
    assert session.close_reason == "quit"
    (message,) = session.delivered
    assert (message.tls, message.data) == (True, b"Subject: t\r\n\r\nhello\r\n")


# -- limits and life cycle ------------------------------------------------------------------


async def test_idle_timeout_closes_with_421(start_peer: StartPeer) -> None:
    peer, log = await start_peer(session_timeout_s=0.2)
    client = await SmtpClient.connect(peer.address)
    await ehlo(client)
    reply = await client.reply()  # sent unprompted when the idle timer fires
    assert reply.code == 421
    assert await client.at_eof()
    await client.close()
    assert (await session_of(log)).close_reason == "timeout"


async def test_over_long_line_is_answered_and_session_goes_on(start_peer: StartPeer) -> None:
    peer, log = await start_peer()
    client = await SmtpClient.connect(peer.address)
    await ehlo(client)
    await client.send(b"NOOP " + b"x" * (2 * LINE_LIMIT) + b"\r\n")
    assert (await client.reply()).code == 500
    assert (await client.command("NOOP")).code == OK
    await client.close()
    session = await session_of(log)
    assert f"<over-long line: {2 * LINE_LIMIT + 7} bytes>" in texts(session, "c2s")
    assert max(len(line.text) for line in session.lines) < LINE_LIMIT


async def test_stop_closes_open_sessions_and_records_them(start_peer: StartPeer) -> None:
    peer, log = await start_peer()
    client = await SmtpClient.connect(peer.address)
    await ehlo(client)
    await peer.stop()
    assert await client.at_eof()
    await client.close()
    session = await session_of(log)
    assert session.close_reason == "peer-closed"
    with pytest.raises(PeerNotRunning):
        _ = peer.address


async def test_client_disconnect_is_recorded(start_peer: StartPeer) -> None:
    peer, log = await start_peer()
    client = await SmtpClient.connect(peer.address)
    await ehlo(client)
    await client.close()
    session = await session_of(log)
    assert session.close_reason == "client-closed"
    assert session.client.startswith("127.0.0.1:")
    assert session.started <= session.ended <= time.monotonic()


async def test_failing_sink_is_reraised_by_stop(ca: TestCa) -> None:
    def sink(_: object) -> None:
        raise RuntimeError("sink bug")

    peer = SmtpPeer(HOST, SmtpBehaviour(), None, sink)
    await peer.start("127.0.0.1", 0)
    client = await SmtpClient.connect(peer.address)
    await ehlo(client)
    assert await send_message(client) == OK  # the SUT is not punished for a world bug
    await client.close()
    with pytest.raises(PeerFailure, match="sink bug"):
        await peer.stop()


async def test_address_before_start_raises() -> None:
    peer = SmtpPeer(HOST, SmtpBehaviour(), None, lambda _: None)
    with pytest.raises(PeerNotRunning):
        _ = peer.address
    await peer.stop()  # stopping a peer that never started is harmless
