"""Tests of the bounded h11 exchange, over plain loopback TCP (TLS is the server's business)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from conformance.world.http_exchange import (
    MAX_HEADER_BYTES,
    BodyTooLarge,
    ClientGone,
    Exchange,
    RequestRejected,
    RequestTimedOut,
)

Script = Callable[[Exchange], Awaitable[object]]
LONG = 5.0  # a deadline no test reaches


@dataclass
class Pair:
    """A loopback server running one ``script`` per connection, and what the script ended with."""

    script: Script
    results: asyncio.Queue[object] = field(default_factory=asyncio.Queue)
    server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        exchange = Exchange(reader, writer, io_timeout_s=1.0)
        try:
            outcome: object = await self.script(exchange)
        except Exception as exc:
            outcome = exc
        if not writer.is_closing():
            await exchange.close()
        else:
            writer.transport.abort()
        await self.results.put(outcome)

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        assert self.server is not None
        host, port = self.server.sockets[0].getsockname()[:2]
        return await asyncio.open_connection(host, port)

    async def result(self) -> object:
        async with asyncio.timeout(LONG):
            return await self.results.get()


@contextlib.asynccontextmanager
async def pair(script: Script) -> AsyncIterator[Pair]:
    p = Pair(script)
    p.server = await asyncio.start_server(p.handle, "127.0.0.1", 0)
    try:
        yield p
    finally:
        p.server.close()
        await p.server.wait_closed()


async def read_to_eof(reader: asyncio.StreamReader) -> bytes:
    data = b""
    async with asyncio.timeout(LONG):
        while len(data) < 1 << 20:
            try:
                chunk = await reader.read(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
    return data


async def close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


def deadline(seconds: float = LONG) -> float:
    return asyncio.get_running_loop().time() + seconds


async def read_all(exchange: Exchange, limit: int = 100) -> tuple[str, bytes]:
    head = await exchange.read_head(deadline())
    body = await exchange.read_body(limit, deadline())
    await exchange.respond(200, [("content-type", "text/plain")], b"ok")
    return head.target, body


async def test_request_in_small_chunks_is_read_whole() -> None:
    async with pair(read_all) as p:
        reader, writer = await p.connect()
        try:
            request = b"POST /r HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
            for index in range(len(request)):
                writer.write(request[index : index + 1])
                await writer.drain()
            response = await read_to_eof(reader)
        finally:
            await close(writer)
        assert await p.result() == ("/r", b"hello")
    assert response.startswith(b"HTTP/1.1 200 OK\r\n")
    assert response.endswith(b"\r\n\r\nok")
    assert b"connection: close" in response


async def test_chunked_body_over_the_limit_is_refused() -> None:
    async with pair(read_all) as p:
        reader, writer = await p.connect()
        try:
            chunk = b"40\r\n" + b"x" * 64 + b"\r\n"
            writer.write(b"POST /r HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
            writer.write(chunk * 2 + b"0\r\n\r\n")
            await read_to_eof(reader)
        finally:
            await close(writer)
        outcome = await p.result()
    assert isinstance(outcome, BodyTooLarge)
    assert (outcome.status, outcome.limit) == (413, 100)


async def test_declared_length_over_the_limit_is_refused_before_100_continue() -> None:
    async with pair(read_all) as p:
        reader, writer = await p.connect()
        try:
            writer.write(b"POST /r HTTP/1.1\r\nHost: a\r\nContent-Length: 101\r\nExpect: 100-continue\r\n\r\n")
            data = await read_to_eof(reader)
        finally:
            await close(writer)
        assert isinstance(await p.result(), BodyTooLarge)
    assert data == b""  # the script raised before responding; no 100 Continue either


async def test_expect_100_continue_is_answered() -> None:
    async with pair(read_all) as p:
        reader, writer = await p.connect()
        try:
            writer.write(b"POST /r HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
            async with asyncio.timeout(LONG):
                interim = await reader.readuntil(b"\r\n\r\n")
            writer.write(b"hi")
            final = await read_to_eof(reader)
        finally:
            await close(writer)
        assert await p.result() == ("/r", b"hi")
    assert interim.startswith(b"HTTP/1.1 100 ")
    assert final.startswith(b"HTTP/1.1 200 ")


async def test_head_over_the_cap_in_small_chunks_is_rejected_by_h11() -> None:
    async with pair(read_all) as p:
        reader, writer = await p.connect()
        try:
            writer.write(b"GET / HTTP/1.1\r\nHost: a\r\nX: ")
            for _ in range(MAX_HEADER_BYTES // 4096 + 2):
                writer.write(b"a" * 4096)
                await writer.drain()
                await asyncio.sleep(0)
            await read_to_eof(reader)
        finally:
            await close(writer)
        outcome = await p.result()
    assert isinstance(outcome, RequestRejected)
    assert outcome.status == 431


async def test_client_closing_mid_body_is_client_gone() -> None:
    async with pair(read_all) as p:
        _reader, writer = await p.connect()
        writer.write(b"POST /r HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc")
        await writer.drain()
        await close(writer)
        outcome = await p.result()
    assert isinstance(outcome, ClientGone)


async def test_deadline_gives_request_timed_out() -> None:
    async def script(exchange: Exchange) -> object:
        return await exchange.read_head(deadline(0.05))

    async with pair(script) as p:
        _reader, writer = await p.connect()
        try:
            writer.write(b"GET / HTTP/1.1\r\n")
            outcome = await p.result()
        finally:
            await close(writer)
    assert isinstance(outcome, RequestTimedOut)
    assert outcome.status == 408


@pytest.mark.parametrize(("status", "has_length"), [(204, False), (304, True), (200, True), (101, False)])
async def test_content_length_framing_by_status(status: int, has_length: bool) -> None:
    async def script(exchange: Exchange) -> object:
        await exchange.read_head(deadline())
        await exchange.read_body(0, deadline())
        await exchange.respond(status, [], b"body")
        return None

    async with pair(script) as p:
        reader, writer = await p.connect()
        try:
            writer.write(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            data = await read_to_eof(reader)
        finally:
            await close(writer)
        assert await p.result() is None
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 %d " % status)
    assert (b"content-length" in head) is has_length
    assert body == (b"body" if status == 200 else b"")


async def test_slow_body_stops_when_the_client_leaves() -> None:
    async def script(exchange: Exchange) -> object:
        await exchange.read_head(deadline())
        await exchange.read_body(0, deadline())
        return await exchange.respond_slowly(200, [], b"x" * 1000, 0.01)

    async with pair(script) as p:
        reader, writer = await p.connect()
        writer.write(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        async with asyncio.timeout(LONG):
            head = await reader.readuntil(b"\r\n\r\n")
            first = await reader.readexactly(1)
        await close(writer)
        assert await p.result() is False
    assert b"content-length: 1000" in head
    assert first == b"x"


async def test_reset_sends_no_response() -> None:
    async def script(exchange: Exchange) -> object:
        await exchange.read_head(deadline())
        exchange.reset()
        return "reset"

    async with pair(script) as p:
        reader, writer = await p.connect()
        try:
            writer.write(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            data = await read_to_eof(reader)
        finally:
            await close(writer)
        assert await p.result() == "reset"
    assert data == b""
