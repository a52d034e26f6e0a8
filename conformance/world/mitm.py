"""The world's STARTTLS man in the middle: the active network attacker of the transport RFCs.

It sits at a staged MX host's published address, between the SUT (the SMTP client) and a
real peer (``upstream``). Until TLS starts it relays SMTP line by line and may tamper:

* ``strip-starttls``: deletes STARTTLS from EHLO replies, the downgrade RFC 3207 section 6
  describes and RFC 8461 section 1 / RFC 8689 section 1 defend against; a STARTTLS the client
  sends anyway is refused with 502 by the attacker itself.
* ``starttls-error``: answers STARTTLS with 454 itself (RFC 3207 section 4 allows a server to
  say so; an attacker can too).
* ``inject-commands`` / ``inject-replies``: plaintext appended to the client's STARTTLS line or
  to the server's 220, the command/response injection of RFC 8314 Appendix A (CERT VU#555316,
  CVE-2011-0411) which RFC 3207 section 4.2 requires both ends to discard.

Once the server answers STARTTLS with 220 the relay becomes a plain byte pipe: TLS stays end
to end between the client and the upstream peer. Every tampering is reported as a
``MitmAction``; every read is bounded in size and every wait by ``timeout_s``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Sequence
from enum import Enum

from conformance.world.observe import MitmAction, ObservationSink
from conformance.world.smtp_script import LINE_LIMIT, PeerError, PeerNotRunning
from conformance.world.spec import MitmMode, MitmSpec

_MAX_REPLY_LINES = 256  # a multiline reply longer than this is hostile, not SMTP
_PIPE_CHUNK = 65536
_MAX_PENDING = 1000  # commands in flight without a reply; more is a flood, not pipelining
_STOP_TIMEOUT_S = 5.0

REFUSE_STARTTLS = b"502 5.5.1 Command not recognized\r\n"
STARTTLS_ERROR = b"454 4.7.0 TLS not available due to temporary reason\r\n"


class MitmError(PeerError):
    """A relay could not go on (over-long line, idle timeout); it ends that connection."""


class _Outcome(Enum):
    LINES = "lines"  # stay in the line-aware plaintext relay
    TLS = "tls"  # the server said 220 to STARTTLS: relay bytes from now on


def reply_is_complete(line: bytes) -> bool:
    """Whether ``line`` (CRLF stripped) ends a reply: ``ddd-`` continues a multiline reply,
    anything else ends it (RFC 5321 section 4.2.1), malformed lines included."""
    return not (len(line) >= 4 and line[:3].isdigit() and line[3:4] == b"-")


def strip_starttls(lines: Sequence[bytes]) -> tuple[tuple[bytes, ...], int]:
    """Remove the STARTTLS keyword line from an EHLO reply (lines without CRLF), keeping it
    well formed: every line but the last ``250-``, the last ``250 ``. Returns the new lines
    and how many were removed. The first line (the server's name) is never a keyword."""
    if not lines:
        return (), 0
    kept = [lines[0]]
    for line in lines[1:]:
        words = line[4:].split()
        if words and words[0].upper() == b"STARTTLS":
            continue
        kept.append(line)
    removed = len(lines) - len(kept)
    if not removed:
        return tuple(lines), 0
    fixed = []
    for i, line in enumerate(kept):
        text = line[4:]
        sep = b"-" if i < len(kept) - 1 else b" "
        fixed.append(line[:3] + sep + text if text or sep == b"-" else line[:3])
    return tuple(fixed), removed


def wire_text(text: str) -> bytes:
    """Scenario text to wire bytes: any line ending becomes CRLF (YAML blocks give bare LF).
    An attacker sends what it is told, so even lone surrogates pass (as their UTF-8 form)."""
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8", "surrogatepass")


class _Relay:
    """One client connection and its upstream connection."""

    def __init__(
        self,
        mitm: StartTlsMitm,
        client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        server: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    ) -> None:
        self._mitm = mitm
        self._mode = mitm.spec.mode
        self._cr, self._cw = client
        self._sr, self._sw = server
        # Commands forwarded upstream, oldest first, each with a future for its reply code.
        self._pending: collections.deque[tuple[str, asyncio.Future[int]]] = collections.deque()
        self._greeted = False
        self._timeout = mitm.timeout_s

    async def run(self) -> None:
        tasks = {
            asyncio.create_task(self._client_to_server()),
            asyncio.create_task(self._server_to_client()),
        }
        try:
            pending = tasks
            while pending:
                # A direction that ends at EOF lets the other finish; an error ends both.
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_EXCEPTION)
                for task in done:
                    error = task.exception()
                    if error is not None:
                        raise error
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    # -- reading and writing, bounded ------------------------------------------------------

    async def _line(self, reader: asyncio.StreamReader, side: str) -> bytes:
        """One line including its LF; b"" at EOF (a partial last line is returned as is)."""
        try:
            async with asyncio.timeout(self._timeout):
                return await reader.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:
            return exc.partial
        except asyncio.LimitOverrunError as exc:
            raise MitmError(f"over-long line from the {side}") from exc
        except TimeoutError as exc:
            raise MitmError(f"idle timeout waiting for the {side}") from exc

    async def _send(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(data)
        try:
            async with asyncio.timeout(self._timeout):
                await writer.drain()
        except TimeoutError as exc:
            raise MitmError("peer does not read") from exc

    async def _await_code(self, future: asyncio.Future[int]) -> int:
        try:
            async with asyncio.timeout(self._timeout):
                return await asyncio.shield(future)
        except TimeoutError as exc:
            raise MitmError("no reply from the server") from exc

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Relay bytes untouched until EOF (the TLS records of the end-to-end session)."""
        while True:
            try:
                async with asyncio.timeout(self._timeout):
                    data = await reader.read(_PIPE_CHUNK)
            except TimeoutError as exc:
                raise MitmError("idle timeout in the TLS pipe") from exc
            if not data:
                _half_close(writer)
                return
            await self._send(writer, data)

    def _forward(self, verb: str) -> asyncio.Future[int]:
        if len(self._pending) >= _MAX_PENDING:
            raise MitmError("too many commands without replies")
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._pending.append((verb, future))
        return future

    async def _replies_flushed(self) -> None:
        """Wait until every forwarded command has its reply, so that a reply the attacker
        makes up itself reaches the client in order."""
        if self._pending:
            await self._await_code(self._pending[-1][1])

    # -- client to server ------------------------------------------------------------------

    async def _client_to_server(self) -> None:
        while True:
            line = await self._line(self._cr, "client")
            if not line:
                _half_close(self._sw)
                return
            verb = line.split(b" ", 1)[0].strip().upper().decode("latin-1")
            if verb == "STARTTLS":
                if await self._client_starttls(line) is _Outcome.TLS:
                    await self._pipe(self._cr, self._sw)
                    return
                continue
            future = self._forward(verb)
            await self._send(self._sw, line)
            if verb == "DATA" and await self._await_code(future) == 354:
                await self._relay_message()
            elif verb == "BDAT":
                await self._relay_chunk(line)

    async def _client_starttls(self, line: bytes) -> _Outcome:
        spec = self._mitm.spec
        if self._mode in (MitmMode.STRIP_STARTTLS, MitmMode.STARTTLS_ERROR):
            await self._replies_flushed()
            strip = self._mode is MitmMode.STRIP_STARTTLS
            await self._send(self._cw, REFUSE_STARTTLS if strip else STARTTLS_ERROR)
            action = "refuse-starttls" if strip else "starttls-error"
            self._mitm.act(action, "answered the client's STARTTLS itself, not forwarded")
            return _Outcome.LINES
        future = self._forward("STARTTLS")
        if self._mode is MitmMode.INJECT_COMMANDS:
            injected = wire_text(spec.inject)
            # Sent in one write so the server finds it already buffered behind STARTTLS.
            await self._send(self._sw, line + injected)
            self._mitm.act("inject-before-tls", f"appended to STARTTLS: {injected!r}")
        else:
            await self._send(self._sw, line)
        return _Outcome.TLS if await self._await_code(future) == 220 else _Outcome.LINES

    async def _relay_message(self) -> None:
        """Forward message lines after a 354 untouched, up to the lone "." (RFC 5321 s4.1.1.4);
        a "STARTTLS" in a message body is text, not a command."""
        future = self._forward("DATA-END")
        while True:
            line = await self._line(self._cr, "client")
            if not line:
                future.cancel()
                raise MitmError("client closed inside DATA")
            await self._send(self._sw, line)
            if line in (b".\r\n", b".\n"):
                return

    async def _relay_chunk(self, line: bytes) -> None:
        """BDAT n (RFC 3030): the next n bytes are message data, relayed unread."""
        words = line.split()
        if len(words) < 2 or not words[1].isdigit():
            return
        remaining = int(words[1])
        while remaining:
            try:
                async with asyncio.timeout(self._timeout):
                    data = await self._cr.read(min(remaining, _PIPE_CHUNK))
            except TimeoutError as exc:
                raise MitmError("idle timeout inside BDAT") from exc
            if not data:
                raise MitmError("client closed inside BDAT")
            remaining -= len(data)
            await self._send(self._sw, data)

    # -- server to client ------------------------------------------------------------------

    async def _server_to_client(self) -> None:
        try:
            while True:
                reply = await self._reply()
                if not reply:
                    _half_close(self._cw)
                    return
                code = int(reply[0][:3]) if reply[0][:3].isdigit() else 0
                verb, future = ("", None)
                if self._greeted and self._pending:
                    verb, future = self._pending.popleft()
                self._greeted = True
                wire = b"".join(reply)
                if verb == "EHLO" and self._mode is MitmMode.STRIP_STARTTLS:
                    wire = self._strip(reply)
                tls = verb == "STARTTLS" and code == 220
                if tls and self._mode is MitmMode.INJECT_REPLIES:
                    injected = wire_text(self._mitm.spec.inject)
                    wire += injected
                    self._mitm.act("inject-after-starttls-reply", f"appended: {injected!r}")
                await self._send(self._cw, wire)
                if future is not None and not future.done():
                    future.set_result(code)
                if tls:
                    self._mitm.act("tls-passthrough", "server accepted STARTTLS; relaying bytes")
                    await self._pipe(self._sr, self._cw)
                    return
        finally:
            # Nothing more will answer the commands still waiting: release their waiters.
            for _, future in self._pending:
                if not future.done():
                    future.set_result(0)

    async def _reply(self) -> list[bytes]:
        lines: list[bytes] = []
        while len(lines) < _MAX_REPLY_LINES:
            line = await self._line(self._sr, "server")
            if not line:
                return lines
            lines.append(line)
            if reply_is_complete(line.rstrip(b"\r\n")):
                return lines
        raise MitmError("reply from the server has too many lines")

    def _strip(self, reply: list[bytes]) -> bytes:
        lines, removed = strip_starttls([line.rstrip(b"\r\n") for line in reply])
        if not removed:
            return b"".join(reply)
        self._mitm.act("strip-starttls", "removed STARTTLS from the EHLO reply")
        return b"".join(line + b"\r\n" for line in lines)


def _half_close(writer: asyncio.StreamWriter) -> None:
    if writer.can_write_eof() and not writer.is_closing():
        with contextlib.suppress(OSError):
            writer.write_eof()


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError, TimeoutError):
        await asyncio.wait_for(writer.wait_closed(), 1.0)


class StartTlsMitm:
    """A man in the middle at one address, relaying every client to ``upstream``."""

    def __init__(
        self,
        host_name: str,
        spec: MitmSpec,
        upstream: tuple[str, int],
        sink: ObservationSink,
        *,
        timeout_s: float = 30.0,
    ) -> None:
        self.host_name = host_name
        self.spec = spec
        self.upstream = upstream
        self.timeout_s = timeout_s
        self._sink = sink
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def act(self, action: str, detail: str) -> None:
        self._sink(MitmAction(self.host_name, action, detail, time.monotonic()))

    async def start(self, address: str, port: int) -> None:
        if self._server is not None:
            raise PeerNotRunning(f"{self.host_name}: already started")
        self._server = await asyncio.start_server(self._on_client, host=address, port=port, limit=LINE_LIMIT)

    @property
    def address(self) -> tuple[str, int]:
        if self._server is None or not self._server.sockets:
            raise PeerNotRunning(f"{self.host_name}: not started")
        name = self._server.sockets[0].getsockname()
        return str(name[0]), int(name[1])

    async def stop(self) -> None:
        """Stop listening and cut every relay (both of its connections are closed)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=_STOP_TIMEOUT_S)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(server.wait_closed(), _STOP_TIMEOUT_S)

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None  # a start_server callback always runs in a task
        self._tasks.add(task)
        peer = writer.get_extra_info("peername")
        client = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        upstream = f"{self.upstream[0]}:{self.upstream[1]}"
        server_writer: asyncio.StreamWriter | None = None
        reason = "closed"
        try:
            try:
                async with asyncio.timeout(self.timeout_s):
                    server_reader, server_writer = await asyncio.open_connection(*self.upstream, limit=LINE_LIMIT)
            except (OSError, TimeoutError) as exc:
                self.act("upstream-unreachable", f"{upstream}: {type(exc).__name__}: {exc}")
                reason = "upstream unreachable"
                return
            self.act("connect", f"client {client} relayed to {upstream} ({self.spec.mode})")
            await _Relay(self, (reader, writer), (server_reader, server_writer)).run()
        except MitmError as exc:
            reason = f"error: {exc}"
        except OSError as exc:
            reason = f"error: {type(exc).__name__}: {exc}"
        except asyncio.CancelledError:
            # Only stop() cancels a relay. Ending normally instead of re-raising: asyncio 3.11's
            # start_server callback calls task.exception() on a cancelled task and logs that.
            reason = "stopped"
        finally:
            self.act("close", f"client {client}: {reason}")
            await _close(writer)
            if server_writer is not None:
                await _close(server_writer)
            self._tasks.discard(task)
