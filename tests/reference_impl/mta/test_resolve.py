"""The dnspython adapter against a tiny authoritative DNS on 127.0.0.1 (port 0)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from reference_impl.mta.mxplan import DnsQuestion, LookupStatus, RouteKind
from reference_impl.mta.resolve import DnsResolver, resolve_route

from .helpers import FakeDns


@pytest.fixture
async def dns() -> AsyncIterator[FakeDns]:
    server = await FakeDns.start()
    try:
        yield server
    finally:
        server.close()


def _resolver(dns: FakeDns, timeout: float = 2.0) -> DnsResolver:
    return DnsResolver(*dns.address, timeout=timeout)


async def test_mx_route_with_ad_bit(dns: FakeDns) -> None:
    dns.add_mx("d.test", 20, "mx2.d.test")
    dns.add_mx("d.test", 10, "mx1.d.test")
    dns.add_a("mx1.d.test", "127.0.0.2")
    dns.add_a("mx2.d.test", "127.0.0.3")
    dns.ad = True
    route = await resolve_route("d.test", _resolver(dns))
    assert route.kind is RouteKind.DELIVER
    assert [(h.name, h.addresses) for h in route.hosts] == [
        ("mx1.d.test", ("127.0.0.2",)),
        ("mx2.d.test", ("127.0.0.3",)),
    ]
    assert route.mx_authenticated
    assert ("d.test", "MX") in dns.queries


async def test_no_ad_bit(dns: FakeDns) -> None:
    dns.add_mx("d.test", 10, "mx1.d.test")
    result = await _resolver(dns).lookup(DnsQuestion("d.test", "MX"))
    assert result.status is LookupStatus.OK and not result.authenticated


async def test_null_mx(dns: FakeDns) -> None:
    dns.add_mx("d.test", 0, ".")
    route = await resolve_route("d.test", _resolver(dns))
    assert (route.kind, route.status) == (RouteKind.BOUNCE, "5.1.10")


async def test_implicit_mx(dns: FakeDns) -> None:
    dns.add_a("d.test", "127.0.0.4")
    route = await resolve_route("d.test", _resolver(dns))
    assert route.kind is RouteKind.DELIVER
    assert route.hosts[0].implicit and route.hosts[0].addresses == ("127.0.0.4",)


async def test_nxdomain_servfail_and_timeout(dns: FakeDns) -> None:
    dns.rcodes["gone.test"] = "NXDOMAIN"
    dns.rcodes["broken.test"] = "SERVFAIL"
    dns.silent.add("slow.test")
    resolver = _resolver(dns, timeout=0.3)
    assert (await resolve_route("gone.test", resolver)).kind is RouteKind.BOUNCE
    assert (await resolve_route("nothing.test", resolver)).kind is RouteKind.BOUNCE
    assert (await resolve_route("broken.test", resolver)).kind is RouteKind.DEFER
    slow = await resolver.lookup(DnsQuestion("slow.test", "MX"))
    assert (slow.status, slow.detail) == (LookupStatus.TEMPFAIL, "timeout")


async def test_invalid_name_is_permanent(dns: FakeDns) -> None:
    result = await _resolver(dns).lookup(DnsQuestion("a" * 70 + ".test", "MX"))
    assert result.status is LookupStatus.NXDOMAIN


async def test_tlsa_answers_in_presentation_form(dns: FakeDns) -> None:
    # RFC 6698 2.2 / RFC 8460 4.5: decimal fields, unbroken lower-case hex; the AD bit kept.
    dns.add_tlsa("_25._tcp.mx1.d.test", 3, 1, 1, bytes(range(32)))
    dns.add_tlsa("_25._tcp.mx1.d.test", 2, 0, 0, b"\xab")
    dns.ad = True
    result = await _resolver(dns).lookup(DnsQuestion("_25._tcp.mx1.d.test", "TLSA"))
    assert result.status is LookupStatus.OK and result.authenticated
    assert result.tlsa == ("3 1 1 " + bytes(range(32)).hex(), "2 0 0 ab")
    missing = await _resolver(dns).lookup(DnsQuestion("_25._tcp.mx2.d.test", "TLSA"))
    assert missing.status is LookupStatus.NXDOMAIN and missing.tlsa == ()


async def test_a_digest_of_the_wrong_length_fails_the_whole_lookup(dns: FakeDns) -> None:
    # dnspython refuses the message (FORMERR): the MTA sees a failed lookup, not a record.
    dns.add_tlsa("_25._tcp.mx1.d.test", 3, 1, 1, b"\xab\xcd")
    result = await _resolver(dns, timeout=0.5).lookup(DnsQuestion("_25._tcp.mx1.d.test", "TLSA"))
    assert result.status is LookupStatus.TEMPFAIL
