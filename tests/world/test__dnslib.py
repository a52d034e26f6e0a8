"""Tests for the typed dnslib shim, checked against dnspython as the independent reader."""

from __future__ import annotations

import re
from pathlib import Path

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.world import _dnslib as wire
from conformance.world.dns_zone import (
    AaaaData,
    AData,
    CnameData,
    MxData,
    Rcode,
    Rdata,
    Record,
    SrvData,
    TlsaData,
    TxtData,
)

NAMES = st.from_regex(r"\A[a-zA-Z0-9_]{1,12}(\.[a-zA-Z0-9-]{1,12}){0,4}\Z")


def make_query(name: str, rdtype: str = "A", **kw: object) -> bytes:
    return dns.message.make_query(name, rdtype, **kw).to_wire()  # type: ignore[arg-type]


def test_peek_header() -> None:
    data = make_query("example.test")
    header = wire.peek_header(data)
    assert header is not None
    assert (header.qr, header.opcode, header.rd, header.qdcount) == (False, 0, True, 1)
    assert wire.peek_header(data[:11]) is None


@given(NAMES, st.sampled_from(["A", "MX", "TXT", "TLSA", "TYPE65000"]))
def test_parse_query_round_trip(name: str, rdtype: str) -> None:
    msg = dns.message.make_query(name, rdtype)
    query = wire.parse_query(msg.to_wire())
    assert query.header.id == msg.id
    assert query.qname == name.lower()
    assert query.qtype == dns.rdatatype.from_text(rdtype)
    assert wire.qtype_name(query.qtype) == rdtype
    assert query.edns_udp is None


def test_parse_query_edns_and_odd_labels() -> None:
    query = wire.parse_query(make_query("example.test", use_edns=0, payload=4096))
    assert query.edns_udp == 4096
    assert wire.udp_limit(query) == wire.UDP_CEILING
    odd = dns.message.make_query(dns.name.Name([b"a.b", b"A\x01", b"test", b""]), "A")
    parsed = wire.parse_query(odd.to_wire())
    assert parsed.qname == "a\\046b.a\\001.test"  # never confused with the name a.b.
    assert parsed.qname_labels == (b"a.b", b"A\x01", b"test")
    # dnslib refuses labels that are not UTF-8; the server answers FORMERR.
    bad = dns.message.make_query(dns.name.Name([b"\xff", b"test", b""]), "A")
    with pytest.raises(wire.DnsWireError):
        wire.parse_query(bad.to_wire())


@given(st.binary(max_size=300))
def test_parse_query_is_total(data: bytes) -> None:
    try:
        query = wire.parse_query(data)
    except wire.DnsWireError:
        return
    assert query.header.qdcount == 1


def test_parse_query_rejects_two_questions() -> None:
    msg = dns.message.make_query("a.test", "A")
    msg.question.append(dns.message.make_query("b.test", "A").question[0])
    with pytest.raises(wire.DnsWireError, match="2 questions"):
        wire.parse_query(msg.to_wire())


RECORDS: list[Rdata] = [
    AData("127.0.0.1"),
    AaaaData("::1"),
    MxData(10, "mx1.example.test"),
    MxData(0, ""),
    TxtData((b"v=STSv1; ", b"id=1")),
    SrvData(5, 10, 5269, "xmpp.example.test"),
    CnameData("target.example.test"),
    TlsaData(3, 1, 1, b"\xab" * 32),
]
EXPECTED_TEXT = [
    "127.0.0.1",
    "::1",
    "10 mx1.example.test.",
    "0 .",
    '"v=STSv1; " "id=1"',
    "5 10 5269 xmpp.example.test.",
    "target.example.test.",
    "3 1 1 " + "ab" * 32,
]
RTYPE = {
    AData: "A",
    AaaaData: "AAAA",
    MxData: "MX",
    TxtData: "TXT",
    SrvData: "SRV",
    CnameData: "CNAME",
    TlsaData: "TLSA",
}


@pytest.mark.parametrize(("rdata", "text"), list(zip(RECORDS, EXPECTED_TEXT, strict=True)))
def test_build_response_each_type(rdata: Rdata, text: str) -> None:
    rtype = RTYPE[type(rdata)]
    query = wire.parse_query(make_query("X.Example.Test", rtype))
    packed = wire.build_response(
        query,
        rcode=Rcode.NOERROR,
        aa=True,
        ra=False,
        ad=True,
        answers=[Record("x.example.test", rtype, 60, rdata)],
    )
    msg = dns.message.from_wire(packed)
    assert msg.flags & dns.flags.AA
    assert msg.flags & dns.flags.AD
    assert not msg.flags & dns.flags.RA
    assert msg.question[0].name.to_text() == "X.Example.Test."  # case echoed
    (rrset,) = msg.answer
    assert rrset.ttl == 60
    assert [r.to_text() for r in rrset] == [text]


@pytest.mark.parametrize("rcode", list(Rcode))
def test_rcodes(rcode: Rcode) -> None:
    query = wire.parse_query(make_query("example.test"))
    msg = dns.message.from_wire(wire.build_response(query, rcode=rcode, aa=False, ra=False, ad=False))
    assert dns.rcode.to_text(msg.rcode()) == rcode.value


def test_truncation_and_edns() -> None:
    big = Record("x.test", "TXT", 60, TxtData((b"a" * 255,) * 8))
    plain = wire.parse_query(make_query("x.test", "TXT"))
    packed = wire.build_response(plain, rcode=Rcode.NOERROR, aa=True, ra=False, ad=False, answers=[big], limit=512)
    msg = dns.message.from_wire(packed)
    assert msg.flags & dns.flags.TC
    assert msg.answer == []
    edns = wire.parse_query(make_query("x.test", "TXT", use_edns=0, payload=4096))
    msg = dns.message.from_wire(
        wire.build_response(edns, rcode=Rcode.NOERROR, aa=True, ra=False, ad=False, answers=[big], limit=4096)
    )
    assert not msg.flags & dns.flags.TC
    assert msg.edns == 0
    assert b"".join(msg.answer[0][0].strings) == b"a" * 255 * 8


@given(st.lists(st.binary(max_size=255), min_size=1, max_size=6))
def test_txt_wire_round_trip(strings: list[bytes]) -> None:
    query = wire.parse_query(make_query("t.test", "TXT"))
    record = Record("t.test", "TXT", 1, TxtData(tuple(strings)))
    msg = dns.message.from_wire(
        wire.build_response(query, rcode=Rcode.NOERROR, aa=True, ra=False, ad=False, answers=[record])
    )
    assert list(msg.answer[0][0].strings) == strings


def test_build_error() -> None:
    header = wire.peek_header(make_query("example.test"))
    assert header is not None
    msg = dns.message.from_wire(wire.build_error(header, Rcode.FORMERR))
    assert msg.id == header.id
    assert msg.rcode() == dns.rcode.FORMERR
    assert msg.flags & dns.flags.QR
    assert msg.flags & dns.flags.RD


def test_only_the_shim_imports_dnslib() -> None:
    root = Path(__file__).resolve().parents[2]
    offenders = [
        str(path.relative_to(root))
        for package in ("conformance", "reference_impl")
        for path in (root / package).rglob("*.py")
        if path.name != "_dnslib.py" and re.search(r"^\s*(import|from)\s+dnslib\b", path.read_text(), re.MULTILINE)
    ]
    assert offenders == []
