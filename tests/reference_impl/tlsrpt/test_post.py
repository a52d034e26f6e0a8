"""RFC 8460 sections 3 and 5.4: the HTTPS POST of a report, against the world's collector."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme
from hypothesis import given
from hypothesis import strategies as st

from conformance.world.https import WorldHttps
from conformance.world.observe import ObservationLog, ReportPost, TlsHandshake
from conformance.world.spec import CertSpec
from reference_impl.tlsrpt.errors import TlsRptError
from reference_impl.tlsrpt.post import PostTarget, post_report, post_target

BODY = b"\x1f\x8b\x08\x00report"
GZIP = "application/tlsrpt+gzip"


@dataclass
class Collector:
    https: WorldHttps
    ca_file: Path
    log: ObservationLog

    @property
    def port(self) -> int:
        return self.https.address[1]

    def uri(self, host: str = "tlsrpt.d.test", path: str = "/tlsrpt") -> str:
        return f"https://{host}{path}"


async def loopback(host: str) -> list[str]:
    return ["127.0.0.1"]


@pytest.fixture
async def collector(tmp_path: Path) -> AsyncIterator[Collector]:
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))

    def context_for(host: str, spec: CertSpec) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ca.issue_cert(*(spec.names or (host,))).configure_cert(context)
        return context

    https = WorldHttps(context_for, request_timeout_s=5.0)
    await https.start("127.0.0.1", 0)
    log = ObservationLog()
    try:
        yield Collector(https, ca_file, log)
    finally:
        await https.stop()
        https.check_errors()


async def test_a_2xx_is_a_delivery(collector: Collector) -> None:
    collector.https.add_report_endpoint("tlsrpt.d.test", "/tlsrpt", collector.log.add, status=201)
    result = await post_report(
        collector.uri(path="/tlsrpt?k=v"),
        BODY,
        GZIP,
        resolve=loopback,
        ca_file=collector.ca_file,
        port_override=collector.port,
    )
    assert (result.delivered, result.status, result.certificate_error) == (True, 201, None)
    [seen] = collector.log.of(ReportPost)
    assert (seen.body, seen.content_type, seen.sni, seen.path) == (BODY, GZIP, "tlsrpt.d.test", "/tlsrpt?k=v")


async def test_other_statuses_are_failures(collector: Collector) -> None:
    collector.https.add_report_endpoint("tlsrpt.d.test", "/tlsrpt", collector.log.add, status=500)
    result = await post_report(
        collector.uri(), BODY, GZIP, resolve=loopback, ca_file=collector.ca_file, port_override=collector.port
    )
    assert (result.delivered, result.status, result.detail) == (False, 500, "status 500")
    missing = await post_report(
        collector.uri(path="/elsewhere"),
        BODY,
        GZIP,
        resolve=loopback,
        ca_file=collector.ca_file,
        port_override=collector.port,
    )
    assert (missing.delivered, missing.status) == (False, 404)


async def test_an_invalid_certificate_is_ignored_unless_strict(collector: Collector) -> None:
    # Section 3: "Report submitters MAY ignore certificate validation errors".
    wrong = CertSpec(names=("someone-else.test",))
    collector.https.add_report_endpoint("tlsrpt.d.test", "/tlsrpt", collector.log.add, cert=wrong)
    lenient = await post_report(
        collector.uri(), BODY, GZIP, resolve=loopback, ca_file=collector.ca_file, port_override=collector.port
    )
    assert lenient.delivered and lenient.certificate_error is not None
    assert "mismatch" in lenient.certificate_error.lower() or "match" in lenient.certificate_error.lower()
    strict = await post_report(
        collector.uri(),
        BODY,
        GZIP,
        resolve=loopback,
        ca_file=collector.ca_file,
        port_override=collector.port,
        verify_strict=True,
    )
    assert not strict.delivered and strict.status is None and strict.certificate_error is not None
    assert len(collector.log.of(ReportPost)) == 1  # only the lenient one posted
    assert not collector.log.of(TlsHandshake)[0].ok  # the verified handshake failed first


async def test_an_explicit_port_wins_over_the_override(collector: Collector) -> None:
    collector.https.add_report_endpoint("tlsrpt.d.test", "/tlsrpt", collector.log.add)
    uri = f"https://tlsrpt.d.test:{collector.port}/tlsrpt"
    result = await post_report(uri, BODY, GZIP, resolve=loopback, ca_file=collector.ca_file, port_override=1)
    assert result.delivered


async def test_network_failures_are_failed_attempts(collector: Collector, tmp_path: Path) -> None:
    async def nowhere(host: str) -> list[str]:
        return []

    no_address = await post_report(collector.uri(), BODY, GZIP, resolve=nowhere, ca_file=None, port_override=1)
    assert not no_address.delivered and "no address" in no_address.detail
    refused = await post_report(collector.uri(), BODY, GZIP, resolve=loopback, ca_file=None, port_override=1)
    assert not refused.delivered and refused.status is None

    accepted: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # never answers; closed when the test ends

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    try:
        port = int(server.sockets[0].getsockname()[1])
        slow = await post_report(
            collector.uri(), BODY, GZIP, resolve=loopback, ca_file=None, port_override=port, timeout_s=0.3
        )
        assert not slow.delivered and "within" in slow.detail
    finally:
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()
    not_https = await post_report("http://d.test/x", BODY, GZIP, resolve=loopback, ca_file=None)
    assert not not_https.delivered and "https" in not_https.detail


def test_post_target() -> None:
    assert post_target("https://c.test/v1/tlsrpt") == PostTarget("c.test", 443, "/v1/tlsrpt", "c.test")
    assert post_target("HTTPS://c.test", 8443) == PostTarget("c.test", 8443, "/", "c.test")
    assert post_target("https://c.test:9443/r?a=b", 8443) == PostTarget("c.test", 9443, "/r?a=b", "c.test:9443")
    v6 = post_target("https://[2001:db8::1]/r")
    assert (v6.host, v6.host_header, v6.is_ip_literal) == ("2001:db8::1", "[2001:db8::1]", True)
    for bad in ("mailto:a@b.test", "https:///r", "https://c.test:99999/", "https://bücher.test/"):
        with pytest.raises(TlsRptError):
            post_target(bad)


@given(st.text(max_size=60), st.one_of(st.none(), st.integers(1, 65535)))
def test_post_target_gives_a_target_or_its_error(uri: str, override: int | None) -> None:
    try:
        target = post_target(uri, override)
    except TlsRptError as exc:
        assert exc.rule == "rua-https-unusable"  # noqa: PT017 - the error's own field is the property
        return
    assert target.host and 0 < target.port < 65536 and target.target.startswith("/")
