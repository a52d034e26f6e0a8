"""The one typed door to dnslib (which ships no type hints): parse queries, pack answers.

Nothing else in the project imports dnslib. Wire rules followed here:
- RFC 1035 Section 4.1.1 (header), 4.1.2 (question), 4.2.1 (UDP messages of 512 octets,
  TC when an answer does not fit);
- RFC 6891 Section 6.1.1 / 6.2.5 (answer with an OPT record when the query had one; the
  requestor's payload size bounds the UDP answer);
- RFC 9619 (a query has exactly one question);
- RFC 6840 Section 5.7-5.8 (the CD bit is copied; AD is the validator's claim).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

import dnslib

from conformance.world.dns_zone import (
    AaaaData,
    AData,
    CnameData,
    DnsError,
    MxData,
    Rcode,
    Rdata,
    Record,
    SoaData,
    SrvData,
    TlsaData,
    TxtData,
)

__all__ = [
    "DnsWireError",
    "Header",
    "Query",
    "build_error",
    "build_response",
    "parse_query",
    "peek_header",
    "qtype_name",
    "udp_limit",
]

HEADER_LEN = 12
UDP_FLOOR = 512  # RFC 1035 4.2.1: what a client without EDNS accepts
UDP_CEILING = 1232  # the DNS flag day 2020 size: no IP fragmentation on common paths
TCP_LIMIT = 65535  # RFC 1035 4.2.2: the two-octet length prefix
_CLASS_IN = 1
_QTYPE_OPT = 41
_RCODES = {
    Rcode.NOERROR: 0,
    Rcode.FORMERR: 1,
    Rcode.SERVFAIL: 2,
    Rcode.NXDOMAIN: 3,
    Rcode.NOTIMP: 4,
    Rcode.REFUSED: 5,
}
_PLAIN = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789-_")


class DnsWireError(DnsError):
    """A packet that is not a well-formed query, or an answer dnslib could not pack."""


@dataclass(frozen=True, slots=True)
class Header:
    """The fixed 12-octet header (RFC 1035 4.1.1), read without dnslib."""

    id: int
    qr: bool
    opcode: int
    rd: bool
    cd: bool
    qdcount: int


@dataclass(frozen=True, slots=True)
class Query:
    header: Header
    qname: str  # lower case presentation form, no trailing dot, odd octets as \DDD
    qname_labels: tuple[bytes, ...]  # as received, echoed in the answer (0x20 case checks)
    qtype: int
    qclass: int
    edns_udp: int | None  # the requestor's UDP payload size, None without EDNS


def peek_header(data: bytes) -> Header | None:
    if len(data) < HEADER_LEN:
        return None
    ident, flags, qdcount = struct.unpack_from("!HHH", data)
    return Header(
        id=ident,
        qr=bool(flags & 0x8000),
        opcode=(flags >> 11) & 0xF,
        rd=bool(flags & 0x0100),
        cd=bool(flags & 0x0010),
        qdcount=qdcount,
    )


def _label_text(label: bytes) -> str:
    return "".join(chr(b) if b in _PLAIN else f"\\{b:03d}" for b in label.lower())


def qtype_name(code: int) -> str:
    """The mnemonic of a type code ("A", "TLSA"), ``TYPE<n>`` when unknown (RFC 3597 5)."""
    name = dnslib.QTYPE.forward.get(code)
    return name if isinstance(name, str) else f"TYPE{code}"


def parse_query(data: bytes) -> Query:
    """A query with exactly one question; raises DnsWireError otherwise."""
    header = peek_header(data)
    if header is None:
        raise DnsWireError("shorter than a DNS header")
    if header.qdcount != 1:  # RFC 9619
        raise DnsWireError(f"{header.qdcount} questions, not 1")
    try:
        record = dnslib.DNSRecord.parse(data)
        question = record.questions[0]
        labels = tuple(bytes(label) for label in question.qname.label)
        qtype, qclass = int(question.qtype), int(question.qclass)
        opts = [rr for rr in record.ar if int(rr.rtype) == _QTYPE_OPT]
        edns_udp = int(opts[0].rclass) if opts else None
    except Exception as exc:  # dnslib raises DNSError and, on odd input, anything else
        # (it also refuses labels that are not UTF-8: such a query gets FORMERR)
        raise DnsWireError(f"unparsable query: {exc}") from None
    if len(opts) > 1:  # RFC 6891 6.1.1: more than one OPT is FORMERR
        raise DnsWireError("more than one OPT record")
    return Query(
        header=header,
        qname=".".join(_label_text(label) for label in labels),
        qname_labels=labels,
        qtype=qtype,
        qclass=qclass,
        edns_udp=edns_udp,
    )


def _rdata(data: Rdata) -> object:
    if isinstance(data, AData):
        return dnslib.A(data.address)
    if isinstance(data, AaaaData):
        return dnslib.AAAA(data.address)
    if isinstance(data, MxData):
        return dnslib.MX(dnslib.DNSLabel(data.exchange), data.preference)
    if isinstance(data, TxtData):
        return dnslib.TXT(list(data.strings))
    if isinstance(data, SrvData):
        return dnslib.SRV(data.priority, data.weight, data.port, dnslib.DNSLabel(data.target))
    if isinstance(data, CnameData):
        return dnslib.CNAME(dnslib.DNSLabel(data.target))
    if isinstance(data, TlsaData):
        return dnslib.TLSA(data.usage, data.selector, data.matching_type, data.data)
    if isinstance(data, SoaData):
        times = (data.serial, data.refresh, data.retry, data.expire, data.minimum)
        return dnslib.SOA(dnslib.DNSLabel(data.mname), dnslib.DNSLabel(data.rname), times)
    raise DnsWireError(f"no wire form for {type(data).__name__}")


def _rr(record: Record) -> object:
    rtype = getattr(dnslib.QTYPE, record.rtype)
    return dnslib.RR(dnslib.DNSLabel(record.name), rtype, _CLASS_IN, record.ttl, _rdata(record.rdata))


def udp_limit(query: Query) -> int:
    """How large a UDP answer to this query may be (RFC 6891 6.2.5; floor RFC 1035 4.2.1)."""
    if query.edns_udp is None:
        return UDP_FLOOR
    return max(UDP_FLOOR, min(query.edns_udp, UDP_CEILING))


def build_response(
    query: Query,
    *,
    rcode: Rcode,
    aa: bool,
    ra: bool,
    ad: bool,
    answers: Sequence[Record] = (),
    authority: Sequence[Record] = (),
    limit: int = TCP_LIMIT,
) -> bytes:
    """The answer to ``query``; with TC set and the sections emptied when over ``limit``."""

    def pack(with_records: bool) -> bytes:
        header = dnslib.DNSHeader(
            id=query.header.id,
            qr=1,
            opcode=query.header.opcode,
            aa=int(aa),
            tc=int(not with_records),
            rd=int(query.header.rd),
            ra=int(ra),
            ad=int(ad),
            cd=int(query.header.cd),
            rcode=_RCODES[rcode],
        )
        question = dnslib.DNSQuestion(dnslib.DNSLabel(list(query.qname_labels)), query.qtype, query.qclass)
        msg = dnslib.DNSRecord(header, q=question)
        if with_records:
            for rec in answers:
                msg.add_answer(_rr(rec))
            for rec in authority:
                msg.add_auth(_rr(rec))
        if query.edns_udp is not None:
            msg.add_ar(dnslib.EDNS0(udp_len=UDP_CEILING))
        return bytes(msg.pack())

    try:
        packed = pack(with_records=True)
        if len(packed) > limit:
            # RFC 1035 4.2.1 / RFC 2181 9: too big for this transport; TC tells the
            # client to retry over TCP.
            packed = pack(with_records=False)
    except DnsWireError:
        raise
    except Exception as exc:  # dnslib's packers raise assorted errors on bad data
        raise DnsWireError(f"cannot pack answer: {exc}") from None
    return packed


def build_error(header: Header, rcode: Rcode) -> bytes:
    """A header-only answer (FORMERR, NOTIMP) for a query whose question was not usable."""
    flags = 0x8000 | (header.opcode << 11) | (0x0100 if header.rd else 0) | _RCODES[rcode]
    return struct.pack("!HHHHHH", header.id, flags, 0, 0, 0, 0)
