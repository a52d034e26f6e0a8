"""The world's scripted SMTP peers: the MX hosts a sending MTA (the SUT) delivers to.

A peer plays the server side of SMTP (RFC 5321 sections 3.1, 4.1.1, 4.2) with every reply the
scenario's ``SmtpBehaviour`` scripts, and reports what it saw to an ``ObservationSink``:

* STARTTLS per RFC 3207: advertised in the EHLO reply (section 4), upgraded only after a 220
  (section 4), plaintext the client pipelined behind the command is discarded, never executed
  (section 4.2; the RFC 8314 Appendix A bug class), and the session state is reset after the
  handshake (section 4.2). TLS versions are limited to ``tls_min``..``tls_max``.
* MAIL parameters: REQUIRETLS (RFC 8689 section 2, no value allowed), BODY (RFC 6152, 3030),
  SIZE (RFC 1870), SMTPUTF8 (RFC 6531 section 3.4), RET and ENVID (RFC 3461 sections 4.3, 4.4);
  they are recorded in ``DeliveredMessage.mail_options``. The null reverse path ``<>`` is
  accepted (RFC 5321 section 4.5.5).

Built on aiosmtpd: ``_ScriptedSmtp`` subclasses ``aiosmtpd.smtp.SMTP`` where its hooks do not
reach (greeting, EHLO, STARTTLS, MAIL, RCPT, the transcript). STARTTLS uses the public
``StreamWriter.start_tls`` instead of aiosmtpd's private ``asyncio.sslproto`` wiring.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import re
import ssl
import time
import warnings
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
from conformance.world.spec import SmtpBehaviour, TlsVersionName

LINE_LIMIT = 4096  # longest command line the peer reads; longer ones are answered 500
_MAX_TRANSCRIPT_LINES = 10_000  # a chatty client cannot grow a session record without bound
_CLOSE_GRACE_S = 2.0  # after a close we started, a TLS shutdown gets this long before an abort
_STOP_TIMEOUT_S = 5.0  # how long stop() waits for sessions to wind down

_TLS_VERSIONS: dict[str, ssl.TLSVersion] = {
    "TLSv1": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}


class PeerError(Exception):
    """Base of the errors of the world's protocol peers (SMTP peer, mailbox, MITM)."""


class PeerNotRunning(PeerError):
    """The peer was asked for its address (or started twice) in the wrong state."""


class PeerFailure(PeerError):
    """Something failed inside the peer while it served a session (re-raised by ``stop()``)."""


class MailParameterError(PeerError):
    """A MAIL FROM parameter the peer refuses; carries the SMTP reply to send."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(f"{code} {text}")
        self.code = code
        self.text = text


def reply_lines(code: int, text: str) -> list[str]:
    """Format a reply as lines: ``code-text`` for all but the last, ``code text`` last
    (RFC 5321 section 4.2.1); ``text`` may hold several lines separated by newlines."""
    texts = [t.rstrip("\r") for t in text.split("\n")]
    out = []
    for i, t in enumerate(texts):
        sep = "-" if i < len(texts) - 1 else " "
        out.append(f"{code}{sep}{t}" if t or sep == "-" else f"{code}")
    return out


_BODY_VALUES = frozenset({"7BIT", "8BITMIME", "BINARYMIME"})
_RET_VALUES = frozenset({"FULL", "HDRS"})
_KEYWORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*\Z")  # esmtp-keyword, RFC 5321 section 4.1.2
_XTEXT = re.compile(r"[!-<>-~]+\Z")  # RFC 3461 section 4: printable ASCII except "=" and SP


def parse_mail_parameters(text: str) -> tuple[str, ...]:
    """Parse the parameters after ``MAIL FROM:<path>`` into normalised ``KEY`` / ``KEY=VALUE``
    strings (keywords and enumerated values upper case; ENVID kept as sent).

    Raises ``MailParameterError`` with the reply to send for anything the peer refuses."""
    out: list[str] = []
    seen: set[str] = set()
    for token in text.split():
        raw_key, eq, value = token.partition("=")
        if not _KEYWORD.match(raw_key):
            raise MailParameterError(501, "5.5.4 Malformed MAIL parameter")
        key = raw_key.upper()
        if key in seen:
            raise MailParameterError(501, f"5.5.4 Duplicate MAIL parameter {key}")
        seen.add(key)
        if key in ("REQUIRETLS", "SMTPUTF8"):
            # RFC 8689 section 2 (requiretls-param) and RFC 6531 section 3.4 take no value.
            if eq:
                raise MailParameterError(501, f"5.5.4 {key} takes no value")
            out.append(key)
            continue
        if key not in ("BODY", "SIZE", "RET", "ENVID"):
            raise MailParameterError(555, f"5.5.4 MAIL parameter {key} not recognised")
        if not value:
            raise MailParameterError(501, f"5.5.4 {key} needs a value")
        if key == "BODY" and value.upper() in _BODY_VALUES:
            out.append(f"BODY={value.upper()}")
        elif key == "RET" and value.upper() in _RET_VALUES:  # RFC 3461 section 4.3
            out.append(f"RET={value.upper()}")
        elif key == "SIZE" and value.isascii() and value.isdigit() and len(value) <= 20:
            out.append(f"SIZE={int(value)}")  # RFC 1870 section 6: size-value is digits
        elif key == "ENVID" and len(value) <= 100 and _XTEXT.match(value):
            out.append(f"ENVID={value}")  # RFC 3461 section 4.4: xtext, at most 100 chars
        else:
            raise MailParameterError(501, f"5.5.4 Invalid value for {key}")
    return tuple(out)


def apply_tls_versions(ctx: ssl.SSLContext, tls_min: TlsVersionName, tls_max: TlsVersionName) -> None:
    """Limit a server context to the scripted protocol versions."""
    with warnings.catch_warnings():
        # TLS 1.0/1.1 are deprecated (RFC 8996); the world offers them on purpose so that a
        # scenario can check the SUT refuses them.
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = _TLS_VERSIONS[tls_min]
        ctx.maximum_version = _TLS_VERSIONS[tls_max]
    if tls_min in ("TLSv1", "TLSv1.1"):
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # OpenSSL 3 refuses them at its default level


def _encode(text: str) -> bytes:
    """Reply text to bytes: client bytes aiosmtpd decoded with surrogateescape go back as
    they came; any other unencodable character (scenario text) is replaced, never fatal."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace")


@dataclass(frozen=True, slots=True)
class _PeerConfig:
    host_name: str
    behaviour: SmtpBehaviour
    tls_context_factory: Callable[[], ssl.SSLContext] | None
    sink: ObservationSink
    session_timeout_s: float
    max_message_bytes: int


class _Hooks:
    """The aiosmtpd handler: only the DATA hook is needed, everything else is overridden."""

    def __init__(self, session: _ScriptedSmtp) -> None:
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

    def __init__(self, reader: asyncio.StreamReader, session: _ScriptedSmtp) -> None:
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


class _ScriptedSmtp(SMTP):
    """One SMTP session of a peer, scripted by the peer's ``SmtpBehaviour``."""

    line_length_limit = LINE_LIMIT  # aiosmtpd sizes its StreamReader from this

    def __init__(self, cfg: _PeerConfig, on_closed: Callable[[_ScriptedSmtp], None]) -> None:
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
            wire = _encode("\r\n".join(reply_lines(greeting.code, text)))
        else:
            wire = _encode(status) if isinstance(status, str) else status
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


class SmtpPeer:
    """A scripted SMTP server (one staged MX host), listening on one address."""

    def __init__(
        self,
        host_name: str,
        behaviour: SmtpBehaviour,
        tls_context_factory: Callable[[], ssl.SSLContext] | None,
        sink: ObservationSink,
        *,
        session_timeout_s: float = 30.0,
        max_message_bytes: int = 10 * 2**20,
    ) -> None:
        self._cfg = _PeerConfig(host_name, behaviour, tls_context_factory, sink, session_timeout_s, max_message_bytes)
        self._server: asyncio.Server | None = None
        self._sessions: set[_ScriptedSmtp] = set()
        self._failures: list[BaseException] = []

    @property
    def host_name(self) -> str:
        return self._cfg.host_name

    async def start(self, address: str, port: int) -> None:
        """Listen on ``address``:``port`` (0 for an ephemeral port)."""
        if self._server is not None:
            raise PeerNotRunning(f"{self._cfg.host_name}: already started")
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._new_session, host=address, port=port)

    @property
    def address(self) -> tuple[str, int]:
        if self._server is None or not self._server.sockets:
            raise PeerNotRunning(f"{self._cfg.host_name}: not started")
        name = self._server.sockets[0].getsockname()
        return str(name[0]), int(name[1])

    def _new_session(self) -> _ScriptedSmtp:
        session = _ScriptedSmtp(self._cfg, self._session_closed)
        self._sessions.add(session)
        return session

    def _session_closed(self, session: _ScriptedSmtp) -> None:
        self._sessions.discard(session)
        self._failures.extend(session.failures)

    async def stop(self) -> None:
        """Stop listening, abort open sessions (each is still recorded, "peer-closed"), and
        re-raise as ``PeerFailure`` anything that failed inside the peer."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        sessions = list(self._sessions)
        for session in sessions:
            session.abort("peer-closed")
        waits: list[asyncio.Future[Any]] = [s.closed for s in sessions]
        waits += [t for s in sessions if (t := s.handler_task()) is not None]
        if waits:
            await asyncio.wait(waits, timeout=_STOP_TIMEOUT_S)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(server.wait_closed(), _STOP_TIMEOUT_S)
        for session in sessions:
            self._failures.extend(f for f in session.failures if f not in self._failures)
        if self._failures:
            first = self._failures[0]
            raise PeerFailure(f"{self._cfg.host_name}: {type(first).__name__}: {first}") from first
