"""The HTTPS policy fetch (RFC 8461 sections 3.2, 3.3, 7.1) against a tiny HTTPS server on
127.0.0.1 (port 0), the dnspython adapters, and the discovery driver end to end."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import functools
import socket
import ssl
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dns.asyncresolver
import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from dnslib import TXT, A

from reference_impl.mta.clock import ManualClock
from reference_impl.mtasts.cache import PolicyCache
from reference_impl.mtasts.discovery import FetchErrorKind, FetchResult, StsFailure, TxtAnswer
from reference_impl.mtasts.fetch import (
    address_resolver,
    discover_policy,
    fetch_policy,
    media_type_of,
    txt_lookup,
)

from ..mta.helpers import FakeDns

HOST = "mta-sts.example.test"
POLICY = b"version: STSv1\r\nmode: enforce\r\nmx: mx.example.test\r\nmax_age: 86400\r\n"
PATH = "/.well-known/mta-sts.txt"
HANDLER_DEADLINE_S = 5.0


@dataclass
class Reply:
    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=lambda: [("Content-Type", "text/plain")])
    body: bytes = POLICY
    length: bool = True  # send Content-Length (else close-delimited)
    trickle_s: float | None = None  # delay between body bytes
    raw: bytes | None = None  # sent verbatim instead of a response
    hang: bool = False  # read the request, then answer nothing


@dataclass
class Seen:
    method: str
    target: str
    headers: dict[str, str]


class PolicyServer:
    """A scripted HTTPS (or plain TCP) server; one request per connection."""

    def __init__(self, context: ssl.SSLContext | None, reply: Reply) -> None:
        self.context = context
        self.reply = reply
        self.requests: list[Seen] = []
        self.sni: list[str | None] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        if context is not None:
            context.sni_callback = self._on_sni

    def _on_sni(self, _obj: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        self.sni.append(name)

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def __aenter__(self) -> PolicyServer:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0, ssl=self.context, limit=16384)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=HANDLER_DEADLINE_S)
        await self._server.wait_closed()

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.create_task(self._handle(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(HANDLER_DEADLINE_S):
                await self._serve(reader, writer)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # the client gave up (aborts are part of the tests)
        finally:
            writer.transport.abort()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        reply = self.reply
        if reply.raw is not None and self.context is None:
            writer.write(reply.raw)
            await writer.drain()
            return
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        self.requests.append(Seen(method, target, headers))
        if reply.hang:
            await reader.read(1)  # until the client gives up (or the handler deadline)
            return
        if reply.raw is not None:
            writer.write(reply.raw)
            await writer.drain()
            return
        fields = list(reply.headers)
        if reply.length:
            fields.append(("Content-Length", str(len(reply.body))))
        fields.append(("Connection", "close"))
        text = f"HTTP/1.1 {reply.status} X\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields) + "\r\n"
        writer.write(text.encode("latin-1"))
        if reply.trickle_s is None:
            writer.write(reply.body)
            await writer.drain()
        else:
            for index in range(len(reply.body)):
                writer.write(reply.body[index : index + 1])
                await writer.drain()
                await asyncio.sleep(reply.trickle_s)
        if reply.length:
            await reader.read(1)  # wait for the client to close
        else:
            writer.close()  # the end of a close-delimited body is the close (with close_notify)
            await writer.wait_closed()


# -- certificates ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    ca: trustme.CA
    ca_file: Path
    workdir: Path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    workdir = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    ca_file = workdir / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return Pki(ca, ca_file, workdir)


def server_context(leaf: trustme.LeafCert) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(context)
    return context


def cn_only_context(pki: Pki) -> ssl.SSLContext:
    """A leaf signed by the trusted CA naming the host only in the subject CN (no SAN)."""
    ca_key = serialization.load_pem_private_key(pki.ca.private_key_pem.bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    ca_cert = x509.load_pem_x509_certificate(pki.ca.cert_pem.bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    chain = pki.workdir / "cn-only.pem"
    key_file = pki.workdir / "cn-only.key"
    chain.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + pki.ca.cert_pem.bytes())
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(chain, key_file)
    return context


@pytest.fixture
def good(pki: Pki) -> ssl.SSLContext:
    return server_context(pki.ca.issue_cert(HOST))


@contextlib.asynccontextmanager
async def serving(context: ssl.SSLContext | None, reply: Reply | None = None) -> AsyncIterator[PolicyServer]:
    async with PolicyServer(context, reply or Reply()) as server:
        yield server


async def fetch(server: PolicyServer, pki: Pki, **kwargs: object) -> FetchResult:
    options: dict[str, object] = {"connect": ("127.0.0.1", server.port), "ca_file": pki.ca_file, "timeout_s": 5.0}
    options.update(kwargs)
    return await fetch_policy("example.test", **options)  # type: ignore[arg-type]


def kind(result: FetchResult) -> FetchErrorKind | None:
    return None if result.error is None else result.error.kind


# -- success and what is sent ----------------------------------------------------------------


async def test_fetch_sends_sni_host_and_no_conditional_headers(pki: Pki, good: ssl.SSLContext) -> None:
    async with serving(good) as server:
        result = await fetch(server, pki)
        # A second fetch is a full GET again: HTTP caching is never used (3.3).
        second = await fetch(server, pki)
    assert result == second == FetchResult.success(POLICY)
    assert server.sni == [HOST, HOST]  # section 7.1
    assert len(server.requests) == 2
    for seen in server.requests:
        assert (seen.method, seen.target, seen.headers["host"]) == ("GET", PATH, HOST)
        assert not {"if-none-match", "if-modified-since", "if-match", "if-unmodified-since", "if-range"} & set(
            seen.headers
        )


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "text/plain; charset=utf-8", "text/plain; charset=iso-8859-1", 'TEXT/Plain ;format="x"'],
)
async def test_text_plain_with_any_parameters_is_accepted(pki: Pki, good: ssl.SSLContext, content_type: str) -> None:
    async with serving(good, Reply(headers=[("Content-Type", content_type)])) as server:
        assert await fetch(server, pki) == FetchResult.success(POLICY)


async def test_wildcard_certificate_is_accepted(pki: Pki) -> None:
    async with serving(server_context(pki.ca.issue_cert("*.example.test"))) as server:
        assert await fetch(server, pki) == FetchResult.success(POLICY)


async def test_close_delimited_body(pki: Pki, good: ssl.SSLContext) -> None:
    async with serving(good, Reply(length=False)) as server:
        assert await fetch(server, pki) == FetchResult.success(POLICY)


async def test_resolve_is_used_and_every_address_tried(pki: Pki, good: ssl.SSLContext) -> None:
    asked: list[str] = []

    async def resolve(name: str) -> list[str]:
        asked.append(name)
        return ["127.0.0.2", "127.0.0.1"]  # nothing listens on 127.0.0.2: refused, next

    async with serving(good) as server:
        result = await fetch_policy("example.test", port=server.port, ca_file=pki.ca_file, resolve=resolve, timeout_s=5)
    assert result == FetchResult.success(POLICY)
    assert asked == [HOST]


# -- certificate failures (3.3): sts-webpki-invalid -------------------------------------------


def _wrong_name(pki: Pki) -> ssl.SSLContext:
    return server_context(pki.ca.issue_cert("www.example.test", "example.test"))


def _untrusted(pki: Pki) -> ssl.SSLContext:
    return server_context(trustme.CA().issue_cert(HOST))


def _expired(pki: Pki) -> ssl.SSLContext:
    past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=2)
    return server_context(pki.ca.issue_cert(HOST, not_before=past - datetime.timedelta(days=30), not_after=past))


def _wildcard_too_deep(pki: Pki) -> ssl.SSLContext:
    return server_context(pki.ca.issue_cert("*.test"))


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(_wrong_name, id="wrong-name"),
        pytest.param(_untrusted, id="untrusted-ca"),
        pytest.param(cn_only_context, id="cn-only"),
        pytest.param(_expired, id="expired"),
        pytest.param(_wildcard_too_deep, id="wildcard-two-labels-up"),
    ],
)
async def test_certificate_failures(pki: Pki, make: object) -> None:
    assert callable(make)
    async with serving(make(pki)) as server:
        result = await fetch(server, pki)
    assert kind(result) is FetchErrorKind.TLS_VERIFY
    assert result.error is not None and result.error.result_type is StsFailure.WEBPKI_INVALID
    assert server.requests == []  # nothing is requested over an unverified connection


# -- HTTP failures ---------------------------------------------------------------------------


@pytest.mark.parametrize("status", [201, 204, 404, 500])
async def test_only_200_counts(pki: Pki, good: ssl.SSLContext, status: int) -> None:
    async with serving(good, Reply(status=status)) as server:
        result = await fetch(server, pki)
    assert kind(result) is FetchErrorKind.HTTP_STATUS and result.error is not None
    assert str(status) in result.error.detail


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_redirect_is_not_followed(pki: Pki, good: ssl.SSLContext, status: int) -> None:
    location = f"https://{HOST}/elsewhere.txt"
    reply = Reply(status=status, headers=[("Location", location), ("Content-Type", "text/plain")])
    async with serving(good, reply) as server:
        result = await fetch(server, pki)
    assert kind(result) is FetchErrorKind.REDIRECT and result.error is not None
    assert location in result.error.detail
    assert [seen.target for seen in server.requests] == [PATH]  # the target is never requested


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param([], id="missing"),
        pytest.param([("Content-Type", "text/html")], id="html"),
        pytest.param([("Content-Type", "text/plainx")], id="near-miss"),
        pytest.param([("Content-Type", "application/octet-stream")], id="binary"),
    ],
)
async def test_media_type_must_be_text_plain(pki: Pki, good: ssl.SSLContext, headers: list[tuple[str, str]]) -> None:
    async with serving(good, Reply(headers=headers)) as server:
        result = await fetch(server, pki)
    assert kind(result) is FetchErrorKind.CONTENT_TYPE
    assert result.error is not None and result.error.result_type is StsFailure.POLICY_INVALID


async def test_oversized_body_by_content_length(pki: Pki, good: ssl.SSLContext) -> None:
    async with serving(good, Reply(body=POLICY + b"#" * 70_000)) as server:
        result = await fetch(server, pki)
    assert kind(result) is FetchErrorKind.TOO_LARGE


async def test_oversized_body_without_length_stops_reading(pki: Pki, good: ssl.SSLContext) -> None:
    async with serving(good, Reply(body=POLICY + b"#" * 2_000_000, length=False)) as server:
        result = await fetch(server, pki, max_bytes=1000)
    assert kind(result) is FetchErrorKind.TOO_LARGE and result.error is not None
    assert "1000" in result.error.detail


async def test_slow_body_times_out(pki: Pki, good: ssl.SSLContext) -> None:
    async with serving(good, Reply(trickle_s=0.05)) as server:
        result = await fetch(server, pki, timeout_s=0.3)
    assert kind(result) is FetchErrorKind.TIMEOUT
    assert result.error is not None and result.error.result_type is StsFailure.FETCH_ERROR


async def test_silent_server_times_out(pki: Pki, good: ssl.SSLContext) -> None:
    async with serving(good, Reply(hang=True)) as server:
        result = await fetch(server, pki, timeout_s=0.3)
    # The server reads the request and answers nothing; the fetch's own deadline ends it.
    assert kind(result) is FetchErrorKind.TIMEOUT
    assert len(server.requests) == 1


async def test_empty_response_is_a_protocol_error(pki: Pki, good: ssl.SSLContext) -> None:
    async with serving(good, Reply(raw=b"")) as server:
        result = await fetch(server, pki)
    assert kind(result) is FetchErrorKind.HTTP_PROTOCOL


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"NOT HTTP AT ALL\r\n\r\n", id="garbage"),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 500\r\n\r\nversion", id="truncated"
        ),
    ],
)
async def test_malformed_responses(pki: Pki, good: ssl.SSLContext, raw: bytes) -> None:
    async with serving(good, Reply(raw=raw)) as server:
        result = await fetch(server, pki)
    assert kind(result) is FetchErrorKind.HTTP_PROTOCOL


# -- network failures ------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_connection_refused(pki: Pki) -> None:
    result = await fetch_policy("example.test", connect=("127.0.0.1", _closed_port()), ca_file=pki.ca_file, timeout_s=5)
    assert kind(result) is FetchErrorKind.CONNECT


async def test_not_tls(pki: Pki) -> None:
    async with serving(None, Reply(raw=b"HTTP/1.1 200 OK\r\n\r\n" * 20)) as server:
        result = await fetch(server, pki)
    assert kind(result) is FetchErrorKind.TLS
    assert result.error is not None and result.error.result_type is StsFailure.FETCH_ERROR


@pytest.mark.parametrize("answer", [[], OSError("no such host")])
async def test_dns_failure(pki: Pki, answer: list[str] | OSError) -> None:
    async def resolve(name: str) -> list[str]:
        if isinstance(answer, OSError):
            raise answer
        return answer

    result = await fetch_policy("example.test", ca_file=pki.ca_file, resolve=resolve, timeout_s=5)
    assert kind(result) is FetchErrorKind.DNS


async def test_invalid_domain_is_a_dns_failure(pki: Pki) -> None:
    result = await fetch_policy("a..b", ca_file=pki.ca_file)
    assert kind(result) is FetchErrorKind.DNS


async def test_bad_arguments_raise(pki: Pki) -> None:
    with pytest.raises(ValueError, match="timeout_s"):
        await fetch_policy("example.test", ca_file=pki.ca_file, timeout_s=0)


def test_media_type_of() -> None:
    assert media_type_of(" Text/Plain ; charset=utf-8") == "text/plain"
    assert media_type_of("") == ""


# -- dnspython adapters and the driver --------------------------------------------------------


@pytest.fixture
async def fake_dns() -> AsyncIterator[FakeDns]:
    server = await FakeDns.start()
    try:
        yield server
    finally:
        server.close()


def _resolver(dns_server: FakeDns) -> dns.asyncresolver.Resolver:
    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = [dns_server.address[0]]
    resolver.port = dns_server.address[1]
    resolver.timeout = resolver.lifetime = 1.0
    resolver.cache = None
    return resolver


async def test_txt_lookup_answers(fake_dns: FakeDns) -> None:
    fake_dns.records[("_mta-sts.a.test", "TXT")] = [TXT([b"v=STSv1; ", b"id=1;"]), TXT([b"v=spf1"])]
    fake_dns.records[("_mta-sts.b.test", "A")] = [A("127.0.0.1")]  # the name exists, no TXT
    fake_dns.rcodes["_mta-sts.c.test"] = "SERVFAIL"
    fake_dns.silent.add("_mta-sts.d.test")
    lookup = txt_lookup(_resolver(fake_dns))
    ok = await lookup("_mta-sts.a.test")
    assert ok.status == "ok" and sorted(ok.rrs) == [(b"v=STSv1; ", b"id=1;"), (b"v=spf1",)]
    assert await lookup("_mta-sts.b.test") == TxtAnswer("nodata")
    assert await lookup("_mta-sts.nowhere.example") == TxtAnswer("nxdomain")
    assert await lookup("_mta-sts.c.test") == TxtAnswer("servfail")
    assert await lookup("_mta-sts.d.test") == TxtAnswer("timeout")


async def test_address_resolver(fake_dns: FakeDns) -> None:
    fake_dns.records[(HOST, "A")] = [A("127.0.0.1")]
    resolve = address_resolver(_resolver(fake_dns))
    assert await resolve(HOST) == ["127.0.0.1"]
    assert await resolve("mta-sts.nowhere.example") == []


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[tuple[PolicyCache, ManualClock]]:
    clock = ManualClock(1_700_000_000.0)
    with PolicyCache(tmp_path / "sts.sqlite", clock=clock) as c:
        yield c, clock


async def test_discover_policy_end_to_end(
    pki: Pki, good: ssl.SSLContext, cache: tuple[PolicyCache, ManualClock]
) -> None:
    store, clock = cache
    record = [TxtAnswer("ok", ((b"v=STSv1; id=one;",),))]

    async def lookup(name: str) -> TxtAnswer:
        assert name == "_mta-sts.example.test"
        return record[0]

    async with serving(good) as server:
        fetcher = functools.partial(
            fetch_policy, connect=("127.0.0.1", server.port), ca_file=pki.ca_file, timeout_s=5.0
        )
        first = await discover_policy("example.test", cache=store, lookup=lookup, fetch=fetcher, clock=clock)
        assert first.source == "fresh" and first.record_id == "one"
        entry = store.get("example.test")
        assert entry is not None and entry.policy_text == POLICY.decode()
        # Same id, a minute later: the cache answers, no HTTPS request (3.1, 5.1).
        clock.advance(60)
        again = await discover_policy("example.test", cache=store, lookup=lookup, fetch=fetcher, clock=clock)
        assert again.source == "cache" and len(server.requests) == 1
        # New id, host now failing: cached policy applies, failure noted for the new id.
        record[0] = TxtAnswer("ok", ((b"v=STSv1; id=two;",),))
        server.reply = Reply(status=500)
        failed = await discover_policy("example.test", cache=store, lookup=lookup, fetch=fetcher, clock=clock)
        assert (failed.source, failed.record_id, failed.failure) == ("cache", "one", StsFailure.FETCH_ERROR)
        note = store.last_failure("example.test")
        assert note is not None and note.record_id == "two"
        # Within five minutes no new GET for id "two" (3.3); after them, one.
        clock.advance(299)
        await discover_policy("example.test", cache=store, lookup=lookup, fetch=fetcher, clock=clock)
        assert len(server.requests) == 2
        clock.advance(1)
        server.reply = Reply()
        fresh = await discover_policy("example.test", cache=store, lookup=lookup, fetch=fetcher, clock=clock)
        assert (fresh.source, fresh.record_id) == ("fresh", "two") and len(server.requests) == 3
        assert store.last_failure("example.test") is None
