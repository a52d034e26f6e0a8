"""Asyncio adapter for the SMTP server core (RFC 5321, RFC 3207 STARTTLS, RFC 8314 3.3).

``start_smtp_server`` listens (port 0 for an ephemeral port), runs one
``SmtpServerConnection`` per client and asks an ``SmtpHandler`` for the MAIL, RCPT and
message decisions. Every read waits at most ``idle_timeout_s`` (then 421 and close), every
buffer is bounded, and a handler that raises gets its client a 451 while the exception is
kept in ``SmtpServerHandle.errors`` for the test to re-raise.

RFC 3207 4.2: when the core asks for the TLS upgrade, every byte already received (the
plaintext that followed the STARTTLS line) is handed to the core before the handshake starts;
the core discards it in ``tls_established()``. Nothing is held back in a hidden buffer.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol

from ._aio_stream import CoreStream
from .errors import SmtpConnectionLost, SmtpError
from .events import ConnectionClosed, NeedData, TlsUpgradeRequired, TranscriptEntry
from .replies import Reply
from .server import SmtpServerConnection
from .server_events import Envelope, MailRequested, MessageReceived, RcptRequested

__all__ = [
    "FinishedSession",
    "SessionInfo",
    "SmtpHandler",
    "SmtpServerHandle",
    "start_smtp_server",
]

MAX_FINISHED_SESSIONS = 1000


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """What the handler may know about the client at the time of a decision."""

    peer: tuple[str, int]
    ehlo_name: str | None
    tls_version: str | None
    cipher: str | None
    tls_active: bool


@dataclass(frozen=True, slots=True)
class FinishedSession:
    """A session that ended, with its transcript (evidence)."""

    peer: tuple[str, int]
    transcript: tuple[TranscriptEntry, ...]
    tls_version: str | None
    cipher: str | None
    discarded_plaintext: int
    close_reason: str  # "quit", "peer-closed", "timeout", "tls-failed: ...", "error: ..."


class SmtpHandler(Protocol):
    """The application's decisions; None from on_mail/on_rcpt accepts with 250."""

    async def on_mail(
        self, session: SessionInfo, reverse_path: str, params: Mapping[str, str | None]
    ) -> Reply | None: ...

    async def on_rcpt(
        self, session: SessionInfo, forward_path: str, params: Mapping[str, str | None]
    ) -> Reply | None: ...

    async def on_message(self, session: SessionInfo, envelope: Envelope) -> Reply: ...


class SmtpServerHandle:
    """A running server: ``address``, ``errors``, ``sessions``, ``async close()``."""

    def __init__(self, server: asyncio.Server, address: tuple[str, int]) -> None:
        self._server = server
        self.address = address
        self.errors: list[BaseException] = []
        self.sessions: list[FinishedSession] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def close(self) -> None:
        self._server.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def __aenter__(self) -> SmtpServerHandle:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


class _Session:
    """One client connection driven through the core."""

    def __init__(
        self,
        handle: SmtpServerHandle,
        handler: SmtpHandler,
        stream: CoreStream,
        core: SmtpServerConnection,
        *,
        tls_context: ssl.SSLContext | None,
        idle_timeout_s: float,
    ) -> None:
        self._handle = handle
        self._handler = handler
        self._stream = stream
        self._core = core
        self._tls_context = tls_context
        self._idle = idle_timeout_s
        assert stream.transport is not None
        peer = stream.transport.get_extra_info("peername")
        self._peer: tuple[str, int] = (str(peer[0]), int(peer[1])) if peer else ("", 0)

    def info(self) -> SessionInfo:
        record = self._core.session
        return SessionInfo(self._peer, record.ehlo_name, record.tls_version, record.cipher, record.tls_active)

    async def run(self) -> None:
        reason = "error: unknown"
        try:
            reason = await self._loop()
        except SmtpConnectionLost:
            reason = "peer-closed"
        except SmtpError as exc:  # a client that broke the protocol beyond recovery
            reason = f"error: {exc}"
        except asyncio.CancelledError:
            reason = "server-closed"
            raise
        finally:
            self._finish(reason)  # first: closing may be cancelled by the server's close()
            with contextlib.suppress(Exception):
                await self._stream.close(grace=min(self._idle, 1.0))

    def _finish(self, reason: str) -> None:
        if len(self._handle.sessions) >= MAX_FINISHED_SESSIONS:
            return
        record = self._core.session
        self._handle.sessions.append(
            FinishedSession(
                self._peer,
                tuple(self._core.transcript),
                record.tls_version,
                record.cipher,
                self._core.discarded_plaintext,
                reason,
            )
        )

    async def _flush(self) -> None:
        out = self._core.data_to_send()
        if out:
            try:
                async with asyncio.timeout(self._idle):
                    await self._stream.write(out)
            except TimeoutError as exc:
                raise SmtpConnectionLost("client does not read") from exc

    async def _loop(self) -> str:
        core = self._core
        while True:
            event = core.next_event()
            if isinstance(event, NeedData):
                await self._flush()
                try:
                    async with asyncio.timeout(self._idle):
                        data = await self._stream.read()
                except TimeoutError:
                    # RFC 5321 4.5.3.2: a server may close an idle session, with 421.
                    with contextlib.suppress(SmtpError):
                        await self._stream.write(b"421 4.4.2 Idle timeout, closing\r\n")
                    return "timeout"
                core.receive_data(data)
            elif isinstance(event, MailRequested):
                decision = await self._ask(self._handler.on_mail, event.reverse_path, event.params)
                self._answer(decision)
            elif isinstance(event, RcptRequested):
                decision = await self._ask(self._handler.on_rcpt, event.forward_path, event.params)
                self._answer(decision)
            elif isinstance(event, MessageReceived):
                decision = await self._ask_message(event.envelope)
                self._answer(decision)
            elif isinstance(event, TlsUpgradeRequired):
                failure = await self._upgrade()
                if failure is not None:
                    return failure
            else:
                assert isinstance(event, ConnectionClosed)
                with contextlib.suppress(SmtpError):
                    await self._flush()
                return event.reason

    def _answer(self, decision: Reply | None) -> None:
        if decision is None:
            self._core.accept()
        else:
            self._core.send_reply(decision)

    async def _upgrade(self) -> str | None:
        assert self._tls_context is not None  # the core offers STARTTLS only with a context
        await self._flush()
        # No await between taking the buffer and start_tls pausing the socket: the plaintext
        # that followed STARTTLS goes to the core, which discards it (RFC 3207 4.2).
        leftover = self._stream.take_buffered()
        if leftover:
            self._core.receive_data(leftover)
        try:
            async with asyncio.timeout(self._idle):
                ssl_object = await self._stream.start_tls(
                    self._tls_context,
                    server_side=True,
                    server_hostname=None,
                    handshake_timeout=self._idle,
                )
        except (ssl.SSLError, OSError, SmtpConnectionLost, TimeoutError) as exc:
            return f"tls-failed: {exc or type(exc).__name__}"
        version = ssl_object.version() if ssl_object else None
        cipher = ssl_object.cipher() if ssl_object else None
        self._core.tls_established(version, cipher[0] if cipher else None)
        return None

    async def _ask(
        self,
        method: Callable[[SessionInfo, str, Mapping[str, str | None]], Awaitable[Reply | None]],
        path: str,
        params: Mapping[str, str | None],
    ) -> Reply | None:
        try:
            result: object = await method(self.info(), path, params)
        except Exception as exc:
            return self._handler_failed(exc)
        return self._checked(result)

    async def _ask_message(self, envelope: Envelope) -> Reply | None:
        try:
            result: object = await self._handler.on_message(self.info(), envelope)
        except Exception as exc:
            return self._handler_failed(exc)
        return self._checked(result)

    def _checked(self, result: object) -> Reply | None:
        if result is None or isinstance(result, Reply):
            return result
        return self._handler_failed(TypeError(f"handler returned {result!r}, not a Reply"))

    def _handler_failed(self, exc: Exception) -> Reply:
        self._handle.errors.append(exc)
        return Reply(451, ("4.3.0 Local error in processing",))


async def start_smtp_server(
    handler: SmtpHandler,
    host: str,
    port: int,
    *,
    hostname: str,
    tls_context: ssl.SSLContext | None,
    implicit_tls: bool = False,
    connection_factory: Callable[..., SmtpServerConnection] = SmtpServerConnection,
    idle_timeout_s: float = 60,
    max_message_size: int = 10 * 2**20,
    extensions: Sequence[str] | None = None,
) -> SmtpServerHandle:
    """Listen on ``host:port`` (port 0: ephemeral) and serve SMTP until ``close()``.

    With ``implicit_tls`` (RFC 8314 3.3) TLS starts on connect and STARTTLS is not offered;
    otherwise STARTTLS is offered when ``tls_context`` is given. ``extensions`` are the EHLO
    keywords besides SIZE, STARTTLS and REQUIRETLS (None: the core's default).
    """
    more: dict[str, Any] = {} if extensions is None else {"extensions": tuple(extensions)}
    if implicit_tls and tls_context is None:
        raise ValueError("implicit_tls needs a tls_context")
    loop = asyncio.get_running_loop()
    handle: SmtpServerHandle | None = None
    pending: list[CoreStream] = []

    def spawn(stream: CoreStream) -> None:
        if handle is None:  # cannot happen: connections start after create_server returns
            pending.append(stream)
            return
        core = connection_factory(
            hostname,
            tls_available=tls_context is not None,
            tls_active=implicit_tls,
            max_message_size=max_message_size,
            **more,
        )
        if implicit_tls and stream.transport is not None:
            ssl_object = stream.transport.get_extra_info("ssl_object")
            cipher = ssl_object.cipher() if ssl_object else None
            core.record_tls(ssl_object.version() if ssl_object else None, cipher and cipher[0])
        session = _Session(
            handle,
            handler,
            stream,
            core,
            tls_context=tls_context,
            idle_timeout_s=idle_timeout_s,
        )
        task = loop.create_task(session.run())
        handle._tasks.add(task)
        task.add_done_callback(handle._tasks.discard)

    class _Protocol(CoreStream):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            spawn(self)

    server = await loop.create_server(
        _Protocol,
        host,
        port,
        ssl=tls_context if implicit_tls else None,
        ssl_handshake_timeout=idle_timeout_s if implicit_tls else None,
    )
    sockname = server.sockets[0].getsockname()
    handle = SmtpServerHandle(server, (str(sockname[0]), int(sockname[1])))
    for stream in pending:
        spawn(stream)
    return handle
