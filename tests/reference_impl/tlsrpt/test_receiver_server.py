"""The HTTPS report receiver end to end over TLS on 127.0.0.1 (RFC 8460 sections 5.2, 5.4)."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h11
import pytest
import trustme

from reference_impl.tlsrpt.receiver import ReportReceiver, server_tls_context
from reference_impl.tlsrpt.receiver_mutants import RECEIVER_MUTANTS
from reference_impl.tlsrpt.receiver_store import ReportStore

from .receiver_support import POLICY_DOMAIN, best_judge, report_gzip, report_json, sample_report

HOST = "reports.example"
PATH = "/tlsrpt"
LIMIT = 64 * 1024
GZIP = "application/tlsrpt+gzip"
JSON = "application/tlsrpt+json"


@dataclass(frozen=True)
class Tls:
    server: ssl.SSLContext
    client: ssl.SSLContext
    chain: Path
    key: Path


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    ca = trustme.CA()
    leaf = ca.issue_cert(HOST, "127.0.0.1")
    folder = tmp_path_factory.mktemp("receiver-pki")
    chain, key = folder / "chain.pem", folder / "key.pem"
    leaf.private_key_and_cert_chain_pem.write_to_path(str(chain))
    leaf.private_key_pem.write_to_path(str(key))
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return Tls(server_tls_context(chain, key), client, chain, key)


Factory = Callable[..., Any]


@pytest.fixture
async def start(tls: Tls, tmp_path: Path) -> AsyncIterator[Factory]:
    """Start a receiver with the given options; every one is stopped and checked for bugs."""
    started: list[ReportReceiver] = []

    async def factory(**options: Any) -> ReportReceiver:
        options.setdefault("payload_judge", best_judge())
        options.setdefault("max_body_bytes", LIMIT)
        receiver = ReportReceiver(tmp_path / f"store{len(started)}", tls=tls.server, path=PATH, **options)
        await receiver.start()
        started.append(receiver)
        return receiver

    yield factory
    for receiver in started:
        await receiver.stop()
        receiver.check_errors()


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


def parse(raw: bytes) -> Response:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {name.strip().lower(): value.strip() for name, value in (line.split(":", 1) for line in lines[1:])}
    length = int(headers.get("content-length", len(body)))
    return Response(status, headers, body[:length])


def request_bytes(
    body: bytes = b"",
    content_type: str | None = GZIP,
    *,
    method: str = "POST",
    target: str = PATH,
    length: int | None = None,
    extra: str = "",
) -> bytes:
    head = f"{method} {target} HTTP/1.1\r\nHost: {HOST}\r\n"
    if content_type is not None:
        head += f"Content-Type: {content_type}\r\n"
    if method in ("POST", "PUT"):
        head += f"Content-Length: {len(body) if length is None else length}\r\n"
    return (head + extra + "\r\n").encode("latin-1") + body


async def connect(receiver: ReportReceiver, tls: Tls) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = receiver.address
    return await asyncio.open_connection(host, port, ssl=tls.client, server_hostname=HOST)


async def exchange(receiver: ReportReceiver, tls: Tls, raw: bytes, *, timeout: float = 5.0) -> Response:
    """Send ``raw``, read until the server closes, parse the response."""
    reader, writer = await connect(receiver, tls)
    try:
        writer.write(raw)
        await writer.drain()
        async with asyncio.timeout(timeout):
            return parse(await reader.read(-1))
    finally:
        writer.close()
        await _closed(writer)


async def _closed(writer: asyncio.StreamWriter) -> None:
    try:
        async with asyncio.timeout(2):
            await writer.wait_closed()
    except (TimeoutError, OSError):
        writer.transport.abort()


# -- the happy paths -----------------------------------------------------------------------


async def test_valid_gzip_report_is_stored_and_answered_201(start: Factory, tls: Tls) -> None:
    receiver = await start()
    response = await exchange(receiver, tls, request_bytes(report_gzip()))
    assert response.status == 201
    assert response.headers["connection"] == "close"
    (stored,) = receiver.received()
    assert stored.transport == "https"
    assert stored.report == sample_report()
    assert stored.policy_domain == POLICY_DOMAIN
    assert stored.content_type == GZIP
    # Durable: a new store over the same directory sees it.
    assert ReportStore(receiver.store.root).received() == [stored]


async def test_valid_json_report_with_charset_is_stored(start: Factory, tls: Tls) -> None:
    receiver = await start()
    response = await exchange(receiver, tls, request_bytes(report_json(), JSON + "; charset=utf-8"))
    assert response.status == 201
    assert len(receiver.received()) == 1


async def test_same_report_again_is_200_and_stored_once(start: Factory, tls: Tls) -> None:
    receiver = await start()
    assert (await exchange(receiver, tls, request_bytes(report_gzip()))).status == 201
    assert (await exchange(receiver, tls, request_bytes(report_json(), JSON))).status == 200
    assert len(receiver.received()) == 1


async def test_chunked_report_without_content_length(start: Factory, tls: Tls) -> None:
    receiver = await start()
    body = report_gzip()
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in (body[:100], body[100:])) + b"0\r\n\r\n"
    head = f"POST {PATH} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: {GZIP}\r\nTransfer-Encoding: chunked\r\n\r\n"
    response = await exchange(receiver, tls, head.encode() + chunks)
    assert response.status == 201
    assert len(receiver.received()) == 1


async def test_expect_100_continue(start: Factory, tls: Tls) -> None:
    receiver = await start()
    reader, writer = await connect(receiver, tls)
    try:
        writer.write(request_bytes(extra="Expect: 100-continue\r\n", length=len(report_gzip())))
        await writer.drain()
        async with asyncio.timeout(5):
            interim = await reader.readuntil(b"\r\n\r\n")
            assert interim.startswith(b"HTTP/1.1 100")
            writer.write(report_gzip())
            await writer.drain()
            assert parse(await reader.read(-1)).status == 201
    finally:
        writer.close()
        await _closed(writer)


async def test_keep_alive_serves_several_reports_on_one_connection(start: Factory, tls: Tls) -> None:
    receiver = await start(keep_alive=True)
    reader, writer = await connect(receiver, tls)
    client = h11.Connection(h11.CLIENT)
    statuses = []
    try:
        for report_id in ("a", "b"):
            body = report_gzip(sample_report(report_id=report_id))
            headers = [("host", HOST), ("content-type", GZIP), ("content-length", str(len(body)))]
            writer.write(client.send(h11.Request(method="POST", target=PATH, headers=headers)))
            writer.write(client.send(h11.Data(data=body)) + client.send(h11.EndOfMessage()))
            await writer.drain()
            async with asyncio.timeout(5):
                while True:
                    event = client.next_event()
                    if event is h11.NEED_DATA:
                        client.receive_data(await reader.read(65536))
                    elif isinstance(event, h11.Response):
                        statuses.append(event.status_code)
                    elif isinstance(event, h11.EndOfMessage):
                        break
            client.start_next_cycle()
    finally:
        writer.close()
        await _closed(writer)
    assert statuses == [201, 201]
    assert len(receiver.received()) == 2


# -- refusals ------------------------------------------------------------------------------


async def test_bad_json_is_400_naming_the_rule(start: Factory, tls: Tls) -> None:
    receiver = await start()
    response = await exchange(receiver, tls, request_bytes(b"{not json", JSON))
    assert response.status == 400
    assert b"json-syntax" in response.body
    assert receiver.received() == []
    assert [entry.outcome for entry in receiver.log()] == ["refused"]


async def test_broken_gzip_is_400(start: Factory, tls: Tls) -> None:
    receiver = await start()
    response = await exchange(receiver, tls, request_bytes(report_gzip()[:40]))
    assert response.status == 400
    assert receiver.received() == []


async def test_wrong_media_type_is_415(start: Factory, tls: Tls) -> None:
    receiver = await start()
    response = await exchange(receiver, tls, request_bytes(report_json(), "application/json"))
    assert response.status == 415
    assert receiver.received() == []


async def test_get_is_405_with_allow(start: Factory, tls: Tls) -> None:
    receiver = await start()
    response = await exchange(receiver, tls, request_bytes(method="GET", content_type=None))
    assert response.status == 405
    assert response.headers["allow"] == "POST"


async def test_other_path_is_404(start: Factory, tls: Tls) -> None:
    receiver = await start()
    assert (await exchange(receiver, tls, request_bytes(report_gzip(), target="/elsewhere"))).status == 404


async def test_oversized_content_length_is_413_before_the_body_is_sent(start: Factory, tls: Tls) -> None:
    receiver = await start()
    reader, writer = await connect(receiver, tls)
    try:
        # Announce 10 MiB, send 1 KiB, then wait: the answer must come without the rest.
        writer.write(request_bytes(b"\x1f\x8b" + b"\0" * 1022, length=10 * 1024 * 1024))
        await writer.drain()
        async with asyncio.timeout(5):
            response = parse(await reader.read(-1))
    finally:
        writer.close()
        await _closed(writer)
    assert response.status == 413
    assert receiver.received() == []


async def test_oversized_chunked_body_is_413_while_reading(start: Factory, tls: Tls) -> None:
    receiver = await start()
    piece = b"\0" * (LIMIT + 1)
    head = f"POST {PATH} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: {GZIP}\r\nTransfer-Encoding: chunked\r\n\r\n"
    # One chunk above the limit and no end: the server must answer without waiting for more.
    response = await exchange(receiver, tls, head.encode() + b"%x\r\n" % len(piece) + piece)
    assert response.status == 413


async def test_malformed_request_is_400(start: Factory, tls: Tls) -> None:
    receiver = await start()
    response = await exchange(receiver, tls, b"POST /tlsrpt HTTP/1.1\r\nno colon here\r\n\r\n")
    assert response.status == 400


async def test_store_failure_is_500_so_the_sender_retries(
    start: Factory, tls: Tls, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver = await start()

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(receiver.store, "save", full)
    assert (await exchange(receiver, tls, request_bytes(report_gzip()))).status == 500


# -- timeouts ------------------------------------------------------------------------------


async def test_slow_client_times_out_without_blocking_others(start: Factory, tls: Tls) -> None:
    receiver = await start(request_timeout_s=1.0)
    slow_reader, slow_writer = await connect(receiver, tls)
    try:
        slow_writer.write(f"POST {PATH} HTTP/1.1\r\nHost: {HOST}\r\n".encode())  # and never more
        await slow_writer.drain()
        began = time.monotonic()
        fast = await exchange(receiver, tls, request_bytes(report_gzip()))
        fast_took = time.monotonic() - began
        async with asyncio.timeout(5):
            slow = parse(await slow_reader.read(-1))
        slow_took = time.monotonic() - began
    finally:
        slow_writer.close()
        await _closed(slow_writer)
    assert fast.status == 201 and fast_took < 1.0
    assert slow.status == 408 and slow_took >= 0.5
    assert len(receiver.received()) == 1


async def test_idle_connection_is_closed_silently(start: Factory, tls: Tls) -> None:
    receiver = await start(request_timeout_s=0.3)
    reader, writer = await connect(receiver, tls)
    try:
        async with asyncio.timeout(5):
            assert await reader.read(-1) == b""
    finally:
        writer.close()
        await _closed(writer)


# -- configuration -------------------------------------------------------------------------


def test_only_loopback_addresses(tls: Tls, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="loopback"):
        ReportReceiver(tmp_path, tls=tls.server, host="192.0.2.1", payload_judge=best_judge())


async def test_address_and_url(start: Factory) -> None:
    receiver = await start()
    host, port = receiver.address
    assert host == "127.0.0.1" and port > 0
    assert receiver.url == f"https://127.0.0.1:{port}{PATH}"
    assert receiver.smtp_address is None


# -- negative controls over the wire ---------------------------------------------------------


async def test_no_size_limit_mutant_reads_a_large_chunked_report(start: Factory, tls: Tls) -> None:
    big = report_json(sample_report(organization="Company-X " * 8000))
    assert len(big) > LIMIT
    head = f"POST {PATH} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: {JSON}\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunked = head.encode() + b"%x\r\n%s\r\n0\r\n\r\n" % (len(big), big)
    reference = await start()
    mutant = await start(variant=RECEIVER_MUTANTS["recv-no-size-limit"].variant)
    assert (await exchange(reference, tls, chunked)).status == 413
    assert (await exchange(mutant, tls, chunked)).status == 201
    assert len(mutant.received()) == 1


async def test_rejects_gzip_mutant_over_the_wire(start: Factory, tls: Tls) -> None:
    mutant = await start(variant=RECEIVER_MUTANTS["recv-rejects-gzip"].variant)
    assert (await exchange(mutant, tls, request_bytes(report_gzip()))).status == 415
    assert (await exchange(mutant, tls, request_bytes(report_json(), JSON))).status == 201


async def test_oversized_body_streamed_while_the_answer_comes_is_413(start: Factory, tls: Tls) -> None:
    receiver = await start()
    reader, writer = await connect(receiver, tls)

    async def stream_zeros() -> None:
        writer.write(request_bytes(length=128 * 1024 * 1024))
        chunk = b"\0" * 65536
        for _ in range(2048):  # up to 128 MiB, until the server closes
            writer.write(chunk)
            await writer.drain()

    sender = asyncio.create_task(stream_zeros())
    try:
        async with asyncio.timeout(10):
            head = await reader.readuntil(b"\r\n\r\n")
    finally:
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
        writer.transport.abort()
    assert head.startswith(b"HTTP/1.1 413")
