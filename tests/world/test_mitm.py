"""Tests of the STARTTLS man in the middle (conformance.world.mitm), end to end:
client -> StartTlsMitm -> SmtpPeer, all on loopback."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.world.mitm import StartTlsMitm, reply_is_complete, strip_starttls, wire_text
from conformance.world.observe import (
    DeliveredMessage,
    MitmAction,
    ObservationLog,
    TlsHandshake,
)
from conformance.world.smtp_peer import LINE_LIMIT, SmtpPeer
from conformance.world.spec import MitmMode, MitmSpec, SmtpBehaviour
from tests.world.smtp_helpers import (
    SmtpClient,
    TestCa,
    new_log,
    session_of,
    texts,
)

HOST = "mx1.example.test"
OK, READY, START_MAIL = 250, 220, 354
NOT_RECOGNIZED, NOT_AVAILABLE, BAD_SEQUENCE = 502, 454, 503


StartWorld = Callable[..., Awaitable[tuple[StartTlsMitm, ObservationLog]]]


@pytest.fixture
async def start_world(ca: TestCa) -> AsyncIterator[StartWorld]:
    running: list[SmtpPeer | StartTlsMitm] = []

    async def start(
        mode: MitmMode, inject: str = "", behaviour: SmtpBehaviour | None = None
    ) -> tuple[StartTlsMitm, ObservationLog]:
        log, sink = new_log()
        peer = SmtpPeer(HOST, behaviour or SmtpBehaviour(), ca.server_factory(HOST), sink)
        await peer.start("127.0.0.1", 0)
        running.append(peer)
        mitm = StartTlsMitm(HOST, MitmSpec(mode=mode, inject=inject), peer.address, sink)
        await mitm.start("127.0.0.1", 0)
        running.append(mitm)
        return mitm, log

    yield start
    for server in reversed(running):
        await server.stop()


def actions(log: ObservationLog) -> list[str]:
    return [a.action for a in log.of(MitmAction)]


async def ehlo(client: SmtpClient) -> tuple[str, ...]:
    assert (await client.reply()).code == READY
    reply = await client.command("EHLO client.example.test")
    assert reply.code == OK
    return reply.lines


async def send_message(client: SmtpClient, body: bytes = b"Subject: x\r\n\r\nhi\r\n") -> int:
    assert (await client.command("MAIL FROM:<a@sender.test>")).code == OK
    assert (await client.command("RCPT TO:<b@example.test>")).code == OK
    assert (await client.command("DATA")).code == START_MAIL
    await client.send(body + b".\r\n")
    return (await client.reply()).code


async def test_pass_mode_keeps_tls_end_to_end(start_world: StartWorld, ca: TestCa) -> None:
    mitm, log = await start_world(MitmMode.PASS)
    client = await SmtpClient.connect(mitm.address)
    assert "STARTTLS" in await ehlo(client)
    assert (await client.command("STARTTLS")).code == READY
    # The client verifies the upstream peer's certificate through the relay.
    await client.starttls(ca.client_context(), HOST)
    assert (await client.command("EHLO client.example.test")).code == OK
    assert await send_message(client) == OK
    assert (await client.command("QUIT")).code == 221
    assert await client.at_eof()
    await client.close()
    session = await session_of(log)
    assert (session.sni, session.tls_version) == (HOST, "TLSv1.3")
    assert [h.ok for h in log.of(TlsHandshake)] == [True]
    assert log.of(DeliveredMessage)[0].tls
    assert actions(log)[:2] == ["connect", "tls-passthrough"]


async def test_strip_starttls_removes_keyword_and_refuses_command(
    start_world: StartWorld,
) -> None:
    mitm, log = await start_world(MitmMode.STRIP_STARTTLS)
    client = await SmtpClient.connect(mitm.address)
    assert (await client.reply()).code == READY
    await client.send(b"EHLO client.example.test\r\n")
    raw = [await client.line() for _ in range(5)]
    # STARTTLS was the last keyword: the new last line must end the reply ("250 ").
    assert raw == [
        f"250-{HOST}\r\n".encode(),
        b"250-PIPELINING\r\n",
        b"250-8BITMIME\r\n",
        b"250-ENHANCEDSTATUSCODES\r\n",
        b"250 SMTPUTF8\r\n",
    ]
    assert (await client.command("STARTTLS")).code == NOT_RECOGNIZED
    assert await send_message(client) == OK
    await client.close()
    session = await session_of(log)
    assert "STARTTLS" not in texts(session, "c2s")  # never reached the peer
    assert "250 STARTTLS" in texts(session, "s2c")  # though the peer offered it
    assert not log.of(DeliveredMessage)[0].tls
    assert {"strip-starttls", "refuse-starttls"} <= set(actions(log))


async def test_strip_mode_leaves_message_bodies_alone(start_world: StartWorld) -> None:
    mitm, log = await start_world(MitmMode.STRIP_STARTTLS)
    client = await SmtpClient.connect(mitm.address)
    await ehlo(client)
    body = b"Subject: x\r\n\r\nSTARTTLS\r\n250 STARTTLS\r\n"
    assert await send_message(client, body) == OK
    await client.close()
    assert log.of(DeliveredMessage)[0].data == body


async def test_starttls_error_answers_454_itself(start_world: StartWorld) -> None:
    mitm, log = await start_world(MitmMode.STARTTLS_ERROR)
    client = await SmtpClient.connect(mitm.address)
    assert "STARTTLS" in await ehlo(client)
    reply = await client.command("STARTTLS")
    assert (reply.code, reply.text) == (
        NOT_AVAILABLE,
        "4.7.0 TLS not available due to temporary reason",
    )
    assert (await client.command("NOOP")).code == OK  # the session goes on in plaintext
    await client.close()
    session = await session_of(log)
    assert "STARTTLS" not in texts(session, "c2s")
    assert "starttls-error" in actions(log)


async def test_inject_commands_reach_the_server_in_plaintext_and_are_discarded(
    start_world: StartWorld, ca: TestCa
) -> None:
    mitm, log = await start_world(MitmMode.INJECT_COMMANDS, inject="MAIL FROM:<evil@attacker.test>\n")
    client = await SmtpClient.connect(mitm.address)
    await ehlo(client)
    assert (await client.command("STARTTLS")).code == READY
    await client.starttls(ca.client_context(), HOST)
    assert (await client.command("EHLO client.example.test")).code == OK
    # Our peer follows RFC 3207 section 4.2: the injected MAIL started no transaction.
    assert (await client.command("RCPT TO:<b@example.test>")).code == BAD_SEQUENCE
    await client.close()
    session = await session_of(log)
    assert texts(session, "c2s", tls=False)[-2:] == ["STARTTLS", "MAIL FROM:<evil@attacker.test>"]
    assert "inject-before-tls" in actions(log)


async def test_inject_replies_reach_the_client_before_tls(start_world: StartWorld, ca: TestCa) -> None:
    mitm, log = await start_world(MitmMode.INJECT_REPLIES, inject="250 2.0.0 injected\r\n")
    client = await SmtpClient.connect(mitm.address)
    await ehlo(client)
    await client.send(b"STARTTLS\r\n")
    assert (await client.reply()).code == READY
    assert await client.line() == b"250 2.0.0 injected\r\n"  # plaintext, behind the 220
    await client.starttls(ca.client_context(), HOST)
    assert (await client.command("EHLO client.example.test")).code == OK
    await client.close()
    await session_of(log)
    assert [h.ok for h in log.of(TlsHandshake)] == [True]
    assert "inject-after-starttls-reply" in actions(log)


async def test_unreachable_upstream_closes_the_client() -> None:
    with socket.socket() as probe:  # a port nothing listens on once the probe is closed
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()
    log, sink = new_log()
    mitm = StartTlsMitm(HOST, MitmSpec(), dead, sink, timeout_s=2.0)
    await mitm.start("127.0.0.1", 0)
    client = await SmtpClient.connect(mitm.address)
    assert await client.at_eof()
    await client.close()
    await mitm.stop()
    assert actions(log)[0] == "upstream-unreachable"


async def test_over_long_line_ends_the_relay(start_world: StartWorld) -> None:
    mitm, log = await start_world(MitmMode.PASS)
    client = await SmtpClient.connect(mitm.address)
    await ehlo(client)
    await client.send(b"NOOP " + b"x" * (2 * LINE_LIMIT) + b"\r\n")
    assert await client.at_eof()
    await client.close()
    closes = [a.detail for a in log.of(MitmAction) if a.action == "close"]
    assert len(closes) == 1
    assert "over-long line" in closes[0]


async def test_stop_cuts_open_relays(ca: TestCa) -> None:
    log, sink = new_log()
    peer = SmtpPeer(HOST, SmtpBehaviour(), None, sink)
    await peer.start("127.0.0.1", 0)
    mitm = StartTlsMitm(HOST, MitmSpec(), peer.address, sink)
    await mitm.start("127.0.0.1", 0)
    client = await SmtpClient.connect(mitm.address)
    await ehlo(client)
    await mitm.stop()
    assert await client.at_eof()
    await client.close()
    await peer.stop()
    assert (await session_of(log)).close_reason == "client-closed"
    assert actions(log)[-1] == "close"


# -- pure parts: property tests --------------------------------------------------------------

_keyword = st.from_regex(r"[A-Z0-9][A-Z0-9-]{0,11}( [A-Z0-9=]{1,8})?", fullmatch=True)


@given(st.lists(_keyword, max_size=8), st.lists(st.integers(0, 8), max_size=3))
def test_strip_starttls_leaves_a_well_formed_reply(keywords: list[str], spots: list[int]) -> None:
    for spot in spots:
        keywords.insert(min(spot, len(keywords)), "STARTTLS")
    texts_ = [HOST, *keywords]
    lines = [f"250{'-' if i < len(texts_) - 1 else ' '}{t}".encode() for i, t in enumerate(texts_)]
    out, removed = strip_starttls(lines)
    assert removed == keywords.count("STARTTLS")
    assert [line[4:] for line in out] == [t.encode() for t in texts_ if t != "STARTTLS"]
    assert all(line.startswith(b"250-") for line in out[:-1])
    assert out[-1].startswith(b"250 ")
    assert all(reply_is_complete(line) == (line is out[-1]) for line in out)


@given(st.binary(max_size=40))
def test_reply_is_complete_is_total(line: bytes) -> None:
    continues = len(line) >= 4 and line[:3].isdigit() and line[3:4] == b"-"
    assert reply_is_complete(line) is not continues


@given(st.lists(st.text(st.characters(blacklist_characters="\r\n"), max_size=10), max_size=5))
def test_wire_text_ends_every_line_with_crlf(lines: list[str]) -> None:
    for ending in ("\n", "\r\n"):
        wire = wire_text(ending.join(lines))
        expected = [line.encode("utf-8", "surrogatepass") for line in lines]
        assert wire.split(b"\r\n") == (expected or [b""])
        assert b"\n" not in wire.replace(b"\r\n", b"")
