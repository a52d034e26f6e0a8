"""The world's DNS zones: records validated from a scenario's ``DnsSpec``, and how a query
is answered from them. Pure: no sockets and no dnslib (``conformance.world._dnslib`` puts
the answers on the wire, ``conformance.world.dns`` serves them).

Implements, for an authoritative server that never recurses:
- RFC 1034 Section 4.3.2 (the authoritative part of the lookup algorithm, CNAME chasing),
  Section 3.6.2 / RFC 2181 Section 10.1 (a CNAME is alone at its name);
- RFC 1035 Section 3.3 (character-strings of at most 255 octets), Section 2.3.4 (size limits);
- RFC 2308 Sections 2.1-2.2 and 3 (NXDOMAIN vs NODATA; the SOA in the authority section);
- RFC 8020 (an empty non-terminal exists: NODATA, not NXDOMAIN);
- RDATA presentation forms of MX (RFC 1035 3.3.9, null MX RFC 7505), SRV (RFC 2782),
  TLSA (RFC 6698 Section 2.2).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from conformance.world.observe import ObservationSink
from conformance.world.spec import DnsFault, DnsRecord, DnsSpec

__all__ = [
    "AData",
    "AaaaData",
    "CnameData",
    "DnsError",
    "DnsSpecError",
    "DnsZoneError",
    "MxData",
    "Rcode",
    "Rdata",
    "Record",
    "Resolution",
    "SoaData",
    "SrvData",
    "TlsaData",
    "TxtData",
    "Zone",
    "ZoneTable",
    "compile_zone",
    "normalize_name",
    "parse_rdata",
]

MAX_CNAME_CHAIN = 8  # a chain longer than this is cut short, like a resolver would give up
_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")
_MAX_TTL = 2**31 - 1  # RFC 2181 Section 8
_NEGATIVE_TTL = 60  # SOA minimum and TTL: negative answers are cached briefly (RFC 2308 5)


class DnsError(Exception):
    """Base of every error of the world's DNS (zones, wire, server)."""


class DnsSpecError(DnsError):
    """A record or fault in a scenario's ``DnsSpec`` that cannot be published."""

    def __init__(self, name: str, rtype: str, value: object, reason: str) -> None:
        super().__init__(f"DNS record {name!r} {rtype} {value!r}: {reason}")
        self.name = name
        self.rtype = rtype
        self.value = value
        self.reason = reason


class DnsZoneError(DnsError):
    """A zone that cannot be added (bad apex, apex already served)."""


class Rcode(StrEnum):
    NOERROR = "NOERROR"
    FORMERR = "FORMERR"
    SERVFAIL = "SERVFAIL"
    NXDOMAIN = "NXDOMAIN"
    NOTIMP = "NOTIMP"
    REFUSED = "REFUSED"


@dataclass(frozen=True, slots=True)
class AData:
    address: str


@dataclass(frozen=True, slots=True)
class AaaaData:
    address: str


@dataclass(frozen=True, slots=True)
class MxData:
    preference: int
    exchange: str  # "" is the root: a null MX (RFC 7505)


@dataclass(frozen=True, slots=True)
class TxtData:
    strings: tuple[bytes, ...]  # character-strings, each at most 255 octets


@dataclass(frozen=True, slots=True)
class SrvData:
    priority: int
    weight: int
    port: int
    target: str  # "" is the root: service not available (RFC 2782)


@dataclass(frozen=True, slots=True)
class CnameData:
    target: str


@dataclass(frozen=True, slots=True)
class TlsaData:
    usage: int
    selector: int
    matching_type: int
    data: bytes


@dataclass(frozen=True, slots=True)
class SoaData:
    mname: str
    rname: str
    serial: int
    refresh: int
    retry: int
    expire: int
    minimum: int


Rdata = AData | AaaaData | MxData | TxtData | SrvData | CnameData | TlsaData | SoaData


@dataclass(frozen=True, slots=True)
class Record:
    name: str  # lower case, no trailing dot
    rtype: str
    ttl: int
    rdata: Rdata


def normalize_name(text: str, *, allow_root: bool = False) -> str:
    """Lower case, without the trailing dot; raises ValueError naming what is wrong.

    Labels are LDH plus underscore (``_mta-sts``, ``_25._tcp``); U-labels must be given as
    A-labels, and wildcards are not supported."""
    name = text[:-1] if text.endswith(".") else text
    name = name.lower()
    if not name:
        if allow_root:
            return ""
        raise ValueError("empty name")
    if len(name) + 2 > 255:  # RFC 1035 2.3.4: 255 octets on the wire
        raise ValueError("name longer than 255 octets")
    for label in name.split("."):
        if not label:
            raise ValueError("empty label")
        if len(label) > 63:  # RFC 1035 2.3.4
            raise ValueError(f"label {label[:20]!r}... longer than 63 octets")
        if not _LABEL.match(label):
            raise ValueError(f"label {label!r} is not letters, digits, '-' and '_'")
    return name


def _int_field(text: str, what: str, high: int) -> int:
    if not text.isascii() or not text.isdigit():
        raise ValueError(f"{what} {text!r} is not a number")
    value = int(text)
    if value > high:
        raise ValueError(f"{what} {value} is above {high}")
    return value


def _split_txt(strings: tuple[str, ...]) -> tuple[bytes, ...]:
    out: list[bytes] = []
    for s in strings:
        raw = s.encode("utf-8")
        # RFC 1035 3.3: a character-string is at most 255 octets; longer values are split
        # (RFC 7208 3.3 / RFC 8461 3.1: readers concatenate the strings of one record).
        out.extend(raw[i : i + 255] for i in range(0, len(raw), 255))
        if not raw:
            out.append(b"")
    return tuple(out)


def parse_rdata(rtype: str, value: str | tuple[str, ...]) -> Rdata:
    """The RDATA of one record from its presentation form; ValueError says why not."""
    if rtype == "TXT":
        strings = (value,) if isinstance(value, str) else value
        if not strings:
            raise ValueError("a TXT record needs at least one string")
        chunks = _split_txt(strings)
        if sum(len(c) + 1 for c in chunks) > 65535:  # RFC 1035 3.2.1: RDLENGTH is 16 bits
            raise ValueError("TXT data longer than 65535 octets")
        return TxtData(chunks)
    if not isinstance(value, str):
        raise ValueError("only TXT records take several strings")
    fields = value.split()
    if rtype == "A":
        try:
            return AData(str(ipaddress.IPv4Address(value.strip())))
        except ValueError as exc:
            raise ValueError(f"not an IPv4 address: {exc}") from None
    if rtype == "AAAA":
        try:
            return AaaaData(str(ipaddress.IPv6Address(value.strip())))
        except ValueError as exc:
            raise ValueError(f"not an IPv6 address: {exc}") from None
    if rtype == "MX":
        if len(fields) != 2:
            raise ValueError("MX needs 'preference exchange'")
        return MxData(
            _int_field(fields[0], "preference", 65535),
            normalize_name(fields[1], allow_root=True),
        )
    if rtype == "SRV":
        if len(fields) != 4:
            raise ValueError("SRV needs 'priority weight port target'")
        return SrvData(
            _int_field(fields[0], "priority", 65535),
            _int_field(fields[1], "weight", 65535),
            _int_field(fields[2], "port", 65535),
            normalize_name(fields[3], allow_root=True),
        )
    if rtype == "CNAME":
        if len(fields) != 1:
            raise ValueError("CNAME needs one target name")
        return CnameData(normalize_name(fields[0]))
    if rtype == "TLSA":
        if len(fields) < 4:
            raise ValueError("TLSA needs 'usage selector matching-type hex-data'")
        hexdata = "".join(fields[3:])
        try:
            data = bytes.fromhex(hexdata)
        except ValueError:
            raise ValueError(f"TLSA data {hexdata[:40]!r} is not hex") from None
        # RFC 6698 2.2: three one-octet fields; the data's meaning is left to the scenario
        # (a deliberately wrong digest is a legitimate thing to publish).
        return TlsaData(
            _int_field(fields[0], "usage", 255),
            _int_field(fields[1], "selector", 255),
            _int_field(fields[2], "matching type", 255),
            data,
        )
    raise ValueError(f"unsupported type {rtype!r}")


def _within(name: str, apex: str) -> bool:
    return name == apex or name.endswith("." + apex)


@dataclass(frozen=True, slots=True)
class _Fault:
    name: str
    rtype: str | None
    fault: DnsFault


@dataclass(frozen=True, slots=True)
class Zone:
    """One scenario's compiled zone: every name it knows and every record, validated."""

    apex: str
    records: Mapping[str, tuple[Record, ...]]
    existing: frozenset[str]  # names with records, their ancestors up to the apex, the apex
    faults: tuple[_Fault, ...]
    dnssec: bool
    sink: ObservationSink

    def soa(self) -> Record:
        """A synthesized SOA: answers the apex SOA and sits in negative answers (RFC 2308 3)."""
        data = SoaData(f"ns.{self.apex}", f"hostmaster.{self.apex}", 1, 3600, 600, 86400, _NEGATIVE_TTL)
        return Record(self.apex, "SOA", _NEGATIVE_TTL, data)

    def fault_for(self, name: str, qtype: str) -> DnsFault | None:
        for f in self.faults:
            if f.name == name and (f.rtype is None or f.rtype == qtype):
                return f.fault
        return None


def compile_zone(apex: str, spec: DnsSpec, sink: ObservationSink) -> Zone:
    """Validate every record and fault of ``spec``; raises DnsSpecError on the first bad one."""
    try:
        apex_name = normalize_name(apex)
    except ValueError as exc:
        raise DnsZoneError(f"bad zone apex {apex!r}: {exc}") from None
    by_name: dict[str, list[Record]] = {}
    for rec in spec.records:
        record = _compile_record(apex_name, rec)
        existing = by_name.setdefault(record.name, [])
        if record in existing:
            raise DnsSpecError(rec.name, rec.type, rec.value, "duplicate record (RFC 2181 5)")
        existing.append(record)
    for name, records in by_name.items():
        types = {r.rtype for r in records}
        # RFC 1034 3.6.2, RFC 2181 10.1: a CNAME is the only record at its name.
        if "CNAME" in types and len(records) > 1:
            raise DnsSpecError(name, "CNAME", "", "a CNAME cannot share its name with other records")
    faults = []
    for rule in spec.faults:
        try:
            name = normalize_name(rule.name)
        except ValueError as exc:
            raise DnsSpecError(rule.name, rule.type or "*", rule.fault.value, str(exc)) from None
        if not _within(name, apex_name):
            raise DnsSpecError(rule.name, rule.type or "*", rule.fault.value, "outside the zone")
        faults.append(_Fault(name, rule.type, rule.fault))
    existing_names = {apex_name}
    for name in by_name:
        # RFC 8020: every ancestor of a name with records exists (empty non-terminals).
        while name != apex_name and name not in existing_names:
            existing_names.add(name)
            name = name.partition(".")[2]
    return Zone(
        apex=apex_name,
        records={n: tuple(rs) for n, rs in by_name.items()},
        existing=frozenset(existing_names),
        faults=tuple(faults),
        dnssec=spec.dnssec,
        sink=sink,
    )


def _compile_record(apex: str, rec: DnsRecord) -> Record:
    try:
        name = normalize_name(rec.name)
    except ValueError as exc:
        raise DnsSpecError(rec.name, rec.type, rec.value, f"bad owner name: {exc}") from None
    if not _within(name, apex):
        raise DnsSpecError(rec.name, rec.type, rec.value, f"outside the zone {apex!r}")
    if rec.ttl > _MAX_TTL:
        raise DnsSpecError(rec.name, rec.type, rec.value, f"TTL above {_MAX_TTL} (RFC 2181 8)")
    try:
        rdata = parse_rdata(rec.type, rec.value)
    except ValueError as exc:
        raise DnsSpecError(rec.name, rec.type, rec.value, str(exc)) from None
    return Record(name, rec.type, rec.ttl, rdata)


@dataclass(frozen=True, slots=True)
class Resolution:
    """How the world answers one question."""

    rcode: Rcode
    answers: tuple[Record, ...] = ()
    authority: tuple[Record, ...] = ()
    aa: bool = True
    ad: bool = False
    silent: bool = False  # a timeout fault: send nothing
    zone: Zone | None = None  # the zone owning the question (its sink sees the query)


class ZoneTable:
    """The zones the world serves, keyed by apex; a query goes to the longest apex suffix."""

    def __init__(self) -> None:
        self._zones: dict[str, Zone] = {}

    def add(self, zone: Zone) -> None:
        if zone.apex in self._zones:
            raise DnsZoneError(f"zone {zone.apex!r} is already served")
        self._zones[zone.apex] = zone

    def remove(self, apex: str) -> None:
        """Idempotent, so cleanup paths need not know whether staging got that far."""
        self._zones.pop(apex.lower().rstrip("."), None)

    def route(self, name: str) -> Zone | None:
        """The zone whose apex is the longest suffix of ``name`` (already lower case)."""
        candidate = name
        while True:
            zone = self._zones.get(candidate)
            if zone is not None:
                return zone
            if not candidate:
                return None
            candidate = candidate.partition(".")[2]

    def resolve(self, qname: str, qtype: str) -> Resolution:
        """Answer ``qname``/``qtype`` (a lower-case name and a type mnemonic) from the zones."""
        owner = self.route(qname)
        if owner is None:
            # Authoritative only: a name outside every world zone is refused, never recursed.
            return Resolution(Rcode.REFUSED, aa=False)
        answers: list[Record] = []
        ad = owner.dnssec
        name, zone = qname, owner
        seen: set[str] = set()
        for _hop in range(MAX_CNAME_CHAIN + 1):
            # Only DNSSEC zones all along the chain make the answer "validated".
            ad = ad and zone.dnssec
            fault = zone.fault_for(name, qtype)
            if fault is DnsFault.TIMEOUT:
                return Resolution(Rcode.SERVFAIL, silent=True, zone=owner)
            if fault is DnsFault.SERVFAIL:
                return Resolution(Rcode.SERVFAIL, aa=False, zone=owner)
            if fault is DnsFault.NXDOMAIN or name not in zone.existing:
                # RFC 2308 2.1: the rcode speaks for the last name of the chain.
                return Resolution(Rcode.NXDOMAIN, tuple(answers), (zone.soa(),), ad=ad, zone=owner)
            here = zone.records.get(name, ())
            matching = [r for r in here if r.rtype == qtype or qtype == "ANY"]
            if not matching and qtype == "SOA" and name == zone.apex:
                matching = [zone.soa()]
            if matching:
                return Resolution(Rcode.NOERROR, (*answers, *matching), ad=ad, zone=owner)
            cnames = [(r, r.rdata) for r in here if isinstance(r.rdata, CnameData)]
            if not cnames or qtype == "CNAME":
                # RFC 2308 2.2: NODATA is NOERROR, no answer for the type, SOA in authority.
                return Resolution(Rcode.NOERROR, tuple(answers), (zone.soa(),), ad=ad, zone=owner)
            # RFC 1034 4.3.2 step 3a: answer the CNAME, then restart at its target.
            cname, target = cnames[0]
            answers.append(cname)
            seen.add(name)
            name = target.target
            next_zone = self.route(name)
            if next_zone is None or name in seen:
                # Outside the world (we never recurse) or a loop: the chain is the answer,
                # and the client finds out the rest by itself.
                break
            zone = next_zone
        return Resolution(Rcode.NOERROR, tuple(answers), ad=ad, zone=owner)
