"""Tests for the world's DNS server, over real UDP and TCP on loopback, with dnspython."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator
from typing import Literal

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdatatype
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.world.dns import DnsError, DnsSpecError, DnsZoneError, WorldDns
from conformance.world.observe import DnsQuery, Observation
from conformance.world.spec import DnsFault, DnsRecord, DnsRule, DnsSpec, RecordType

Transport = Literal["udp", "tcp"]
LOOPBACK = "127.0.0.1"
TIMEOUT = 2.0
SILENCE = 0.3  # how long a client waits for an answer a timeout fault never sends
TLSA_HEX = "ab" * 32


def rec(name: str, rtype: RecordType, value: str | tuple[str, ...]) -> DnsRecord:
    return DnsRecord(name=name, type=rtype, value=value)


ZONE = DnsSpec(
    records=(
        rec("example.test", "MX", "10 mx1.example.test."),
        rec("example.test", "MX", "20 mx2.example.test"),
        rec("mx1.example.test", "A", "127.0.0.5"),
        rec("mx1.example.test", "AAAA", "::1"),
        rec("_mta-sts.example.test", "TXT", ("v=STSv1; ", "id=20240101")),
        rec("_smtp._tls.example.test", "TXT", "v=TLSRPTv1; rua=" + "m" * 300),
        rec("_xmpp-server._tcp.example.test", "SRV", "5 0 5269 xmpp.example.test."),
        rec("xmpp.example.test", "A", "127.0.0.7"),
        rec("_25._tcp.mx1.example.test", "TLSA", f"3 1 1 {TLSA_HEX}"),
        rec("alias.example.test", "CNAME", "alias2.example.test"),
        rec("alias2.example.test", "CNAME", "mx1.example.test."),
        rec("big.example.test", "TXT", tuple("x" * 255 for _ in range(8))),
    ),
    faults=(
        DnsRule(name="broken.example.test", fault=DnsFault.SERVFAIL),
        DnsRule(name="mx1.example.test", type="MX", fault=DnsFault.NXDOMAIN),
        DnsRule(name="slow.example.test", fault=DnsFault.TIMEOUT),
    ),
)
SIGNED = DnsSpec(records=(rec("signed.test", "A", "127.0.0.9"),), dnssec=True)


class Sinks:
    def __init__(self) -> None:
        self.zone: list[Observation] = []
        self.signed: list[Observation] = []
        self.unrouted: list[Observation] = []

    def queries(self, which: list[Observation]) -> list[DnsQuery]:
        return [q for q in which if isinstance(q, DnsQuery)]


@pytest.fixture
def sinks() -> Sinks:
    return Sinks()


@pytest.fixture
async def server(sinks: Sinks) -> AsyncIterator[WorldDns]:
    srv = WorldDns(LOOPBACK, 0, unrouted_sink=sinks.unrouted.append, tcp_idle_timeout=TIMEOUT)
    await srv.start()
    srv.add_zone("example.test", ZONE, sinks.zone.append)
    srv.add_zone("signed.test", SIGNED, sinks.signed.append)
    try:
        yield srv
    finally:
        await srv.stop()
    assert srv.errors == ()


async def ask(
    server: WorldDns,
    name: str,
    rdtype: str,
    transport: Transport,
    *,
    wait: float = TIMEOUT,
    **kw: object,
) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype, **kw)  # type: ignore[arg-type]
    port = server.address[1]
    if transport == "udp":
        return await dns.asyncquery.udp(query, LOOPBACK, timeout=wait, port=port)
    return await dns.asyncquery.tcp(query, LOOPBACK, timeout=wait, port=port)


def texts(msg: dns.message.Message) -> list[str]:
    return [rr.to_text() for rrset in msg.answer for rr in rrset]


BOTH = pytest.mark.parametrize("transport", ["udp", "tcp"])


@BOTH
@pytest.mark.parametrize(
    ("name", "rdtype", "expected"),
    [
        ("mx1.example.test", "A", ["127.0.0.5"]),
        ("mx1.example.test", "AAAA", ["::1"]),
        ("example.test", "MX", ["10 mx1.example.test.", "20 mx2.example.test."]),
        ("_mta-sts.example.test", "TXT", ['"v=STSv1; " "id=20240101"']),
        ("_xmpp-server._tcp.example.test", "SRV", ["5 0 5269 xmpp.example.test."]),
        ("alias2.example.test", "CNAME", ["mx1.example.test."]),
        ("_25._tcp.mx1.example.test", "TLSA", [f"3 1 1 {TLSA_HEX}"]),
    ],
)
async def test_every_record_type(
    server: WorldDns, transport: Transport, name: str, rdtype: str, expected: list[str]
) -> None:
    msg = await ask(server, name, rdtype, transport)
    assert msg.rcode() == dns.rcode.NOERROR
    assert msg.flags & dns.flags.AA
    assert sorted(texts(msg)) == expected


@BOTH
async def test_long_txt_split_into_strings(server: WorldDns, transport: Transport) -> None:
    msg = await ask(server, "_smtp._tls.example.test", "TXT", transport)
    strings = msg.answer[0][0].strings
    assert [len(s) for s in strings] == [255, len("v=TLSRPTv1; rua=") + 300 - 255]
    assert b"".join(strings) == b"v=TLSRPTv1; rua=" + b"m" * 300


@BOTH
async def test_cname_chain_followed(server: WorldDns, transport: Transport) -> None:
    msg = await ask(server, "alias.example.test", "A", transport)
    assert texts(msg) == ["alias2.example.test.", "mx1.example.test.", "127.0.0.5"]


@BOTH
async def test_nxdomain_vs_nodata(server: WorldDns, transport: Transport) -> None:
    nx = await ask(server, "nope.example.test", "A", transport)
    assert nx.rcode() == dns.rcode.NXDOMAIN
    assert nx.flags & dns.flags.AA
    assert nx.authority[0].rdtype == dns.rdatatype.SOA
    nodata = await ask(server, "mx1.example.test", "TXT", transport)
    assert (nodata.rcode(), nodata.answer) == (dns.rcode.NOERROR, [])
    assert nodata.flags & dns.flags.AA
    ent = await ask(server, "_tcp.mx1.example.test", "TLSA", transport)
    assert (ent.rcode(), ent.answer) == (dns.rcode.NOERROR, [])


@BOTH
async def test_out_of_zone_refused_and_logged(server: WorldDns, sinks: Sinks, transport: Transport) -> None:
    msg = await ask(server, "www.example.com", "A", transport)
    assert msg.rcode() == dns.rcode.REFUSED
    assert not msg.flags & dns.flags.AA
    (logged,) = sinks.queries(sinks.unrouted)
    assert (logged.qname, logged.rcode, logged.transport) == (
        "www.example.com",
        "REFUSED",
        transport,
    )
    assert sinks.zone == []


@BOTH
async def test_ad_bit_per_zone(server: WorldDns, transport: Transport) -> None:
    signed = await ask(server, "signed.test", "A", transport)
    assert signed.flags & dns.flags.AD
    plain = await ask(server, "mx1.example.test", "A", transport)
    assert not plain.flags & dns.flags.AD


@BOTH
async def test_faults(server: WorldDns, sinks: Sinks, transport: Transport) -> None:
    servfail = await ask(server, "broken.example.test", "TXT", transport)
    assert servfail.rcode() == dns.rcode.SERVFAIL
    nx = await ask(server, "mx1.example.test", "MX", transport)
    assert nx.rcode() == dns.rcode.NXDOMAIN
    assert (await ask(server, "mx1.example.test", "A", transport)).rcode() == dns.rcode.NOERROR
    with pytest.raises(dns.exception.Timeout):
        await ask(server, "slow.example.test", "A", transport, wait=SILENCE)
    rcodes = [(q.qname, q.qtype, q.rcode) for q in sinks.queries(sinks.zone)]
    assert rcodes == [
        ("broken.example.test", "TXT", "SERVFAIL"),
        ("mx1.example.test", "MX", "NXDOMAIN"),
        ("mx1.example.test", "A", "NOERROR"),
        ("slow.example.test", "A", "TIMEOUT"),
    ]


async def test_query_log_record(server: WorldDns, sinks: Sinks) -> None:
    msg = await ask(server, "MX1.Example.TEST", "A", "udp")
    assert msg.question[0].name.to_text() == "MX1.Example.TEST."  # case echoed (0x20)
    (q,) = sinks.queries(sinks.zone)
    assert (q.qname, q.qtype, q.transport, q.rcode, q.answers, q.ad) == (
        "mx1.example.test",
        "A",
        "udp",
        "NOERROR",
        1,
        False,
    )
    assert q.client.startswith("127.0.0.1:")
    await ask(server, "signed.test", "A", "tcp")
    (s,) = sinks.queries(sinks.signed)
    assert (s.transport, s.ad) == ("tcp", True)


async def test_udp_truncation_then_tcp(server: WorldDns) -> None:
    udp = await ask(server, "big.example.test", "TXT", "udp")
    assert udp.flags & dns.flags.TC
    assert udp.answer == []
    tcp = await ask(server, "big.example.test", "TXT", "tcp")
    assert len(tcp.answer[0][0].strings) == 8
    edns = await ask(server, "_smtp._tls.example.test", "TXT", "udp", use_edns=0, payload=1232)
    assert not edns.flags & dns.flags.TC
    assert edns.edns == 0


async def test_remove_zone(server: WorldDns) -> None:
    server.remove_zone("signed.test")
    assert (await ask(server, "signed.test", "A", "udp")).rcode() == dns.rcode.REFUSED


async def test_add_zone_errors(server: WorldDns, sinks: Sinks) -> None:
    with pytest.raises(DnsSpecError, match="IPv4"):
        server.add_zone("bad.test", DnsSpec(records=(rec("x.bad.test", "A", "nope"),)), sinks.zone.append)
    with pytest.raises(DnsZoneError):
        server.add_zone("example.test", DnsSpec(), sinks.zone.append)
    # A failed add leaves nothing behind.
    assert (await ask(server, "x.bad.test", "A", "udp")).rcode() == dns.rcode.REFUSED


async def test_longest_suffix_wins(server: WorldDns, sinks: Sinks) -> None:
    sub: list[Observation] = []
    server.add_zone(
        "sub.example.test",
        DnsSpec(records=(rec("h.sub.example.test", "A", "127.0.0.8"),)),
        sub.append,
    )
    msg = await ask(server, "h.sub.example.test", "A", "udp")
    assert texts(msg) == ["127.0.0.8"]
    assert len(sub) == 1
    assert sinks.zone == []


# -- raw sockets: TCP framing, garbage ---------------------------------------------------------


async def tcp_exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, queries: list[bytes], answers: int
) -> list[dns.message.Message]:
    """Send all ``queries`` in one write (pipelined), then read ``answers`` framed answers."""
    writer.write(b"".join(struct.pack("!H", len(q)) + q for q in queries))
    await writer.drain()
    out = []
    for _ in range(answers):
        size = struct.unpack("!H", await asyncio.wait_for(reader.readexactly(2), TIMEOUT))[0]
        out.append(dns.message.from_wire(await asyncio.wait_for(reader.readexactly(size), TIMEOUT)))
    return out


async def test_tcp_several_queries_per_connection(server: WorldDns) -> None:
    reader, writer = await asyncio.open_connection(*server.address)
    try:
        slow = dns.message.make_query("slow.example.test", "A").to_wire()
        a = dns.message.make_query("mx1.example.test", "A")
        mx = dns.message.make_query("example.test", "MX")
        # The silent query is skipped; the two after it are answered on the same connection.
        answers = await tcp_exchange(reader, writer, [slow, a.to_wire(), mx.to_wire()], 2)
        assert [m.id for m in answers] == [a.id, mx.id]
        assert texts(answers[0]) == ["127.0.0.5"]
    finally:
        writer.close()
        await writer.wait_closed()


async def test_tcp_idle_timeout_closes(sinks: Sinks) -> None:
    srv = WorldDns(LOOPBACK, 0, tcp_idle_timeout=0.1)
    await srv.start()
    try:
        reader, writer = await asyncio.open_connection(*srv.address)
        try:
            assert await asyncio.wait_for(reader.read(10), TIMEOUT) == b""
        finally:
            writer.close()
            await writer.wait_closed()
    finally:
        await srv.stop()


async def test_tcp_partial_message_then_close(server: WorldDns) -> None:
    _reader, writer = await asyncio.open_connection(*server.address)
    writer.write(b"\x00\x40abc")  # promises 64 octets, sends 3
    await writer.drain()
    writer.close()
    await writer.wait_closed()
    # The server is still fine.
    assert (await ask(server, "mx1.example.test", "A", "tcp")).rcode() == dns.rcode.NOERROR


async def test_stop_with_open_tcp_connection() -> None:
    srv = WorldDns(LOOPBACK, 0)
    await srv.start()
    reader, writer = await asyncio.open_connection(*srv.address)
    await srv.stop()
    assert await asyncio.wait_for(reader.read(10), TIMEOUT) == b""
    writer.close()
    await writer.wait_closed()


def udp_send_all_receive_one(port: int, payloads: list[bytes]) -> bytes:
    """Send every datagram from one socket and return the first datagram that comes back."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(TIMEOUT)
        for payload in payloads:
            sock.sendto(payload, (LOOPBACK, port))
        return sock.recv(65535)


async def test_garbage_datagrams(server: WorldDns, sinks: Sinks) -> None:
    query = dns.message.make_query("mx1.example.test", "A").to_wire()
    junk = [
        b"",
        b"\x00",
        b"\xff" * 11,
        dns.message.make_response(dns.message.make_query("a.test", "A")).to_wire(),
    ]
    # Junk gets no answer, so the first datagram back answers the truncated query.
    reply = await asyncio.to_thread(udp_send_all_receive_one, server.address[1], [*junk, query[:-3]])
    msg = dns.message.from_wire(reply)
    assert (msg.id, msg.rcode()) == (int.from_bytes(query[:2], "big"), dns.rcode.FORMERR)
    assert [q.rcode for q in sinks.queries(sinks.unrouted)] == ["FORMERR"]
    # And the server still answers.
    assert (await ask(server, "mx1.example.test", "A", "udp")).rcode() == dns.rcode.NOERROR


def test_handle_packet_edge_cases() -> None:
    srv = WorldDns(LOOPBACK, 0)
    query = dns.message.make_query("x.test", "A")
    response = dns.message.make_response(query).to_wire()
    assert srv.handle_packet(response, "127.0.0.1:1", "udp") is None  # never answer answers
    notify = dns.message.make_query("x.test", "SOA")
    notify.set_opcode(dns.opcode.NOTIFY)
    reply = srv.handle_packet(notify.to_wire(), "127.0.0.1:1", "udp")
    assert reply is not None
    assert dns.message.from_wire(reply).rcode() == dns.rcode.NOTIMP
    chaos = dns.message.make_query("version.bind", "TXT", rdclass="CH")
    reply = srv.handle_packet(chaos.to_wire(), "127.0.0.1:1", "udp")
    assert reply is not None
    assert dns.message.from_wire(reply).rcode() == dns.rcode.REFUSED


def test_broken_sink_does_not_break_the_server() -> None:
    def explode(_: Observation) -> None:
        raise RuntimeError("sink bug")

    srv = WorldDns(LOOPBACK, 0)
    srv.add_zone("x.test", DnsSpec(records=(rec("x.test", "A", "127.0.0.1"),)), explode)
    reply = srv.handle_packet(dns.message.make_query("x.test", "A").to_wire(), "c", "udp")
    assert reply is not None
    assert dns.message.from_wire(reply).rcode() == dns.rcode.NOERROR
    assert [str(e) for e in srv.errors] == ["sink bug"]


async def test_port_in_use_is_an_error(server: WorldDns) -> None:
    other = WorldDns(LOOPBACK, server.address[1])
    with pytest.raises(OSError):  # noqa: PT011 - the errno is the platform's
        await other.start()


async def test_address_before_start() -> None:
    srv = WorldDns(LOOPBACK, 0)
    with pytest.raises(DnsError, match="not started"):
        _ = srv.address
    async with srv:
        assert srv.address[1] != 0


# -- property: the packet handler is total -----------------------------------------------------

_ZONE_FOR_FUZZ = WorldDns(LOOPBACK, 0)
_ZONE_FOR_FUZZ.add_zone("example.test", ZONE, lambda _: None)
_VALID = dns.message.make_query("alias.example.test", "A", use_edns=0).to_wire()


def _check_reply(data: bytes, transport: Transport) -> None:
    reply = _ZONE_FOR_FUZZ.handle_packet(data, "127.0.0.1:9", transport)
    if reply is not None:
        assert reply[:2] == data[:2]  # the query id is echoed
        assert reply[2] & 0x80  # QR
    assert _ZONE_FOR_FUZZ.errors == ()


@settings(max_examples=300)
@given(st.binary(max_size=600), st.sampled_from(["udp", "tcp"]))
def test_handle_packet_arbitrary_bytes(data: bytes, transport: Transport) -> None:
    _check_reply(data, transport)


@settings(max_examples=300)
@given(st.integers(0, len(_VALID) - 1), st.binary(min_size=1, max_size=4), st.booleans())
def test_handle_packet_near_misses(pos: int, patch: bytes, truncate: bool) -> None:
    mutated = _VALID[:pos] + patch + (b"" if truncate else _VALID[pos + len(patch) :])
    _check_reply(mutated, "udp")
