"""The HTTPS listener of the report receiver: h11 over asyncio TLS (RFC 8460 section 5.4).

Moves bytes between the network and the sans-IO :class:`~reference_impl.tlsrpt.receiver_http.ReportEndpoint`
and stores what it accepts. A report sender may be broken or hostile, so every connection is
bounded: the TLS handshake and each request (head and body) have a deadline, after which the
client gets 408 and the connection is closed; the body is counted against the endpoint's cap
while it is read (413, section 5.2), whatever the framing (Content-Length or chunked); a
request head above 16 KiB is refused by h11 (431). A slow or hung client costs one task and
never delays another. Keep-alive is optional; without it every response says
``Connection: close``.

After an early answer (a 413, 415, 405 ... sent before the body was read) the unread body is
drained for a short while before closing: closing a socket with unread data sends a TCP
reset, which can destroy the answer before the client reads it.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import logging
import ssl

import h11

from reference_impl.tlsrpt.receiver_http import HttpDecision, HttpReply, HttpRequest, ReportEndpoint
from reference_impl.tlsrpt.receiver_store import ReportStore

__all__ = ["MAX_CONNECTIONS", "MAX_HEADER_BYTES", "HttpsReportServer"]

log = logging.getLogger(__name__)

MAX_HEADER_BYTES = 16 * 1024
READ_CHUNK = 64 * 1024
MAX_CONNECTIONS = 128
"""Connections served at once; more are dropped at accept (section 7: flooding)."""
LINGER_MAX_S = 1.0
LINGER_IDLE_S = 0.05
LINGER_MAX_BYTES = 16 * 1024 * 1024
CLOSE_TIMEOUT_S = 2.0
_LOGGED_STATUSES = frozenset({400, 413, 415})  # refusals of a report worth a line in the store's log


class _ClientGone(Exception):
    """The client closed or reset the connection."""


def _reason(status: int) -> bytes:
    try:
        return http.HTTPStatus(status).phrase.encode("ascii")
    except ValueError:
        return b""


def _raw_reply(status: int) -> bytes:
    """An error response written outside h11's state machine (h11 cannot answer a request
    whose head never arrived whole)."""
    text = f"{status} {_reason(status).decode('ascii')}\n".encode("ascii")
    head = f"HTTP/1.1 {status} {_reason(status).decode('ascii')}\r\ncontent-type: text/plain; charset=utf-8\r\n"
    head += f"content-length: {len(text)}\r\nconnection: close\r\n\r\n"
    return head.encode("ascii") + text


class _Connection:
    """One client connection: requests in sequence, each under its own deadline."""

    def __init__(self, server: HttpsReportServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._server = server
        self._endpoint = server.endpoint
        self._reader = reader
        self._writer = writer
        self._conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER_BYTES)
        self._received = 0  # bytes of the current request cycle
        self._wants_body = False
        self._responding = False  # a response has started: no 408 may follow it

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            deadline = loop.time() + self._server.request_timeout_s
            self._received = 0
            self._responding = False
            self._wants_body = False
            try:
                async with asyncio.timeout_at(deadline):
                    body_read = await self._one_request()
            except TimeoutError:
                # A slowloris or a hung client: 408 if it started a request, then close.
                if self._received and not self._responding:
                    with contextlib.suppress(_ClientGone):
                        await self._write(_raw_reply(408))
                return
            except h11.RemoteProtocolError as exc:
                with contextlib.suppress(_ClientGone):
                    await self._write(_raw_reply(exc.error_status_hint))
                    await self._linger()
                return
            except _ClientGone:
                return
            if not body_read:
                await self._linger()
                return
            conn = self._conn
            if not (self._server.keep_alive and conn.our_state is h11.DONE and conn.their_state is h11.DONE):
                return
            conn.start_next_cycle()

    async def _one_request(self) -> bool:
        """Serve one request; True when the whole request was read."""
        event = await self._next_event()
        if not isinstance(event, h11.Request):
            raise _ClientGone()  # closed between requests, or paused after a close
        method = event.method.decode("ascii", "replace")
        target = event.target.decode("latin-1")
        headers = tuple((name.decode("latin-1"), value.decode("latin-1")) for name, value in event.headers)
        early = self._endpoint.check_head(method, target, headers)
        if early is not None:
            await self._respond(early.reply, method)
            return False
        body = bytearray()
        limit = self._endpoint.body_limit
        self._wants_body = True
        while True:
            event = await self._next_event()
            if isinstance(event, h11.Data):
                body += event.data
                if limit is not None and len(body) > limit:
                    # Section 5.2: counted while reading, so a chunked flood stops here.
                    decision = self._endpoint.decide(HttpRequest(method, target, headers, bytes(body)))
                    await self._respond(decision.reply, method)
                    return False
            elif isinstance(event, h11.EndOfMessage):
                break
            else:
                raise _ClientGone()
        self._wants_body = False
        decision = self._endpoint.decide(HttpRequest(method, target, headers, bytes(body)))
        await self._respond(await self._server.settle(decision), method)
        return True

    async def _next_event(self) -> h11.Event | type[h11.PAUSED]:
        while True:
            event = self._conn.next_event()
            if isinstance(event, h11.Event) or event is h11.PAUSED:
                return event
            if self._wants_body and self._conn.they_are_waiting_for_100_continue:
                await self._write(self._conn.send(h11.InformationalResponse(status_code=100, headers=[])))
            try:
                data = await self._reader.read(READ_CHUNK)
            except OSError as exc:
                raise _ClientGone() from exc
            self._received += len(data)
            self._conn.receive_data(data)

    async def _respond(self, reply: HttpReply, method: str) -> None:
        self._responding = True
        conn = self._conn
        headers = [(name, value) for name, value in reply.headers]
        headers.append(("content-length", str(len(reply.body))))
        if not self._server.keep_alive:
            headers.append(("connection", "close"))
        out = conn.send(h11.Response(status_code=reply.status, headers=headers, reason=_reason(reply.status)))
        if reply.body and method != "HEAD":
            out += conn.send(h11.Data(data=reply.body))
        out += conn.send(h11.EndOfMessage())
        await self._write(out)

    async def _write(self, data: bytes) -> None:
        self._writer.write(data)
        try:
            async with asyncio.timeout(self._server.request_timeout_s):
                await self._writer.drain()
        except (TimeoutError, OSError) as exc:
            raise _ClientGone() from exc

    async def _linger(self) -> None:
        """Drain what the client still sends, briefly, so that closing sends no reset."""
        loop = asyncio.get_running_loop()
        end = loop.time() + LINGER_MAX_S
        drained = 0
        while drained < LINGER_MAX_BYTES:
            remaining = end - loop.time()
            if remaining <= 0:
                return
            try:
                async with asyncio.timeout(min(LINGER_IDLE_S, remaining)):
                    data = await self._reader.read(READ_CHUNK)
            except (TimeoutError, OSError):
                return
            if not data:
                return
            drained += len(data)


class HttpsReportServer:
    """Serves a :class:`ReportEndpoint` over HTTPS and stores what it accepts."""

    def __init__(
        self,
        endpoint: ReportEndpoint,
        store: ReportStore,
        *,
        tls: ssl.SSLContext,
        request_timeout_s: float = 10.0,
        keep_alive: bool = False,
    ) -> None:
        if request_timeout_s <= 0:
            raise ValueError("request_timeout_s must be positive")
        self.endpoint = endpoint
        self.store = store
        self.request_timeout_s = request_timeout_s
        self.keep_alive = keep_alive
        self.errors: list[BaseException] = []
        self._tls = tls
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False

    async def start(self, host: str, port: int) -> None:
        if self._server is not None:
            raise RuntimeError("the HTTPS report server is already started")
        self._closing = False
        self._server = await asyncio.start_server(
            self._accept, host, port, ssl=self._tls, ssl_handshake_timeout=self.request_timeout_s
        )

    async def stop(self) -> None:
        """Stop listening, drop every open connection and wait until they are gone."""
        self._closing = True
        server, self._server = self._server, None
        if server is not None:
            server.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if server is not None:
            await server.wait_closed()

    @property
    def address(self) -> tuple[str, int]:
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the HTTPS report server is not started")
        host, port = self._server.sockets[0].getsockname()[:2]
        return str(host), int(port)

    async def settle(self, decision: HttpDecision) -> HttpReply:
        """Store an accepted report and say how that went; log a refused one."""
        accepted = decision.accepted
        if accepted is None:
            if decision.reply.status in _LOGGED_STATUSES or decision.reply.status >= 500:
                with contextlib.suppress(OSError):  # the log is best effort; the answer is not
                    await asyncio.to_thread(
                        self.store.record, "https", "refused", f"{decision.reply.status}: {decision.reply.reason}"
                    )
            return decision.reply
        try:
            _, duplicate = await asyncio.to_thread(
                self.store.save,
                accepted.report,
                transport="https",
                body=accepted.body,
                findings=accepted.findings,
                content_type=accepted.content_type,
            )
        except OSError:
            # An operational failure (disk full), not a bug: the sender retries (section 5.5).
            log.exception("could not store a report")
            return self.endpoint.store_failed_reply()
        return self.endpoint.stored_reply(duplicate=duplicate) if duplicate else decision.reply

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._closing or len(self._tasks) >= MAX_CONNECTIONS:
            writer.transport.abort()
            return
        task = asyncio.get_running_loop().create_task(self._serve(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await _Connection(self, reader, writer).serve()
        except asyncio.CancelledError:
            writer.transport.abort()
            raise
        except Exception as exc:  # a bug of ours: kept for check_errors, the client is dropped
            self.errors.append(exc)
            writer.transport.abort()
            return
        await self._close(writer)

    @staticmethod
    async def _close(writer: asyncio.StreamWriter) -> None:
        writer.close()
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await writer.wait_closed()
        except (TimeoutError, OSError):
            writer.transport.abort()
