"""Tests of the world's HTTPS server (RFC 8461 section 3.3 policy hosts, RFC 8460 section 5.4
collector), driven over loopback with real TLS clients."""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import trustme

from conformance.errors import WorldError
from conformance.world.https import (
    REPORT_BODY_LIMIT,
    ContextFactory,
    HttpsStagingError,
    WorldHttps,
)
from conformance.world.observe import HttpRequest, ObservationLog, ReportPost, TlsHandshake
from conformance.world.spec import CertSpec, HttpFault, PolicyHost

POLICY = "version: STSv1\r\nmode: enforce\r\nmx: mx1.a.test\r\nmax_age: 86400\r\n"
WELL_KNOWN = "/.well-known/mta-sts.txt"
CLIENT_TIMEOUT_S = 3.0
# One padding line of pad_policy, per the extension-field grammar of RFC 8461 section 3.2.
PAD_LINE = re.compile(rb"pad\d{4,}: x+\r\n")


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@dataclass
class Harness:
    https: WorldHttps
    ca: trustme.CA
    unrouted: ObservationLog

    @property
    def addr(self) -> tuple[str, int]:
        return self.https.address


def context_factory(ca: trustme.CA) -> ContextFactory:
    def context_for(host: str, spec: CertSpec) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ca.issue_cert(*(spec.names or (host,))).configure_cert(context)
        return context

    return context_for


async def start(ca: trustme.CA, *, request_timeout_s: float = 5.0) -> Harness:
    unrouted = ObservationLog()
    https = WorldHttps(context_factory(ca), unrouted_sink=unrouted.add, request_timeout_s=request_timeout_s)
    await https.start("127.0.0.1", 0)
    return Harness(https, ca, unrouted)


@pytest.fixture
async def world(ca: trustme.CA) -> AsyncIterator[Harness]:
    harness = await start(ca)
    yield harness
    await harness.https.stop()
    harness.https.check_errors()


@dataclass(frozen=True)
class Fetched:
    status: int | None
    headers: dict[str, str]
    body: bytes
    raw: bytes
    peer_names: tuple[str, ...]


def client_context(ca: trustme.CA | None, *, check_hostname: bool = True) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if ca is not None:
        ca.configure_trust(context)
    if not check_hostname:
        context.check_hostname = False
        if ca is None:
            context.verify_mode = ssl.CERT_NONE
    return context


async def connect(
    h: Harness, sni: str | None, *, check_name: bool = True
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    # The world's CA is always trusted; ``check_name`` False accepts a certificate for
    # another name (the default certificate, a wrong-name profile).
    context = client_context(h.ca, check_hostname=check_name and sni is not None)
    host, port = h.addr
    return await asyncio.open_connection(host, port, ssl=context, server_hostname=sni or "")


async def close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError, TimeoutError):
        async with asyncio.timeout(CLIENT_TIMEOUT_S):
            await writer.wait_closed()


async def read_to_eof(reader: asyncio.StreamReader, cap: int = 4 * 1024 * 1024) -> bytes:
    data = b""
    async with asyncio.timeout(CLIENT_TIMEOUT_S):
        while len(data) < cap:
            try:
                chunk = await reader.read(65536)
            except (ConnectionResetError, ssl.SSLError):
                break
            if not chunk:
                break
            data += chunk
    return data


def parse(raw: bytes, peer_names: tuple[str, ...] = ()) -> Fetched:
    head, _, body = raw.partition(b"\r\n\r\n")
    if not head:
        return Fetched(None, {}, b"", raw, peer_names)
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Fetched(int(lines[0].split()[1]), headers, body, raw, peer_names)


async def fetch(h: Harness, sni: str | None, raw: bytes, *, check_name: bool = True) -> Fetched:
    reader, writer = await connect(h, sni, check_name=check_name)
    try:
        cert = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        writer.write(raw)
        data = await read_to_eof(reader)
    finally:
        await close(writer)
    return parse(data, peer_names(cert))


def peer_names(der: bytes | None) -> tuple[str, ...]:
    from cryptography import x509

    if der is None:
        return ()
    certificate = x509.load_der_x509_certificate(der)
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    return tuple(san.value.get_values_for_type(x509.DNSName))


def get(host: str, path: str = WELL_KNOWN, method: str = "GET", extra: str = "") -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n".encode()


def policy_host(name: str, **fields: object) -> PolicyHost:
    return PolicyHost.model_validate({"name": name, "body": POLICY, **fields})


def requests(log: ObservationLog) -> list[HttpRequest]:
    return log.of(HttpRequest)


# -- routing by SNI ---------------------------------------------------------------------------


async def test_sni_picks_each_hosts_own_certificate_and_policy(world: Harness) -> None:
    a, b = ObservationLog(), ObservationLog()
    world.https.add_policy_host(policy_host("mta-sts.a.test"), a.add)
    world.https.add_policy_host(policy_host("mta-sts.b.test", body="version: STSv1\n"), b.add)

    got_a = await fetch(world, "mta-sts.a.test", get("mta-sts.a.test"))
    got_b = await fetch(world, "mta-sts.b.test", get("mta-sts.b.test"))

    assert got_a.peer_names == ("mta-sts.a.test",)
    assert got_b.peer_names == ("mta-sts.b.test",)
    assert (got_a.status, got_a.body) == (200, POLICY.encode())
    assert (got_b.status, got_b.body) == (200, b"version: STSv1\n")
    assert got_a.headers["content-type"] == "text/plain"
    assert got_a.headers["connection"] == "close"
    [hs] = a.of(TlsHandshake)
    assert (hs.host, hs.sni, hs.ok, hs.error) == ("mta-sts.a.test", "mta-sts.a.test", True, None)
    assert hs.version is not None
    assert hs.version.startswith("TLSv1")
    [req] = requests(a)
    assert (req.host, req.sni, req.method, req.target) == (
        "mta-sts.a.test",
        "mta-sts.a.test",
        "GET",
        WELL_KNOWN,
    )
    assert req.headers == (("host", "mta-sts.a.test"),)
    assert (req.status, req.fault, req.body) == (200, None, b"")
    assert req.client.startswith("127.0.0.1:")
    assert [r.host for r in requests(b)] == ["mta-sts.b.test"]
    assert world.unrouted.events == []


async def test_cert_spec_names_reach_the_context_factory(world: Harness) -> None:
    log = ObservationLog()
    spec = policy_host("mta-sts.a.test", cert={"names": ["other.test"]})
    world.https.add_policy_host(spec, log.add)
    got = await fetch(world, None, get("mta-sts.a.test"))
    # Missing SNI: the default certificate, then routing by Host.
    assert got.peer_names == ("world.invalid",)
    got = await fetch(world, "mta-sts.a.test", get("mta-sts.a.test"), check_name=False)
    assert got.peer_names == ("other.test",)
    assert got.status == 200


async def test_unknown_sni_gets_default_certificate_and_is_unrouted(world: Harness) -> None:
    got = await fetch(world, "nobody.test", get("nobody.test"), check_name=False)
    assert got.peer_names == ("world.invalid",)
    assert got.status == 421
    [hs] = world.unrouted.of(TlsHandshake)
    assert (hs.host, hs.sni, hs.ok) == ("world.invalid", "nobody.test", True)
    [req] = requests(world.unrouted)
    assert (req.host, req.sni, req.status) == ("nobody.test", "nobody.test", 421)


async def test_missing_sni_is_routed_by_host_header(world: Harness) -> None:
    log = ObservationLog()
    world.https.add_policy_host(policy_host("mta-sts.a.test"), log.add)
    got = await fetch(world, None, get("MTA-STS.A.test.:443"))
    assert (got.status, got.body) == (200, POLICY.encode())
    [hs] = world.unrouted.of(TlsHandshake)
    assert (hs.sni, hs.host) == (None, "world.invalid")
    [req] = requests(log)
    assert (req.host, req.sni, req.status) == ("mta-sts.a.test", None, 200)


async def test_host_header_naming_another_host_is_misdirected(world: Harness) -> None:
    a, b = ObservationLog(), ObservationLog()
    world.https.add_policy_host(policy_host("mta-sts.a.test"), a.add)
    world.https.add_policy_host(policy_host("mta-sts.b.test"), b.add)
    got = await fetch(world, "mta-sts.a.test", get("mta-sts.b.test"))
    assert got.status == 421
    assert [(r.host, r.status) for r in requests(a)] == [("mta-sts.b.test", 421)]
    assert requests(b) == []


async def test_unknown_host_header_without_sni_is_misdirected(world: Harness) -> None:
    got = await fetch(world, None, get("nobody.test"))
    assert got.status == 421
    assert [(r.host, r.status) for r in requests(world.unrouted)] == [("nobody.test", 421)]


async def test_removed_host_is_no_longer_served(world: Harness) -> None:
    log = ObservationLog()
    world.https.add_policy_host(policy_host("mta-sts.a.test"), log.add)
    world.https.remove_host("MTA-STS.a.test")
    world.https.remove_host("never-staged.test")  # ignored
    got = await fetch(world, "mta-sts.a.test", get("mta-sts.a.test"), check_name=False)
    assert got.peer_names == ("world.invalid",)
    assert got.status == 421
    assert log.events == []


async def test_failed_handshake_is_logged_to_the_host(world: Harness) -> None:
    log = ObservationLog()
    world.https.add_policy_host(policy_host("mta-sts.a.test"), log.add)
    host, port = world.addr
    context = ssl.create_default_context()  # does not trust the world's CA
    with pytest.raises(ssl.SSLCertVerificationError):
        await asyncio.open_connection(host, port, ssl=context, server_hostname="mta-sts.a.test")
    found = await log.wait_for(lambda lg: lg.of(TlsHandshake) or None, time.monotonic() + 3)
    assert found is not None
    [hs] = found
    assert (hs.host, hs.sni, hs.ok, hs.version) == ("mta-sts.a.test", "mta-sts.a.test", False, None)
    assert hs.error
    assert requests(log) == []


# -- policy host behaviour (RFC 8461 section 3.3) ---------------------------------------------


@pytest.mark.parametrize("status", [200, 201, 204, 301, 304, 404, 418, 500, 503])
async def test_policy_status_is_served_as_scripted(world: Harness, status: int) -> None:
    log = ObservationLog()
    world.https.add_policy_host(policy_host("mta-sts.a.test", status=status), log.add)
    got = await fetch(world, "mta-sts.a.test", get("mta-sts.a.test"))
    assert got.status == status
    # RFC 9110: 204 and 304 carry no content.
    assert got.body == (b"" if status in (204, 304) else POLICY.encode())
    assert [r.status for r in requests(log)] == [status]


async def test_informational_status_is_written_then_connection_closed(world: Harness) -> None:
    world.https.add_policy_host(policy_host("mta-sts.a.test", status=103), ObservationLog().add)
    got = await fetch(world, "mta-sts.a.test", get("mta-sts.a.test"))
    assert got.raw.startswith(b"HTTP/1.1 103 Early Hints\r\n")
    assert got.body == b""


async def test_other_paths_are_404_and_other_methods_405(world: Harness) -> None:
    log = ObservationLog()
    world.https.add_policy_host(policy_host("mta-sts.a.test"), log.add)
    missing = await fetch(world, "mta-sts.a.test", get("mta-sts.a.test", "/index.html"))
    posted = await fetch(
        world,
        "mta-sts.a.test",
        get("mta-sts.a.test", method="POST", extra="Content-Length: 2\r\n") + b"hi",
    )
    assert missing.status == 404
    assert posted.status == 405
    assert posted.headers["allow"] == "GET, HEAD"
    assert [(r.target, r.status, r.body) for r in requests(log)] == [
        ("/index.html", 404, b""),
        (WELL_KNOWN, 405, b"hi"),
    ]


async def test_query_string_still_reaches_the_policy(world: Harness) -> None:
    log = ObservationLog()
    world.https.add_policy_host(policy_host("mta-sts.a.test"), log.add)
    got = await fetch(world, "mta-sts.a.test", get("mta-sts.a.test", WELL_KNOWN + "?x=1"))
    assert got.status == 200
    assert requests(log)[0].target == WELL_KNOWN + "?x=1"


async def test_head_announces_the_length_without_a_body(world: Harness) -> None:
    world.https.add_policy_host(policy_host("mta-sts.a.test"), ObservationLog().add)
    got = await fetch(world, "mta-sts.a.test", get("mta-sts.a.test", method="HEAD"))
    assert got.status == 200
    assert got.headers["content-length"] == str(len(POLICY))
    assert got.body == b""


async def test_redirect_is_a_301_with_location(world: Harness) -> None:
    log = ObservationLog()
    spec = policy_host("mta-sts.a.test", fault="redirect", redirect_to="https://mta-sts.b.test/x", status=200)
    world.https.add_policy_host(spec, log.add)
    got = await fetch(world, "mta-sts.a.test", get("mta-sts.a.test"))
    assert got.status == 301
    assert got.headers["location"] == "https://mta-sts.b.test/x"
    assert got.body == b""
    assert [(r.status, r.fault) for r in requests(log)] == [(301, "redirect")]


async def test_missing_content_type_and_extra_headers(world: Harness) -> None:
    spec = policy_host("mta-sts.a.test", content_type=None, extra_headers=[["Cache-Control", "max-age=60"]])
    world.https.add_policy_host(spec, ObservationLog().add)
    got = await fetch(world, "mta-sts.a.test", get("mta-sts.a.test"))
    assert got.status == 200
    assert "content-type" not in got.headers
    assert got.headers["cache-control"] == "max-age=60"


async def test_pad_to_bytes_serves_a_body_of_that_size(world: Harness) -> None:
    spec = policy_host("mta-sts.a.test", pad_to_bytes=70_000)
    world.https.add_policy_host(spec, ObservationLog().add)
    got = await fetch(world, "mta-sts.a.test", get("mta-sts.a.test"))
    assert got.headers["content-length"] == "70000"
    assert len(got.body) == 70_000
    assert got.body.startswith(POLICY.encode())
    padding = got.body[len(POLICY) :].split(b"\r\n")
    assert padding[-1] == b""
    assert all(PAD_LINE.fullmatch(line + b"\r\n") for line in padding[:-1])


async def test_slow_body_trickles_and_survives_a_client_leaving(world: Harness) -> None:
    log = ObservationLog()
    spec = policy_host("mta-sts.a.test", fault="slow-body", slow_interval_s=0.05)
    world.https.add_policy_host(spec, log.add)
    reader, writer = await connect(world, "mta-sts.a.test")
    try:
        writer.write(get("mta-sts.a.test"))
        async with asyncio.timeout(CLIENT_TIMEOUT_S):
            head = await reader.readuntil(b"\r\n\r\n")
            first = await reader.readexactly(1)
    finally:
        await close(writer)
    got = parse(head)
    assert got.status == 200
    assert got.headers["content-length"] == str(len(POLICY))  # the full length, at once
    assert first == POLICY[:1].encode()
    assert [(r.status, r.fault) for r in requests(log)] == [(200, "slow-body")]
    # The server is still healthy: a second request is answered.
    world.https.remove_host("mta-sts.a.test")
    world.https.add_policy_host(policy_host("mta-sts.a.test"), log.add)
    assert (await fetch(world, "mta-sts.a.test", get("mta-sts.a.test"))).status == 200


async def test_slow_body_completes_for_a_patient_client(world: Harness) -> None:
    spec = policy_host("mta-sts.a.test", fault="slow-body", body="version: STSv1\n")
    world.https.add_policy_host(spec, ObservationLog().add)
    got = await fetch(world, "mta-sts.a.test", get("mta-sts.a.test"))
    assert (got.status, got.body) == (200, b"version: STSv1\n")


async def test_reset_closes_without_a_response(world: Harness) -> None:
    log = ObservationLog()
    world.https.add_policy_host(policy_host("mta-sts.a.test", fault="reset"), log.add)
    got = await fetch(world, "mta-sts.a.test", get("mta-sts.a.test"))
    assert got.raw == b""
    assert [(r.status, r.fault, r.method) for r in requests(log)] == [(None, "reset", "GET")]


async def test_refuse_is_accepted_and_stages_nothing(world: Harness) -> None:
    world.https.add_policy_host(policy_host("mta-sts.a.test", fault="refuse"), ObservationLog().add)
    got = await fetch(world, "mta-sts.a.test", get("mta-sts.a.test"), check_name=False)
    assert got.peer_names == ("world.invalid",)
    assert got.status == 421


# -- report collector (RFC 8460 section 5.4) --------------------------------------------------


def post(host: str, path: str, body: bytes, content_type: str | None) -> bytes:
    ct = f"Content-Type: {content_type}\r\n" if content_type else ""
    return get(host, path, "POST", f"{ct}Content-Length: {len(body)}\r\n") + body


async def test_report_post_is_recorded_with_type_and_body(world: Harness) -> None:
    log = ObservationLog()
    world.https.add_report_endpoint("tlsrpt.a.test", "/v1/tlsrpt", log.add, status=201)
    body = b"\x1f\x8b\x08\x00compressed-report"
    got = await fetch(world, "tlsrpt.a.test", post("tlsrpt.a.test", "/v1/tlsrpt", body, "application/tlsrpt+gzip"))
    assert got.status == 201
    [report] = log.of(ReportPost)
    assert (report.path, report.content_type, report.body, report.sni) == (
        "/v1/tlsrpt",
        "application/tlsrpt+gzip",
        body,
        "tlsrpt.a.test",
    )
    [req] = requests(log)
    assert (req.method, req.status, req.body) == ("POST", 201, body)
    assert ("content-type", "application/tlsrpt+gzip") in req.headers


async def test_report_without_content_type_is_still_recorded(world: Harness) -> None:
    log = ObservationLog()
    world.https.add_report_endpoint("tlsrpt.a.test", "/r", log.add)
    got = await fetch(world, "tlsrpt.a.test", post("tlsrpt.a.test", "/r", b"{}", None))
    assert got.status == 200
    assert [(r.content_type, r.body) for r in log.of(ReportPost)] == [(None, b"{}")]


async def test_report_endpoint_rejects_other_methods_paths_and_oversize(world: Harness) -> None:
    log = ObservationLog()
    world.https.add_report_endpoint("tlsrpt.a.test", "/r", log.add)
    wrong_method = await fetch(world, "tlsrpt.a.test", get("tlsrpt.a.test", "/r"))
    wrong_path = await fetch(world, "tlsrpt.a.test", post("tlsrpt.a.test", "/x", b"{}", None))
    too_big = await fetch(
        world,
        "tlsrpt.a.test",
        get("tlsrpt.a.test", "/r", "POST", f"Content-Length: {REPORT_BODY_LIMIT + 1}\r\n") + b"x" * 1000,
    )
    assert (wrong_method.status, wrong_method.headers["allow"]) == (405, "POST")
    assert wrong_path.status == 404
    assert too_big.status == 413
    assert log.of(ReportPost) == []
    assert [r.status for r in requests(log)] == [405, 404, 413]


async def test_report_endpoint_and_policy_share_a_host(world: Harness) -> None:
    log = ObservationLog()
    world.https.add_report_endpoint("mta-sts.a.test", "/r", log.add)
    world.https.add_policy_host(policy_host("mta-sts.a.test"), log.add)
    assert (await fetch(world, "mta-sts.a.test", get("mta-sts.a.test"))).status == 200
    assert (await fetch(world, "mta-sts.a.test", post("mta-sts.a.test", "/r", b"1", None))).status == 200
    assert len(log.of(ReportPost)) == 1


# -- hostile clients --------------------------------------------------------------------------


async def test_garbage_request_gets_400(world: Harness) -> None:
    log = ObservationLog()
    world.https.add_policy_host(policy_host("mta-sts.a.test"), log.add)
    got = await fetch(world, "mta-sts.a.test", b"\x00\x01 NOT HTTP AT ALL\r\n\r\n")
    assert got.status == 400
    assert [(r.method, r.status) for r in requests(log)] == [("", 400)]


async def test_oversized_headers_get_431(world: Harness) -> None:
    got = await fetch(world, "x.test", get("x.test", extra=f"X-Big: {'a' * 20000}\r\n"), check_name=False)
    assert got.status == 431


async def test_plaintext_client_fails_the_handshake(world: Harness) -> None:
    host, port = world.addr
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(get("x.test"))
        data = await read_to_eof(reader)
    finally:
        await close(writer)
    assert not data.startswith(b"HTTP/")
    found = await world.unrouted.wait_for(lambda lg: lg.of(TlsHandshake) or None, time.monotonic() + 3)
    assert found is not None
    assert found[0].ok is False


async def test_slowloris_request_hits_the_deadline(ca: trustme.CA) -> None:
    h = await start(ca, request_timeout_s=0.2)
    try:
        log = ObservationLog()
        h.https.add_policy_host(policy_host("mta-sts.a.test"), log.add)
        reader, writer = await connect(h, "mta-sts.a.test")
        try:
            writer.write(b"GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: mta-")  # never finished
            data = await read_to_eof(reader)
        finally:
            await close(writer)
        assert data == b"" or parse(data).status == 408
        assert [r.status for r in requests(log)] == [408]
    finally:
        await h.https.stop()
    h.https.check_errors()


async def test_silent_client_hits_the_handshake_deadline(ca: trustme.CA) -> None:
    h = await start(ca, request_timeout_s=0.2)
    try:
        host, port = h.addr
        reader, writer = await asyncio.open_connection(host, port)
        try:
            data = await read_to_eof(reader)  # the server gives up and closes
        finally:
            await close(writer)
        assert data == b""
        [hs] = h.unrouted.of(TlsHandshake)
        assert (hs.ok, hs.sni) == (False, None)
    finally:
        await h.https.stop()


async def test_stop_closes_open_connections(ca: trustme.CA) -> None:
    h = await start(ca)
    reader, writer = await connect(h, None)
    try:
        await h.https.stop()
        assert await read_to_eof(reader) == b""
    finally:
        await close(writer)
    with pytest.raises(WorldError):
        _ = h.https.address


# -- staging --------------------------------------------------------------------------------


async def test_staging_errors(world: Harness) -> None:
    sink = ObservationLog().add
    world.https.add_policy_host(policy_host("mta-sts.a.test"), sink)
    with pytest.raises(HttpsStagingError):
        world.https.add_policy_host(policy_host("mta-sts.a.test"), sink)
    with pytest.raises(HttpsStagingError):
        world.https.add_report_endpoint("mta-sts.a.test", "/r", sink, cert=CertSpec(names=("z",)))
    with pytest.raises(HttpsStagingError):
        world.https.add_policy_host(policy_host("mta-sts.{domain}"), sink)
    with pytest.raises(HttpsStagingError):
        world.https.add_policy_host(policy_host("b.test", extra_headers=[["Content-Length", "1"]]), sink)
    with pytest.raises(HttpsStagingError):
        world.https.add_policy_host(policy_host("b.test", extra_headers=[["X", "a\r\nb"]]), sink)
    with pytest.raises(HttpsStagingError):
        world.https.add_policy_host(policy_host("b.test", fault=HttpFault.REDIRECT), sink)
    world.https.add_report_endpoint("c.test", "/r", sink)
    with pytest.raises(HttpsStagingError):
        world.https.add_report_endpoint("c.test", "/r", sink)
    with pytest.raises(HttpsStagingError):
        world.https.add_report_endpoint("c.test", "r", sink)


async def test_start_twice_is_an_error(world: Harness) -> None:
    with pytest.raises(WorldError):
        await world.https.start("127.0.0.1", 0)


async def test_stop_interrupts_a_slow_body(ca: trustme.CA) -> None:
    h = await start(ca)
    log = ObservationLog()
    spec = policy_host("mta-sts.a.test", fault="slow-body", slow_interval_s=30)
    h.https.add_policy_host(spec, log.add)
    reader, writer = await connect(h, "mta-sts.a.test")
    try:
        writer.write(get("mta-sts.a.test"))
        async with asyncio.timeout(CLIENT_TIMEOUT_S):
            head = await reader.readuntil(b"\r\n\r\n")
        await h.https.stop()
        assert await read_to_eof(reader) == b""  # no body byte: the trickle was cut short
    finally:
        await close(writer)
    assert parse(head).status == 200
    assert [(r.status, r.fault) for r in requests(log)] == [(200, "slow-body")]
    h.https.check_errors()


async def test_report_with_expect_100_continue(world: Harness) -> None:
    log = ObservationLog()
    world.https.add_report_endpoint("tlsrpt.a.test", "/r", log.add)
    reader, writer = await connect(world, "tlsrpt.a.test")
    try:
        writer.write(get("tlsrpt.a.test", "/r", "POST", "Content-Length: 2\r\nExpect: 100-continue\r\n"))
        async with asyncio.timeout(CLIENT_TIMEOUT_S):
            interim = await reader.readuntil(b"\r\n\r\n")
        writer.write(b"{}")
        final = parse(await read_to_eof(reader))
    finally:
        await close(writer)
    assert interim.startswith(b"HTTP/1.1 100 ")
    assert final.status == 200
    assert [r.body for r in log.of(ReportPost)] == [b"{}"]
