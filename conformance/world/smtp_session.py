"""One session of a world SMTP peer: the aiosmtpd protocol object behind ``SmtpPeer``.

A session plays the server side of SMTP (RFC 5321 sections 3.1, 4.1.1, 4.2) with every reply the
scenario's ``SmtpBehaviour`` scripts, and reports what it saw to an ``ObservationSink``:

* STARTTLS per RFC 3207: advertised in the EHLO reply (section 4), upgraded only after a 220
  (section 4), plaintext the client pipelined behind the command is discarded, never executed
  (section 4.2; the RFC 8314 Appendix A bug class), and the session state is reset after the
  handshake (section 4.2). TLS versions are limited to ``tls_min``..``tls_max``.
* MAIL parameters (parsed in ``smtp_script``, REQUIRETLS per RFC 8689 section 2) are recorded
  in ``DeliveredMessage.mail_options``; the null reverse path ``<>`` is accepted (RFC 5321
  section 4.5.5). Every line both ways goes into the transcript with its TLS state.

Built on aiosmtpd: ``ScriptedSmtpSession`` subclasses ``aiosmtpd.smtp.SMTP`` where its hooks do not
reach (greeting, EHLO, STARTTLS, MAIL, RCPT, the transcript). STARTTLS uses the public
``StreamWriter.start_tls`` instead of aiosmtpd's private ``asyncio.sslproto`` wiring.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from aiosmtpd.smtp import SMTP, Envelope, Session

from conformance.world.observe import (
    DeliveredMessage,
    Direction,
    ObservationSink,
    SmtpSession,
    TlsHandshake,
    TranscriptLine,
)
from conformance.world.smtp_script import (
    LINE_LIMIT,
    MailParameterError,
    apply_tls_versions,
    encode_reply,
    parse_mail_parameters,
    reply_lines,
)
from conformance.world.spec import SmtpBehaviour

_MAX_TRANSCRIPT_LINES = 10_000  # a chatty client cannot grow a session record without bound
_CLOSE_GRACE_S = 2.0  # after a close we started, a TLS shutdown gets this long before an abort


@dataclass(frozen=True, slots=True)
class SessionConfig:
    host_name: str
    behaviour: SmtpBehaviour
    tls_context_factory: Callable[[], ssl.SSLContext] | None
    sink: ObservationSink
    session_timeout_s: float
    max_message_bytes: int


class _Hooks:
    """The aiosmtpd handler: only the DATA hook is needed, everything else is overridden."""

    def __init__(self, session: ScriptedSmtpSession) -> None:
        self._session = session

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return self._session.message_received(envelope)

    async def handle_exception(self, error: Exception) -> str:
        if isinstance(error, OSError | asyncio.IncompleteReadError):
            # The connection broke under the session (reset, TLS alert): the client's doing.
            self._session.close_session(f"error: {type(error).__name__}: {error}")
            return "421 4.4.2 Connection error"
        self._session.failures.append(error)  # a bug in the peer: stop() re-raises it
        return "451 4.3.0 Internal error in the world peer"


class _RecordingReader:
    """Stands in for the session's StreamReader so that every line the client sends lands in
    the transcript, and any byte from the client restarts the idle timer."""

    def __init__(self, reader: asyncio.StreamReader, session: ScriptedSmtpSession) -> None:
        self._reader = reader
        self._session = session

    async def readuntil(self, separator: bytes = b"\n") -> bytes:
        data = await self._reader.readuntil(separator)
        self._session.client_bytes(data, complete=True)
        return data

    async def readline(self) -> bytes:
        data = await self._reader.readline()
        self._session.client_bytes(data, complete=data.endswith(b"\n"))
        return data

    async def read(self, n: int = -1) -> bytes:
        # aiosmtpd reads with read(n) only to drain an over-long line; never read unbounded.
        data = await self._reader.read(n if 0 < n <= LINE_LIMIT else LINE_LIMIT)
        self._session.client_bytes(data, complete=False)
        return data


class ScriptedSmtpSession(SMTP):
    """One SMTP session of a peer, scripted by the peer's ``SmtpBehaviour``."""

    line_length_limit = LINE_LIMIT  # aiosmtpd sizes its StreamReader from this

    def __init__(self, cfg: SessionConfig, on_closed: Callable[[ScriptedSmtpSession], None]) -> None:
        self._cfg = cfg
        self.failures: list[BaseException] = []
        super().__init__(
            _Hooks(self),
            data_size_limit=cfg.max_message_bytes,
            enable_SMTPUTF8=True,
            hostname=cfg.host_name,
            timeout=cfg.session_timeout_s,
            loop=asyncio.get_running_loop(),
        )
        # Instance copies: aiosmtpd keeps these limits on the class, shared by every server.
        self.command_size_limit = LINE_LIMIT
        self.command_size_limits = collections.defaultdict(lambda: LINE_LIMIT)
        self._on_closed = on_closed
        self.closed: asyncio.Future[None] = self.loop.create_future()
        self._client = ""
        self._lines: list[TranscriptLine] = []
        self._delivered: list[DeliveredMessage] = []
        self._tls = False
        self._tls_version: str | None = None
        self._cipher: str | None = None
        self._sni: str | None = None
        self._greeted = False
        self._in_data = False
        self._data_bytes = 0
        self._partial = 0  # bytes of an over-long line read so far
        self._close_reason: str | None = None
        self._abort_handle: asyncio.TimerHandle | None = None
        self._started = time.monotonic()
        self._finished = False

    # -- transcript -------------------------------------------------------------------------

    def _record(self, direction: Direction, text: str) -> None:
        if len(self._lines) < _MAX_TRANSCRIPT_LINES:
            self._lines.append(TranscriptLine(direction, text, self._tls, time.monotonic()))
        elif len(self._lines) == _MAX_TRANSCRIPT_LINES:
            self._lines.append(TranscriptLine(direction, "<transcript truncated>", self._tls, time.monotonic()))

    def client_bytes(self, data: bytes, *, complete: bool) -> None:
        """Called by the reader for everything the client sent (a line or part of one)."""
        if self._finished:
            return
        self._reset_timeout()  # any byte from the client means the session is not idle
        if self._in_data:
            if complete and not self._partial and data in (b".\r\n", b".\n"):
                self._in_data = False
                self._record("c2s", f"<message {self._data_bytes} bytes>")  # "." included
                return
            self._data_bytes += len(data)
            self._partial = 0 if complete else self._partial + len(data)
            return
        if not complete:
            self._partial += len(data)
        elif self._partial:
            self._record("c2s", f"<over-long line: {self._partial + len(data)} bytes>")
            self._partial = 0
        else:
            self._record("c2s", data.rstrip(b"\r\n").decode("latin-1"))

    async def push(self, status: str | bytes) -> None:
        """Send a reply (one or more CRLF-separated lines) and record each line."""
        if not self._greeted:
            # aiosmtpd's first push is its own greeting; the scenario's greeting replaces it.
            self._greeted = True
            greeting = self._cfg.behaviour.greeting
            text = f"{self._cfg.host_name} {greeting.text}".rstrip()
            wire = encode_reply("\r\n".join(reply_lines(greeting.code, text)))
        else:
            wire = encode_reply(status) if isinstance(status, str) else status
        for line in wire.split(b"\r\n"):
            self._record("s2c", line.decode("latin-1"))
        if wire.startswith(b"354"):
            self._in_data, self._data_bytes, self._partial = True, 0, 0
        self._writer.write(wire + b"\r\n")
        await self._writer.drain()

    # -- connection life cycle --------------------------------------------------------------

    def _cb_client_connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._raw_reader = reader
        # aiosmtpd only calls readuntil/readline/read on it, which the proxy provides.
        self._reader = _RecordingReader(reader, self)  # type: ignore[assignment]
        self._writer = writer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        self._client = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        super().connection_made(transport)

    async def _handle_client(self) -> None:
        try:
            if self._cfg.behaviour.close_after_greeting:
                await self.push("")
                self.close_session("peer-closed")
                return
            await super()._handle_client()
        except ConnectionError:
            pass  # the client went away mid-reply; connection_lost records the session

    def _live_transport(self) -> asyncio.Transport | None:
        # aiosmtpd types it as BaseTransport; a stream server's transport is a Transport.
        return cast("asyncio.Transport | None", self.transport)

    def _timeout_cb(self) -> None:
        transport = self._live_transport()
        if transport is None:
            return
        self._close_reason = self._close_reason or "timeout"
        line = f"421 4.4.2 {self._cfg.host_name} Idle timeout, closing connection"
        self._record("s2c", line)
        transport.write(line.encode("ascii", "replace") + b"\r\n")
        self.close_session("timeout")

    def close_session(self, reason: str) -> None:
        """Close from our side; a TLS shutdown the client never answers ends in an abort."""
        self._close_reason = self._close_reason or reason
        transport = self._live_transport()
        if transport is not None and not transport.is_closing():
            transport.close()
            self._abort_handle = self.loop.call_later(_CLOSE_GRACE_S, transport.abort)

    def abort(self, reason: str) -> None:
        self._close_reason = self._close_reason or reason
        transport = self._live_transport()
        if transport is not None:
            transport.abort()

    def connection_lost(self, error: Exception | None) -> None:
        if self._abort_handle is not None:
            self._abort_handle.cancel()
        if self._in_data:
            self._record("c2s", f"<message {self._data_bytes} bytes, unterminated>")
        reason = self._close_reason or ("client-closed" if error is None else f"error: {error}")
        self._finish(reason)
        super().connection_lost(error)
        if not self.closed.done():
            self.closed.set_result(None)
        self._on_closed(self)

    def _finish(self, reason: str) -> None:
        if self._finished:
            return
        self._finished = True
        self._emit(
            SmtpSession(
                host=self._cfg.host_name,
                client=self._client,
                lines=tuple(self._lines),
                tls_version=self._tls_version,
                cipher=self._cipher,
                sni=self._sni,
                delivered=tuple(self._delivered),
                started=self._started,
                ended=time.monotonic(),
                close_reason=reason,
            )
        )

    def _emit(self, observation: Any) -> None:
        try:
            self._cfg.sink(observation)
        except Exception as exc:  # a broken sink must not kill the session; stop() re-raises
            self.failures.append(exc)

    def handler_task(self) -> asyncio.Task[None] | None:
        task: asyncio.Task[None] | None = self._handler_coroutine
        return task

    # -- commands ---------------------------------------------------------------------------

    # Methods, not properties: aiosmtpd's __init__ evaluates every attribute (inspect.getmembers).
    def _sess(self) -> Session:
        assert self.session is not None  # set by connection_made before any command
        return self.session

    def _env(self) -> Envelope:
        assert self.envelope is not None  # aiosmtpd keeps one from connection_made on
        return self.envelope

    def _new_envelope(self) -> None:
        """A fresh transaction, as RSET would leave it (RFC 5321 section 4.1.1.5)."""
        self.envelope = self._create_envelope()

    async def _push_reply(self, code: int, text: str) -> None:
        await self.push("\r\n".join(reply_lines(code, text)))

    async def smtp_EHLO(self, hostname: str | None) -> None:
        if not hostname:
            await self.push("501 5.5.4 Syntax: EHLO hostname")
            return
        self._new_envelope()
        self._sess().extended_smtp = True
        self._sess().host_name = hostname
        b = self._cfg.behaviour
        keywords = b.ehlo_keywords if not self._tls or b.ehlo_keywords_tls is None else b.ehlo_keywords_tls
        # STARTTLS is governed by ``starttls`` alone, and only offered before TLS (RFC 3207 s4).
        lines = [k for k in keywords if k.upper() != "STARTTLS"]
        if b.starttls and not self._tls:
            lines.append("STARTTLS")
        await self._push_reply(250, "\n".join([self._cfg.host_name, *lines]))

    async def smtp_STARTTLS(self, arg: str | None) -> None:
        if arg:
            await self.push("501 5.5.4 Syntax: STARTTLS")
            return
        b = self._cfg.behaviour
        if self._tls:
            await self.push("503 5.5.1 TLS already active")
            return
        if not b.starttls:
            await self.push("502 5.5.1 Command not recognized")
            return
        ctx = self._make_tls_context()
        if ctx is None:
            await self.push("454 4.7.0 TLS not available due to temporary reason")
            return
        await self._push_reply(b.starttls_reply.code, b.starttls_reply.text)
        if b.starttls_reply.code != 220:  # RFC 3207 section 4: only a 220 starts the handshake
            return
        await self._discard_plaintext()
        try:
            await self._writer.start_tls(ctx, ssl_handshake_timeout=self._cfg.session_timeout_s)
        except asyncio.CancelledError:
            self._handshake(ok=False, error="cancelled")
            raise
        except Exception as exc:  # whatever the client broke, the session ends here
            error = f"{type(exc).__name__}: {exc}"
            self._handshake(ok=False, error=error)
            self._close_reason = self._close_reason or f"error: TLS handshake failed: {error}"
            # start_tls already closed the TCP transport; ending the loop ends aiosmtpd's task.
            self.transport = None
            return
        self.transport = self._writer.transport
        ssl_object = self._writer.get_extra_info("ssl_object")
        self._tls = True
        if ssl_object is not None:
            self._tls_version = ssl_object.version()
            cipher = ssl_object.cipher()
            self._cipher = cipher[0] if cipher else None
        self._sess().ssl = {"version": self._tls_version, "cipher": self._cipher}
        self._handshake(ok=True, error=None)
        # RFC 3207 section 4.2: forget everything learnt from the client before TLS.
        self._sess().host_name = None
        self._sess().extended_smtp = False
        self._new_envelope()

    def _make_tls_context(self) -> ssl.SSLContext | None:
        factory = self._cfg.tls_context_factory
        if factory is None:
            return None
        try:
            ctx = factory()
            apply_tls_versions(ctx, self._cfg.behaviour.tls_min, self._cfg.behaviour.tls_max)
        except Exception as exc:  # a broken factory is a world bug, not a SUT failure
            self.failures.append(exc)
            return None
        chained = ctx.sni_callback

        def capture_sni(obj: ssl.SSLObject, name: str | None, c: ssl.SSLContext) -> int | None:
            self._sni = name
            if chained is None:
                return None
            # typeshed says str, but without SNI the name is None; pass it on unchanged.
            return chained(obj, cast(str, name), c)

        ctx.sni_callback = capture_sni
        return ctx

    async def _discard_plaintext(self) -> None:
        """RFC 3207 section 4.2 / RFC 8314 Appendix A: bytes the client sent behind STARTTLS
        in plaintext are read, recorded and dropped, never executed after the handshake."""
        # StreamReader has no public "bytes buffered" query; this length is all we peek at.
        pending = len(self._raw_reader._buffer)  # type: ignore[attr-defined]
        if pending:
            data = await self._raw_reader.readexactly(pending)  # already buffered: no wait
            for line in data.splitlines():
                self._record("c2s", line.decode("latin-1"))

    def _handshake(self, *, ok: bool, error: str | None) -> None:
        self._emit(
            TlsHandshake(
                host=self._cfg.host_name,
                sni=self._sni,
                ok=ok,
                version=self._tls_version,
                cipher=self._cipher,
                error=error,
                at=time.monotonic(),
            )
        )

    async def smtp_QUIT(self, arg: str | None) -> None:
        if not arg:
            self._close_reason = self._close_reason or "quit"
        await super().smtp_QUIT(arg)

    async def smtp_MAIL(self, arg: str | None) -> None:
        if await self.check_helo_needed():
            return
        syntax = "501 5.5.4 Syntax: MAIL FROM:<address> [parameters]"
        rest = self._strip_command_keyword("FROM:", arg or "")
        if rest is None:
            await self.push(syntax)
            return
        if self._env().mail_from is not None:
            await self.push("503 5.5.1 Error: nested MAIL command")
            return
        address: str | None
        params: str | None
        if rest.startswith("<>"):  # the null reverse path, RFC 5321 section 4.5.5
            address, params = "", rest[2:]
        else:
            address, params = self._getaddr(rest)
            if not address:
                await self.push(syntax if address == "" else "553 5.1.3 Error: malformed address")
                return
        params = params or ""
        if params.strip() and not self._sess().extended_smtp:
            await self.push(syntax)  # parameters need EHLO, RFC 5321 section 4.1.1.11
            return
        try:
            options = parse_mail_parameters(params)
        except MailParameterError as exc:
            await self.push(f"{exc.code} {exc.text}")
            return
        size = next((int(o[5:]) for o in options if o.startswith("SIZE=")), 0)
        if size > self._cfg.max_message_bytes:  # RFC 1870 section 6.1
            await self.push("552 5.3.4 Message size exceeds fixed maximum message size")
            return
        reply = self._cfg.behaviour.mail_reply
        if 200 <= reply.code < 300:
            self._env().mail_from = address
            self._env().mail_options = list(options)
        await self._push_reply(reply.code, reply.text)

    async def smtp_RCPT(self, arg: str | None) -> None:
        if await self.check_helo_needed():
            return
        if self._env().mail_from is None:
            await self.push("503 5.5.1 Error: need MAIL command")
            return
        rest = self._strip_command_keyword("TO:", arg or "")
        address, params = self._getaddr(rest) if rest else (None, None)
        if not address:
            await self.push("501 5.5.4 Syntax: RCPT TO:<address> [parameters]")
            return
        reply = self._cfg.behaviour.rcpt_reply
        if 200 <= reply.code < 300:
            # DSN parameters (NOTIFY, ORCPT) are accepted and kept, never refused.
            self._env().rcpt_tos.append(address)
            self._env().rcpt_options.extend((params or "").split())
        await self._push_reply(reply.code, reply.text)

    def message_received(self, envelope: Any) -> str:
        """The DATA hook: answer with the scripted reply, and report an accepted message at
        once, before the reply is written, so drivers can decide early."""
        reply = self._cfg.behaviour.data_reply
        if 200 <= reply.code < 300:
            message = DeliveredMessage(
                host=self._cfg.host_name,
                mail_from=envelope.mail_from or "",
                mail_options=tuple(envelope.mail_options),
                rcpt_tos=tuple(envelope.rcpt_tos),
                data=envelope.original_content or b"",
                tls=self._tls,
                tls_version=self._tls_version,
                cipher=self._cipher,
                at=time.monotonic(),
            )
            self._delivered.append(message)
            self._emit(message)
        return "\r\n".join(reply_lines(reply.code, reply.text))
