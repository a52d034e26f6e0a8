"""Asyncio adapter for the SMTP client core (RFC 5321, RFC 3207 STARTTLS).

``AsyncSmtpClient`` drives ``SmtpClientConnection`` over a loopback or real TCP connection.
Every operation is bounded by ``timeout`` (``SmtpTimeout``), an unexpected end of stream
raises ``SmtpConnectionLost``, reply size is capped by the core's parser, and ``transcript``
keeps every line with the TLS state it crossed in, as evidence.

RFC 3207 4.2 / RFC 8314 Appendix A: after the 220 to STARTTLS, all bytes already received
are handed to the core (which discards them) before the handshake starts, so injected
plaintext can never be read as a post-TLS reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable, Sequence

from ._aio_stream import CoreStream
from .client import ClientEvent, EhloReply, Greeting, ReplyReceived, SmtpClientConnection
from .errors import SmtpConnectionLost, SmtpTimeout, TlsHandshakeFailed
from .events import ConnectionClosed, Direction, NeedData, TlsUpgradeRequired, TranscriptEntry
from .replies import Reply

__all__ = ["AsyncSmtpClient", "Direction", "TranscriptEntry"]


class AsyncSmtpClient:
    """One SMTP client session. Create with ``await AsyncSmtpClient.connect(...)``."""

    def __init__(self, stream: CoreStream, core: SmtpClientConnection, *, timeout: float, local_hostname: str) -> None:
        self._stream = stream
        self._core = core
        self._timeout = timeout
        self.local_hostname = local_hostname
        self.greeting: Reply = Reply(220)  # replaced by connect()
        self.extensions: dict[str, str] = {}
        self.tls_version: str | None = None
        self.cipher: str | None = None
        self.peer_certificate_der: bytes | None = None
        self.transcript: list[TranscriptEntry] = []

    @classmethod
    async def connect(
        cls,
        host: str,
        port: int,
        *,
        timeout: float,
        local_hostname: str,
        connection_factory: Callable[[], SmtpClientConnection] = SmtpClientConnection,
        implicit_tls: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
    ) -> AsyncSmtpClient:
        """Open the connection and read the greeting (RFC 5321 3.1).

        With ``implicit_tls`` the TLS handshake runs first (RFC 8314 3.3), verifying
        ``server_hostname``. A negative greeting (554) is returned in ``greeting``, not
        raised: the caller decides.
        """
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport, stream = await loop.create_connection(
                    CoreStream,
                    host,
                    port,
                    ssl=implicit_tls,
                    server_hostname=server_hostname if implicit_tls else None,
                    ssl_handshake_timeout=timeout if implicit_tls else None,
                )
        except TimeoutError as exc:
            raise SmtpTimeout(f"connect to {host}:{port} timed out") from exc
        except ssl.SSLCertVerificationError as exc:
            raise TlsHandshakeFailed(exc.verify_message or str(exc), exc.verify_code) from exc
        except ssl.SSLError as exc:
            raise TlsHandshakeFailed(str(exc)) from exc
        except OSError as exc:
            raise SmtpConnectionLost(f"connect to {host}:{port} failed: {exc}") from exc
        client = cls(stream, connection_factory(), timeout=timeout, local_hostname=local_hostname)
        if implicit_tls is not None:
            client._core.implicit_tls()
            client._note_tls(transport.get_extra_info("ssl_object"))
        try:
            event = await client._next_reply_event()
            if not isinstance(event, Greeting):
                raise SmtpConnectionLost(f"expected a greeting, got {event!r}")
            client.greeting = event.reply
        except BaseException:
            await client.close()
            raise
        return client

    # -- properties -----------------------------------------------------------------------
    @property
    def core(self) -> SmtpClientConnection:
        return self._core

    @property
    def tls_active(self) -> bool:
        return self._core.tls_active

    # -- commands -------------------------------------------------------------------------
    async def ehlo(self) -> Reply:
        self._core.ehlo(self.local_hostname)
        event = await self._exchange()
        assert isinstance(event, EhloReply)
        self.extensions = event.extensions
        return event.reply

    async def helo(self) -> Reply:
        self._core.helo(self.local_hostname)
        return self._reply_of(await self._exchange())

    async def starttls(self, context: ssl.SSLContext, server_hostname: str | None) -> Reply:
        """Send STARTTLS; on 220 run the handshake. Returns the reply to STARTTLS.

        Raises ``TlsHandshakeFailed`` when the handshake fails (the connection is then
        closed). After success, ``extensions`` is empty until the next ``ehlo()``.
        """
        self._core.starttls()
        event = await self._exchange()
        if not isinstance(event, TlsUpgradeRequired):
            return self._reply_of(event)
        try:
            async with asyncio.timeout(self._timeout):
                # No await between taking the buffer and start_tls pausing the socket: every
                # plaintext byte received so far goes to the core, which discards it.
                leftover = self._stream.take_buffered()
                if leftover:
                    self._core.receive_data(leftover)
                self._record_discard()
                ssl_object = await self._stream.start_tls(
                    context,
                    server_side=False,
                    server_hostname=server_hostname,
                    handshake_timeout=self._timeout,
                )
        except ssl.SSLCertVerificationError as exc:
            await self.close()
            raise TlsHandshakeFailed(exc.verify_message or str(exc), exc.verify_code) from exc
        except (ssl.SSLError, OSError, SmtpConnectionLost) as exc:
            await self.close()
            raise TlsHandshakeFailed(str(exc) or type(exc).__name__) from exc
        except TimeoutError as exc:
            await self.close()
            raise TlsHandshakeFailed("TLS handshake timed out") from exc
        self._core.tls_established()
        self.extensions = {}
        self._note_tls(ssl_object)
        return event.reply

    def _note_tls(self, ssl_object: object) -> None:
        if isinstance(ssl_object, ssl.SSLObject):
            self.tls_version = ssl_object.version()
            cipher = ssl_object.cipher()
            self.cipher = cipher[0] if cipher else None
            self.peer_certificate_der = ssl_object.getpeercert(binary_form=True)

    async def mail(self, sender: str, params: Sequence[str] = ()) -> Reply:
        self._core.mail(sender, params)
        return self._reply_of(await self._exchange())

    async def rcpt(self, recipient: str, params: Sequence[str] = ()) -> Reply:
        self._core.rcpt(recipient, params)
        return self._reply_of(await self._exchange())

    async def data(self, message: bytes) -> Reply:
        """DATA; on 354 send ``message`` (dot-stuffed) and return the final reply, else
        return the reply to DATA."""
        self._core.data()
        reply = self._reply_of(await self._exchange())
        if reply.code != 354:
            return reply
        self._core.message_content(message)
        return self._reply_of(await self._exchange(content_bytes=len(message)))

    async def rset(self) -> Reply:
        self._core.rset()
        return self._reply_of(await self._exchange())

    async def noop(self) -> Reply:
        self._core.noop()
        return self._reply_of(await self._exchange())

    async def quit(self) -> None:
        """QUIT and close; the connection is closed even when the reply never comes."""
        try:
            self._core.quit()
            await self._exchange()
        finally:
            await self.close()

    async def close(self) -> None:
        """Close the connection; never raises."""
        # close must never raise: the session is over whatever happens here.
        with contextlib.suppress(Exception):
            await self._stream.close(grace=min(self._timeout, 1.0))

    # -- internals ------------------------------------------------------------------------
    @staticmethod
    def _reply_of(event: ClientEvent) -> Reply:
        if isinstance(event, Greeting | EhloReply | ReplyReceived | TlsUpgradeRequired):
            return event.reply
        raise SmtpConnectionLost(f"expected a reply, got {event!r}")

    async def _exchange(self, content_bytes: int | None = None) -> ClientEvent:
        """Write what the core queued, then return the next reply event."""
        out = self._core.data_to_send()
        tls = self._core.tls_active
        if content_bytes is not None:
            self.transcript.append(TranscriptEntry("c2s", f"[message content: {content_bytes} bytes]", tls))
        else:
            for line in out.decode("utf-8", "surrogateescape").split("\r\n")[:-1]:
                self.transcript.append(TranscriptEntry("c2s", line, tls))
        try:
            async with asyncio.timeout(self._timeout):
                await self._stream.write(out)
        except TimeoutError as exc:
            raise SmtpTimeout("write timed out") from exc
        return await self._next_reply_event()

    async def _next_reply_event(self) -> ClientEvent:
        try:
            async with asyncio.timeout(self._timeout):
                while True:
                    event = self._core.next_event()
                    if isinstance(event, NeedData):
                        self._core.receive_data(await self._stream.read())
                        continue
                    if isinstance(event, ConnectionClosed):
                        raise SmtpConnectionLost("the server closed the connection")
                    self._record(event)
                    return event
        except TimeoutError as exc:
            raise SmtpTimeout(f"no reply within {self._timeout} s") from exc

    def _record(self, event: ClientEvent) -> None:
        if isinstance(event, Greeting | EhloReply | ReplyReceived | TlsUpgradeRequired):
            reply = event.reply
            last = len(reply.lines) - 1
            for index, text in enumerate(reply.lines):
                sep = " " if index == last else "-"
                self.transcript.append(TranscriptEntry("s2c", f"{reply.code}{sep}{text}", self._core.tls_active))

    def _record_discard(self) -> None:
        if self._core.discarded_plaintext or self._core.pending_plaintext:
            self.transcript.append(TranscriptEntry("s2c", "[plaintext after 220 to STARTTLS discarded]", False))
