"""Tests for the pure zone logic: record validation and how questions are answered."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.world.dns_zone import (
    MAX_CNAME_CHAIN,
    AaaaData,
    AData,
    CnameData,
    DnsSpecError,
    DnsZoneError,
    MxData,
    Rcode,
    SrvData,
    TlsaData,
    TxtData,
    ZoneTable,
    compile_zone,
    normalize_name,
    parse_rdata,
)
from conformance.world.observe import Observation
from conformance.world.spec import DnsFault, DnsRecord, DnsRule, DnsSpec, RecordType

TYPES: tuple[RecordType, ...] = ("A", "AAAA", "MX", "TXT", "SRV", "CNAME", "TLSA")


def ignore(_: Observation) -> None:
    """A sink for zones whose queries these tests do not look at."""


def rec(name: str, rtype: RecordType, value: str | tuple[str, ...], ttl: int = 300) -> DnsRecord:
    return DnsRecord(name=name, type=rtype, value=value, ttl=ttl)


def table(*zones: tuple[str, DnsSpec]) -> ZoneTable:
    t = ZoneTable()
    for apex, spec in zones:
        t.add(compile_zone(apex, spec, ignore))
    return t


# -- presentation forms ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rtype", "value", "expected"),
    [
        ("A", "127.0.0.1", AData("127.0.0.1")),
        ("AAAA", "::0001", AaaaData("::1")),
        ("MX", "10 MX1.Example.TEST.", MxData(10, "mx1.example.test")),
        ("MX", "0 .", MxData(0, "")),
        ("SRV", "5 0 5269 xmpp.example.test", SrvData(5, 0, 5269, "xmpp.example.test")),
        ("CNAME", "target.example.test.", CnameData("target.example.test")),
        ("TLSA", "3 1 1 ABCD ef01", TlsaData(3, 1, 1, bytes.fromhex("abcdef01"))),
        ("TXT", "v=STSv1; id=1", TxtData((b"v=STSv1; id=1",))),
        ("TXT", ("v=STSv1; ", "id=1"), TxtData((b"v=STSv1; ", b"id=1"))),
        ("TXT", "", TxtData((b"",))),
    ],
)
def test_parse_rdata_good(rtype: str, value: str | tuple[str, ...], expected: object) -> None:
    assert parse_rdata(rtype, value) == expected


@pytest.mark.parametrize(
    ("rtype", "value", "reason"),
    [
        ("A", "256.0.0.1", "IPv4"),
        ("A", "::1", "IPv4"),
        ("AAAA", "127.0.0.1", "IPv6"),
        ("MX", "mx1.example.test", "preference exchange"),
        ("MX", "-1 mx1.example.test", "not a number"),
        ("MX", "65536 mx1.example.test", "above 65535"),
        ("MX", "10 bad..name", "empty label"),
        ("SRV", "1 2 3", "priority weight port target"),
        ("SRV", "1 2 70000 x.test", "port"),
        ("CNAME", ".", "empty name"),
        ("CNAME", "a b", "one target"),
        ("TLSA", "3 1 1", "usage selector"),
        ("TLSA", "3 1 1 xyz", "not hex"),
        ("TLSA", "256 1 1 ab", "above 255"),
        ("TXT", (), "at least one"),
        ("A", ("127.0.0.1",), "only TXT"),
        ("NS", "ns.example.test", "unsupported"),
    ],
)
def test_parse_rdata_bad(rtype: str, value: str | tuple[str, ...], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_rdata(rtype, value)


def test_long_txt_is_split_at_255_octets() -> None:
    data = parse_rdata("TXT", "a" * 600)
    assert isinstance(data, TxtData)
    assert [len(s) for s in data.strings] == [255, 255, 90]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("Example.TEST.", "example.test"), ("_mta-sts.example.test", "_mta-sts.example.test")],
)
def test_normalize_name(text: str, expected: str) -> None:
    assert normalize_name(text) == expected


@pytest.mark.parametrize("text", ["", ".", "a..b", "-a.test", "*.example.test", "é.test", "a" * 64])
def test_normalize_name_rejects(text: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the reason varies per input
        normalize_name(text)


@given(st.sampled_from(TYPES), st.one_of(st.text(), st.lists(st.text(), max_size=4).map(tuple)))
def test_parse_rdata_is_total(rtype: str, value: str | tuple[str, ...]) -> None:
    try:
        data = parse_rdata(rtype, value)
    except ValueError:
        return
    assert isinstance(data, AData | AaaaData | MxData | TxtData | SrvData | CnameData | TlsaData)


@given(st.text())
def test_normalize_name_is_total(text: str) -> None:
    try:
        name = normalize_name(text, allow_root=True)
    except ValueError:
        return
    assert normalize_name(name, allow_root=True) == name  # idempotent


@given(st.lists(st.text(max_size=700), min_size=1, max_size=5))
def test_txt_split_round_trip(strings: list[str]) -> None:
    data = parse_rdata("TXT", tuple(strings))
    assert isinstance(data, TxtData)
    assert all(len(s) <= 255 for s in data.strings)
    assert b"".join(data.strings) == "".join(strings).encode()


@given(
    st.integers(0, 65535),
    st.integers(0, 65535),
    st.integers(0, 65535),
    st.from_regex(r"\A[a-z0-9]{1,10}(\.[a-z0-9_]{1,10}){0,3}\Z"),
)
def test_srv_and_mx_round_trip(prio: int, weight: int, port: int, target: str) -> None:
    assert parse_rdata("SRV", f"{prio} {weight} {port} {target}.") == SrvData(prio, weight, port, target)
    assert parse_rdata("MX", f"{prio} {target}") == MxData(prio, target)


@given(st.ip_addresses(v=4), st.ip_addresses(v=6))
def test_address_round_trip(v4: ipaddress.IPv4Address, v6: ipaddress.IPv6Address) -> None:
    assert parse_rdata("A", str(v4)) == AData(str(v4))
    assert parse_rdata("AAAA", v6.exploded) == AaaaData(str(v6))


# -- compiling zones -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        (DnsSpec(records=(rec("x.other.test", "A", "127.0.0.1"),)), "outside the zone"),
        (DnsSpec(records=(rec("bad name.example.test", "A", "127.0.0.1"),)), "owner name"),
        (DnsSpec(records=(rec("x.example.test", "A", "1.2.3"),)), "IPv4"),
        (DnsSpec(records=(rec("x.example.test", "A", "127.0.0.1", ttl=2**31),)), "TTL"),
        (
            DnsSpec(
                records=(
                    rec("x.example.test", "CNAME", "y.example.test"),
                    rec("x.example.test", "TXT", "hello"),
                )
            ),
            "CNAME cannot share",
        ),
        (
            DnsSpec(
                records=(
                    rec("x.example.test", "A", "127.0.0.1"),
                    rec("X.example.test.", "A", "127.0.0.1"),
                )
            ),
            "duplicate",
        ),
        (DnsSpec(faults=(DnsRule(name="x.other.test", fault=DnsFault.SERVFAIL),)), "outside"),
    ],
)
def test_compile_zone_rejects(spec: DnsSpec, reason: str) -> None:
    with pytest.raises(DnsSpecError, match=reason):
        compile_zone("example.test", spec, ignore)


def test_spec_error_names_the_record() -> None:
    with pytest.raises(DnsSpecError) as info:
        compile_zone("example.test", DnsSpec(records=(rec("m.example.test", "MX", "x"),)), ignore)
    assert (info.value.name, info.value.rtype, info.value.value) == ("m.example.test", "MX", "x")
    assert "preference" in info.value.reason


def test_bad_apex_and_duplicate_zone() -> None:
    with pytest.raises(DnsZoneError):
        compile_zone("bad..apex", DnsSpec(), ignore)
    t = table(("example.test", DnsSpec()))
    with pytest.raises(DnsZoneError, match="already"):
        t.add(compile_zone("Example.Test.", DnsSpec(), ignore))


# -- answering -------------------------------------------------------------------------------

SPEC = DnsSpec(
    records=(
        rec("mx1.example.test", "A", "127.0.0.5"),
        rec("_25._tcp.mx1.example.test", "TLSA", "3 1 1 00"),
        rec("a1.example.test", "CNAME", "a2.example.test"),
        rec("a2.example.test", "CNAME", "mx1.example.test"),
        rec("loop1.example.test", "CNAME", "loop2.example.test"),
        rec("loop2.example.test", "CNAME", "loop1.example.test"),
        rec("away.example.test", "CNAME", "elsewhere.invalid"),
        rec("cross.example.test", "CNAME", "host.other.test"),
        rec("dangling.example.test", "CNAME", "missing.example.test"),
    ),
    dnssec=True,
)
OTHER = DnsSpec(records=(rec("host.other.test", "A", "127.0.0.6"),))


def test_nxdomain_nodata_and_empty_non_terminal() -> None:
    t = table(("example.test", SPEC))
    nx = t.resolve("nope.example.test", "A")
    assert nx.rcode is Rcode.NXDOMAIN
    assert [r.rtype for r in nx.authority] == ["SOA"]
    nodata = t.resolve("mx1.example.test", "TXT")
    assert (nodata.rcode, nodata.answers) == (Rcode.NOERROR, ())
    assert [r.rtype for r in nodata.authority] == ["SOA"]
    ent = t.resolve("_tcp.mx1.example.test", "A")  # RFC 8020
    assert (ent.rcode, ent.answers) == (Rcode.NOERROR, ())
    apex = t.resolve("example.test", "SOA")
    assert [r.rtype for r in apex.answers] == ["SOA"]


def test_cname_chain_within_and_across_zones() -> None:
    t = table(("example.test", SPEC), ("other.test", OTHER))
    chain = t.resolve("a1.example.test", "A")
    assert [(r.name, r.rtype) for r in chain.answers] == [
        ("a1.example.test", "CNAME"),
        ("a2.example.test", "CNAME"),
        ("mx1.example.test", "A"),
    ]
    assert chain.ad
    cross = t.resolve("cross.example.test", "A")
    assert [r.rtype for r in cross.answers] == ["CNAME", "A"]
    assert not cross.ad  # other.test is not a DNSSEC zone
    only_cname = t.resolve("a1.example.test", "CNAME")
    assert [r.rtype for r in only_cname.answers] == ["CNAME"]


def test_cname_out_of_world_loop_and_dangling() -> None:
    t = table(("example.test", SPEC))
    away = t.resolve("away.example.test", "A")
    assert (away.rcode, [r.rtype for r in away.answers]) == (Rcode.NOERROR, ["CNAME"])
    loop = t.resolve("loop1.example.test", "A")
    assert loop.rcode is Rcode.NOERROR
    assert len(loop.answers) == 2
    dangling = t.resolve("dangling.example.test", "A")
    assert dangling.rcode is Rcode.NXDOMAIN  # RFC 2308 2.1: the last name decides
    assert [r.rtype for r in dangling.answers] == ["CNAME"]


def test_long_cname_chain_is_bounded() -> None:
    n = MAX_CNAME_CHAIN + 5
    records = tuple(rec(f"c{i}.example.test", "CNAME", f"c{i + 1}.example.test") for i in range(n))
    t = table(("example.test", DnsSpec(records=records)))
    res = t.resolve("c0.example.test", "A")
    assert res.rcode is Rcode.NOERROR
    assert len(res.answers) == MAX_CNAME_CHAIN + 1


def test_longest_suffix_routing_and_removal() -> None:
    t = table(("example.test", SPEC), ("sub.example.test", DnsSpec()))
    zone = t.route("x.sub.example.test")
    assert zone is not None
    assert zone.apex == "sub.example.test"
    t.remove("SUB.example.test.")
    t.remove("sub.example.test")  # idempotent
    zone = t.route("x.sub.example.test")
    assert zone is not None
    assert zone.apex == "example.test"
    assert t.resolve("example.invalid", "A").rcode is Rcode.REFUSED


def test_faults() -> None:
    spec = DnsSpec(
        records=(rec("x.example.test", "A", "127.0.0.1"), rec("x.example.test", "TXT", "t")),
        faults=(
            DnsRule(name="x.example.test", type="A", fault=DnsFault.SERVFAIL),
            DnsRule(name="x.example.test", type="TXT", fault=DnsFault.NXDOMAIN),
            DnsRule(name="slow.example.test", fault=DnsFault.TIMEOUT),
        ),
    )
    t = table(("example.test", spec))
    assert t.resolve("x.example.test", "A").rcode is Rcode.SERVFAIL
    assert t.resolve("x.example.test", "TXT").rcode is Rcode.NXDOMAIN
    assert t.resolve("x.example.test", "AAAA").rcode is Rcode.NOERROR
    assert t.resolve("slow.example.test", "MX").silent
