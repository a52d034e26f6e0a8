"""One bounded HTTP/1.1 request/response over an asyncio stream, framed by h11.

The world's HTTPS peers (the MTA-STS policy hosts of RFC 8461 section 3.3 and the TLSRPT
collector of RFC 8460 section 5.4) face the system under test, which may be hostile or hung.
This module is their HTTP layer: h11 parses and frames (RFC 9112), and this adapter adds
the bounds: a header size cap, a body cap decided per route, a deadline on every read and
every write, and scripted misbehaviour (a body sent a byte at a time, a TCP reset). Every
connection carries one exchange and is then closed (``Connection: close``), which keeps
each observation tied to one connection and one TLS handshake.

Nothing here raises to the caller except this module's ``HttpExchangeError`` family.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import socket
import struct
from dataclasses import dataclass

import h11

MAX_HEADER_BYTES = 16 * 1024
"""Cap on the request line plus headers; h11 answers 431 above it."""

READ_CHUNK = 64 * 1024
"""The most bytes one read from the network may return."""

LINGER_MAX_S = 1.0
LINGER_IDLE_S = 0.05
LINGER_MAX_BYTES = 16 * 1024 * 1024
"""After answering a request whose body was not read (413, 400, 408), unread bytes are
drained before closing, because closing a socket with unread data sends a TCP RST, which can
destroy the response before the client reads it. The drain stops at EOF, after the client
has been quiet for LINGER_IDLE_S (a client reading to EOF must not wait on us), or at the
caps. TLS gives no half-close to signal the end first, so the idle window stands in."""


class HttpExchangeError(Exception):
    """Base of the errors of one exchange; the HTTPS server handles every one of them."""


class RequestRejected(HttpExchangeError):
    """The client sent something the server answers with an error status (remote error)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status}: {reason}")
        self.status = status
        self.reason = reason


class RequestTimedOut(RequestRejected):
    """The connection's deadline passed before the request was complete (slowloris)."""

    def __init__(self) -> None:
        super().__init__(408, "request not complete before the connection deadline")


class BodyTooLarge(RequestRejected):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than {limit} bytes")
        self.limit = limit


class ClientGone(HttpExchangeError):
    """The client closed or reset the connection before the exchange was complete."""


@dataclass(frozen=True, slots=True)
class RequestHead:
    method: str
    target: str
    headers: tuple[tuple[str, str], ...]  # names lower case (h11 does that), in arrival order

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (lower case), or None."""
        for key, value in self.headers:
            if key == name:
                return value
        return None


def _text(raw: bytes) -> str:
    # Header bytes from the client are kept lossless; latin-1 maps every byte to one char.
    return raw.decode("latin-1")


def reason_phrase(status: int) -> bytes:
    try:
        return http.HTTPStatus(status).phrase.encode("ascii")
    except ValueError:
        return b""


class Exchange:
    """The server side of one request/response on one connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, io_timeout_s: float) -> None:
        self._reader = reader
        self._writer = writer
        self._io_timeout_s = io_timeout_s
        self._conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER_BYTES)
        self._eof = False
        self._request_complete = False
        self._request: RequestHead | None = None

    # -- reading -------------------------------------------------------------------------

    async def _read(self) -> bytes:
        try:
            data = await self._reader.read(READ_CHUNK)
        except OSError as exc:  # reset, TLS alert or bad record: the client is gone
            raise ClientGone(str(exc) or type(exc).__name__) from exc
        if not data:
            self._eof = True
        return data

    async def _next_event(self) -> h11.Event | None:
        """The next h11 event, reading as needed; None stands for h11's PAUSED."""
        while True:
            try:
                event = self._conn.next_event()
            except h11.RemoteProtocolError as exc:
                if self._eof:
                    raise ClientGone("closed in the middle of the request") from exc
                raise RequestRejected(exc.error_status_hint, str(exc)) from exc
            if isinstance(event, h11.Event):
                return event
            if event is h11.PAUSED:
                return None
            if self._conn.they_are_waiting_for_100_continue:
                # Only reached from read_body, i.e. once the route has accepted the head.
                informational = h11.InformationalResponse(status_code=100, headers=[])
                await self._write(self._conn.send(informational))
            self._conn.receive_data(await self._read())

    async def read_head(self, deadline: float) -> RequestHead:
        """The request line and headers, by the loop-time ``deadline``."""
        try:
            async with asyncio.timeout_at(deadline):
                event = await self._next_event()
        except TimeoutError:
            raise RequestTimedOut() from None
        if isinstance(event, h11.Request):
            # h11 caps only a head still incomplete; one that arrived whole in a single read
            # is measured here, so the cap holds whatever the chunking.
            size = len(event.method) + len(event.target) + sum(len(k) + len(v) + 4 for k, v in event.headers)
            if size > MAX_HEADER_BYTES:
                raise RequestRejected(431, f"request head larger than {MAX_HEADER_BYTES} bytes")
            self._request = RequestHead(
                method=_text(event.method),
                target=_text(event.target),
                headers=tuple((_text(k), _text(v)) for k, v in event.headers),
            )
            return self._request
        # ConnectionClosed (or PAUSED, which cannot come first): nothing usable arrived.
        raise ClientGone("closed before sending a request")

    async def read_body(self, limit: int, deadline: float) -> bytes:
        """The whole request body, at most ``limit`` bytes, by the loop-time ``deadline``."""
        declared = self._declared_length()
        if declared is not None and declared > limit:
            # Refuse before reading (and before any 100 Continue): the client learns at once.
            raise BodyTooLarge(limit)
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout_at(deadline):
                while True:
                    event = await self._next_event()
                    if isinstance(event, h11.Data):
                        size += len(event.data)
                        if size > limit:  # chunked bodies announce no length
                            raise BodyTooLarge(limit)
                        chunks.append(bytes(event.data))
                    elif isinstance(event, h11.EndOfMessage):
                        self._request_complete = True
                        return b"".join(chunks)
                    else:
                        raise ClientGone("closed in the middle of the request body")
        except TimeoutError:
            raise RequestTimedOut() from None

    def _declared_length(self) -> int | None:
        # h11 has already checked that Content-Length, if present, is one valid integer.
        value = self._request.header("content-length") if self._request else None
        return int(value) if value is not None else None

    # -- writing -------------------------------------------------------------------------

    async def _write(self, data: bytes) -> None:
        if self._writer.is_closing():
            raise ClientGone("connection already closed")
        self._writer.write(data)
        try:
            async with asyncio.timeout(self._io_timeout_s):
                await self._writer.drain()
        except TimeoutError:  # the client stopped reading
            raise ClientGone("client did not read the response in time") from None
        except OSError as exc:
            raise ClientGone(str(exc) or type(exc).__name__) from exc

    @property
    def can_respond(self) -> bool:
        """Whether a response can still be framed (not after one was sent)."""
        return self._conn.our_state in (h11.IDLE, h11.SEND_RESPONSE)

    def _frame_head(self, status: int, headers: list[tuple[str, str]], length: int) -> bytes:
        fields = list(headers)
        if status != 204 and status >= 200:  # RFC 9110 8.6: no Content-Length on 1xx/204
            fields.append(("content-length", str(length)))
        fields.append(("connection", "close"))
        if status < 200:
            # h11 frames only final responses; a scripted 1xx answer is written by hand.
            lines = [b"HTTP/1.1 %d %s" % (status, reason_phrase(status))]
            lines += [f"{k}: {v}".encode("latin-1") for k, v in fields]
            return b"\r\n".join(lines) + b"\r\n\r\n"
        return self._conn.send(h11.Response(status_code=status, headers=fields, reason=reason_phrase(status)))

    async def respond(
        self,
        status: int,
        headers: list[tuple[str, str]],
        body: bytes = b"",
        *,
        head_only: bool = False,
    ) -> None:
        """Send one complete response; ``head_only`` for HEAD (length announced, no body)."""
        try:
            out = self._frame_head(status, headers, len(body))
            if status >= 200:
                if body and not head_only and status not in (204, 304):
                    out += self._conn.send(h11.Data(data=body))
                out += self._conn.send(h11.EndOfMessage())
        except h11.LocalProtocolError as exc:  # e.g. framing we refused to produce
            raise ClientGone(f"response could not be framed: {exc}") from exc
        await self._write(out)

    async def respond_slowly(self, status: int, headers: list[tuple[str, str]], body: bytes, interval_s: float) -> bool:
        """Send the head with the full Content-Length at once, then the body one byte per
        ``interval_s``. Returns False when the client went away before the last byte."""
        if status < 200 or status in (204, 304):  # no body to trickle
            await self.respond(status, headers)
            return True
        await self._write(self._frame_head(status, headers, len(body)))
        gone = asyncio.get_running_loop().create_task(self._wait_for_client_close())
        try:
            for index in range(len(body)):
                # Sleep on the watcher, so a client that leaves ends the trickle at once.
                await asyncio.wait({gone}, timeout=interval_s)
                if gone.done():
                    return False
                await self._write(self._conn.send(h11.Data(data=body[index : index + 1])))
            await self._write(self._conn.send(h11.EndOfMessage()))
            return True
        except ClientGone:
            return False
        finally:
            gone.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await gone

    async def _wait_for_client_close(self) -> None:
        # Reads and discards whatever the client still sends, until EOF or a cap.
        discarded = 0
        with contextlib.suppress(OSError):
            while discarded <= LINGER_MAX_BYTES:
                data = await self._reader.read(READ_CHUNK)
                if not data:
                    return
                discarded += len(data)

    # -- closing -------------------------------------------------------------------------

    def reset(self) -> None:
        """Drop the connection with a TCP RST (SO_LINGER 0), skipping TLS close_notify."""
        sock = self._writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self._writer.transport.abort()

    async def close(self) -> None:
        """Close cleanly, bounded: drain unread request bytes, then TLS close_notify."""
        if not self._request_complete and not self._eof and not self._writer.is_closing():
            await self._linger()
        self._writer.close()
        try:
            async with asyncio.timeout(self._io_timeout_s):
                await self._writer.wait_closed()
        except (TimeoutError, OSError):
            # A client that never answers close_notify: abort instead of waiting for it.
            self._writer.transport.abort()

    async def _linger(self) -> None:
        loop = asyncio.get_running_loop()
        until = loop.time() + min(LINGER_MAX_S, self._io_timeout_s)
        discarded = 0
        while discarded <= LINGER_MAX_BYTES:
            try:
                async with asyncio.timeout(min(LINGER_IDLE_S, max(until - loop.time(), 0))):
                    data = await self._reader.read(READ_CHUNK)
            except (TimeoutError, OSError):
                return
            if not data:
                return
            discarded += len(data)
