"""The asyncio adapters on loopback: real STARTTLS, injection over a socket, timeouts."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Callable, Mapping

import pytest
import trustme

from reference_impl.smtp.aio_client import AsyncSmtpClient
from reference_impl.smtp.aio_server import SessionInfo, SmtpServerHandle, start_smtp_server
from reference_impl.smtp.errors import (
    RemoteProtocolError,
    SmtpConnectionLost,
    SmtpTimeout,
    TlsHandshakeFailed,
)
from reference_impl.smtp.replies import Reply
from reference_impl.smtp.server import SmtpServerConnection
from reference_impl.smtp.server_events import Envelope

LOOPBACK = "127.0.0.1"
STEP = 2.0  # deadline of one network step; only a hang would ever reach it


class Recorder:
    """An SmtpHandler that accepts everything and remembers what it saw."""

    def __init__(self, fail_mail: bool = False) -> None:
        self.fail_mail = fail_mail
        self.messages: list[tuple[SessionInfo, Envelope]] = []

    async def on_mail(self, session: SessionInfo, reverse_path: str, params: Mapping[str, str | None]) -> Reply | None:
        if self.fail_mail:
            raise RuntimeError("handler bug")
        return None

    async def on_rcpt(self, session: SessionInfo, forward_path: str, params: Mapping[str, str | None]) -> Reply | None:
        return Reply(550, ("5.1.1 no such user",)) if forward_path.startswith("bad") else None

    async def on_message(self, session: SessionInfo, envelope: Envelope) -> Reply:
        self.messages.append((session, envelope))
        return Reply(250, ("2.0.0 queued",))


@pytest.fixture
async def server(server_ctx: ssl.SSLContext) -> AsyncIterator[tuple[SmtpServerHandle, Recorder]]:
    recorder = Recorder()
    handle = await start_smtp_server(
        recorder, LOOPBACK, 0, hostname="mx.test", tls_context=server_ctx, idle_timeout_s=STEP
    )
    async with handle:
        yield handle, recorder


async def test_starttls_session(
    server: tuple[SmtpServerHandle, Recorder],
    client_ctx: ssl.SSLContext,
    server_cert: trustme.LeafCert,
) -> None:
    handle, recorder = server
    client = await AsyncSmtpClient.connect(*handle.address, timeout=STEP, local_hostname="me.test")
    try:
        assert client.greeting.code == 220
        assert (await client.ehlo()).code == 250
        assert "STARTTLS" in client.extensions
        assert (await client.starttls(client_ctx, "mx.test")).code == 220
        assert client.extensions == {}
        assert client.tls_version is not None and client.tls_version.startswith("TLS")
        assert client.cipher
        assert client.peer_certificate_der == ssl.PEM_cert_to_DER_cert(server_cert.cert_chain_pems[0].bytes().decode())
        await client.ehlo()
        assert "STARTTLS" not in client.extensions  # RFC 3207 4.2
        assert (await client.mail("a@b.test", ["BODY=8BITMIME"])).code == 250
        assert (await client.rcpt("bad@d.test")).code == 550
        assert (await client.rcpt("c@d.test")).code == 250
        assert (await client.data(b"Subject: hi\n\n.dot\n")).code == 250
        await client.quit()
    finally:
        await client.close()
    session, envelope = recorder.messages[0]
    assert session.tls_version == client.tls_version and session.ehlo_name == "me.test"
    assert envelope.data == b"Subject: hi\r\n\r\n.dot\r\n"
    assert [r.address for r in envelope.rcpt_tos] == ["c@d.test"]
    tls_by_line = {line: tls for _, line, tls in client.transcript}
    assert tls_by_line["STARTTLS"] is False
    assert tls_by_line["MAIL FROM:<a@b.test> BODY=8BITMIME"] is True


async def test_untrusted_certificate_fails_handshake(
    server: tuple[SmtpServerHandle, Recorder],
) -> None:
    handle, _ = server
    client = await AsyncSmtpClient.connect(*handle.address, timeout=STEP, local_hostname="me.test")
    try:
        await client.ehlo()
        with pytest.raises(TlsHandshakeFailed) as info:
            await client.starttls(ssl.create_default_context(), "mx.test")
        assert info.value.verify_code is not None
    finally:
        await client.close()


async def test_handler_error_gives_451(server_ctx: ssl.SSLContext) -> None:
    handle = await start_smtp_server(Recorder(fail_mail=True), LOOPBACK, 0, hostname="mx.test", tls_context=None)
    async with handle:
        client = await AsyncSmtpClient.connect(*handle.address, timeout=STEP, local_hostname="me")
        try:
            await client.ehlo()
            assert "STARTTLS" not in client.extensions
            assert (await client.mail("a@b.test")).code == 451
        finally:
            await client.close()
    assert isinstance(handle.errors[0], RuntimeError)


async def test_implicit_tls(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext) -> None:
    recorder = Recorder()
    handle = await start_smtp_server(
        recorder, LOOPBACK, 0, hostname="mx.test", tls_context=server_ctx, implicit_tls=True
    )
    async with handle:
        client = await AsyncSmtpClient.connect(
            *handle.address,
            timeout=STEP,
            local_hostname="me",
            implicit_tls=client_ctx,
            server_hostname="mx.test",
        )
        try:
            assert client.tls_active and client.tls_version
            await client.ehlo()
            assert "STARTTLS" not in client.extensions  # RFC 8314 3.3, RFC 3207 4.2
            await client.mail("a@b.test")
            await client.rcpt("c@d.test")
            await client.data(b"x")
            await client.quit()
        finally:
            await client.close()
    assert recorder.messages[0][0].tls_version == client.tls_version


async def read_reply(reader: asyncio.StreamReader) -> list[bytes]:
    lines = []
    while True:
        line = await asyncio.wait_for(reader.readline(), STEP)
        lines.append(line)
        if len(line) < 4 or line[3:4] != b"-":
            return lines


class NoDiscardServer(SmtpServerConnection):
    """Negative control (CVE-2011-0411): answers commands pipelined after STARTTLS."""

    def _discard_pending_plaintext(self) -> None:
        pass


@pytest.mark.parametrize(
    ("factory", "first_reply_after_tls"),
    [(SmtpServerConnection, b"221"), (NoDiscardServer, b"250")],
)
async def test_server_injection_over_socket(
    server_ctx: ssl.SSLContext,
    client_ctx: ssl.SSLContext,
    factory: Callable[..., SmtpServerConnection],
    first_reply_after_tls: bytes,
) -> None:
    handle = await start_smtp_server(
        Recorder(), LOOPBACK, 0, hostname="mx.test", tls_context=server_ctx, connection_factory=factory
    )
    async with handle:
        reader, writer = await asyncio.open_connection(*handle.address)
        try:
            await read_reply(reader)
            # The attacker's pipelined plaintext: NOOP rides behind STARTTLS in one segment.
            writer.write(b"EHLO a\r\nSTARTTLS\r\nNOOP\r\n")
            await read_reply(reader)
            assert (await read_reply(reader))[0].startswith(b"220")
            await writer.start_tls(client_ctx, server_hostname="mx.test")
            writer.write(b"QUIT\r\n")
            assert (await read_reply(reader))[0][:3] == first_reply_after_tls
        finally:
            writer.close()
            await writer.wait_closed()
    if factory is SmtpServerConnection:
        assert handle.sessions[0].discarded_plaintext == len(b"NOOP\r\n")


async def test_client_discards_injected_reply(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext) -> None:
    async def fake_mx(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(b"220 fake\r\n")
            await asyncio.wait_for(reader.readline(), STEP)
            writer.write(b"250-fake\r\n250 STARTTLS\r\n")
            await asyncio.wait_for(reader.readline(), STEP)
            # RFC 8314 Appendix A: a man in the middle appends a reply to the 220.
            writer.write(b"220 go\r\n250-injected\r\n250 NOTHING\r\n")
            await writer.drain()
            await writer.start_tls(server_ctx)
            await asyncio.wait_for(reader.readline(), STEP)
            writer.write(b"250-real\r\n250 REQUIRETLS\r\n")
            await asyncio.wait_for(reader.readline(), STEP)
            writer.write(b"221 bye\r\n")
        finally:
            writer.close()

    server = await asyncio.start_server(fake_mx, LOOPBACK, 0)
    async with server:
        client = await AsyncSmtpClient.connect(*server.sockets[0].getsockname()[:2], timeout=STEP, local_hostname="me")
        try:
            await client.ehlo()
            await client.starttls(client_ctx, "mx.test")
            reply = await client.ehlo()
            assert reply.lines == ("real", "REQUIRETLS")
            assert client.extensions == {"REQUIRETLS": ""}
            assert client.core.discarded_plaintext == len(b"250-injected\r\n250 NOTHING\r\n")
            await client.quit()
        finally:
            await client.close()


async def test_timeout_against_silent_server() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)  # returns at EOF, once the client gave up
        writer.close()

    server = await asyncio.start_server(silent, LOOPBACK, 0)
    async with server:
        with pytest.raises(SmtpTimeout):
            await AsyncSmtpClient.connect(*server.sockets[0].getsockname()[:2], timeout=0.1, local_hostname="me")


async def test_connection_lost() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 hi\r\n")
        await asyncio.wait_for(reader.readline(), STEP)
        writer.close()

    server = await asyncio.start_server(hang_up, LOOPBACK, 0)
    async with server:
        client = await AsyncSmtpClient.connect(*server.sockets[0].getsockname()[:2], timeout=STEP, local_hostname="me")
        try:
            with pytest.raises(SmtpConnectionLost):
                await client.ehlo()
        finally:
            await client.close()


async def test_server_idle_timeout(server_ctx: ssl.SSLContext) -> None:
    handle = await start_smtp_server(Recorder(), LOOPBACK, 0, hostname="mx.test", tls_context=None, idle_timeout_s=0.1)
    async with handle:
        reader, writer = await asyncio.open_connection(*handle.address)
        try:
            await read_reply(reader)
            assert (await read_reply(reader))[0].startswith(b"421")
            assert await asyncio.wait_for(reader.read(), STEP) == b""
        finally:
            writer.close()
            await writer.wait_closed()
    assert handle.sessions[0].close_reason == "timeout"


async def test_oversized_reply_is_refused() -> None:
    async def chatty(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 " + b"x" * 5000 + b"\r\n")
        await reader.read(100)
        writer.close()

    server = await asyncio.start_server(chatty, LOOPBACK, 0)
    async with server:
        with pytest.raises(RemoteProtocolError) as info:
            await AsyncSmtpClient.connect(*server.sockets[0].getsockname()[:2], timeout=STEP, local_hostname="me")
        assert info.value.section == "RFC 5321 4.5.3.1.5"
