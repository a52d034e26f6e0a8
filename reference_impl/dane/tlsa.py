"""TLSA records (RFC 6698 section 2) and matching a presented chain against them for SMTP (RFC 7672 section 3).

**Presentation form** (RFC 6698 section 2.2): three 8-bit unsigned decimal integers (usage,
selector, matching type) and the certificate association data as hexadecimal, in which
whitespace is allowed. :func:`parse_tlsa` reads that form and knows the registered values:
usage 0-3 (section 2.1.1), selector 0-1 (2.1.2), matching type 0-2 (2.1.3); any other value
is a :class:`~reference_impl.dane.errors.TlsaError` (such a record is "unusable", RFC 7671
section 4 by way of RFC 6698 section 4.1: the caller skips it). Zone-file parentheses and the
RFC 7218 acronyms are not read. :func:`presentation` writes the form RFC 8460 section 4.5 wants
in a report's "policy-string": four fields separated by one space, "no internal spaces or
grouping parentheses", decimal integers and lower-case hex (RFC 6698 hex is case-insensitive).

**Matching** (:func:`verify_chain`, :func:`match_tlsa`) per RFC 7672 section 3.1:

* DANE-EE(3) (3.1.1): the record matches the leaf, the first certificate presented: selector
  0 the whole certificate DER, 1 its SubjectPublicKeyInfo DER (RFC 6698 section 2.1.2);
  matching type 0 exact, 1 SHA-256, 2 SHA-512 (2.1.3). No name check and no expiry check.
* DANE-TA(2) (3.1.2): the record matches a certificate of the chain above the leaf (a trust
  anchor the server sends, RFC 7672 section 3.1.2 requires it to), or, for a full certificate
  in the record ("2 0 0"), the anchor is the record itself and may be absent from the chain.
  The leaf must chain up to the anchor and carry the MX host's name
  (:mod:`reference_impl.dane.chain`).
* PKIX-TA(0) and PKIX-EE(1) are not used for SMTP (3.1.3): such records are unusable and
  never match.

A record whose digest has the wrong length for its matching type is kept as usable: it simply
never matches, so a broken digest fails closed ("tlsa-invalid") instead of turning into a host
with no usable record.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

from reference_impl.dane.chain import links_to, load_chain, name_matches
from reference_impl.dane.der import subject_public_key_info
from reference_impl.dane.errors import CertificateError, TlsaError, quote_value

__all__ = [
    "DaneVerdict",
    "MatchingType",
    "Selector",
    "TlsaRecord",
    "Usage",
    "association",
    "match_tlsa",
    "parse_tlsa",
    "presentation",
    "usable_records",
    "verify_chain",
]

_SECTION = "2.2"
_MAX_DATA = 65535 - 3  # RFC 1035 3.2.1: RDLENGTH is 16 bits; three octets are the fields
_SEPARATOR = re.compile(r"[ \t]+")
_DECIMAL = re.compile(r"[0-9]+", re.ASCII)
_HEX = re.compile(r"(?:[0-9A-Fa-f]{2})+", re.ASCII)


class Usage(IntEnum):
    """RFC 6698 section 2.1.1 (names from RFC 7218)."""

    PKIX_TA = 0
    PKIX_EE = 1
    DANE_TA = 2
    DANE_EE = 3


class Selector(IntEnum):
    """RFC 6698 section 2.1.2."""

    CERT = 0  # the full certificate
    SPKI = 1  # its SubjectPublicKeyInfo


class MatchingType(IntEnum):
    """RFC 6698 section 2.1.3."""

    FULL = 0
    SHA2_256 = 1
    SHA2_512 = 2


@dataclass(frozen=True, slots=True)
class TlsaRecord:
    usage: Usage
    selector: Selector
    matching_type: MatchingType
    data: bytes  # the certificate association data

    @property
    def usable(self) -> bool:
        """RFC 7672 section 3.1.3: only DANE-TA(2) and DANE-EE(3) are used for SMTP."""
        return self.usage in (Usage.DANE_TA, Usage.DANE_EE)


def _integer(text: str, name: str, known: type[IntEnum]) -> int:
    if not _DECIMAL.fullmatch(text):
        raise TlsaError("tlsa-field-not-integer", "RFC 6698", _SECTION, f"{name} {quote_value(text)} is not decimal")
    digits = text.lstrip("0") or "0"
    if len(digits) > 3 or int(digits) > 255:
        raise TlsaError("tlsa-field-range", "RFC 6698", _SECTION, f"{name} {quote_value(text)} is not an 8-bit integer")
    value = int(digits)
    if value not in {member.value for member in known}:
        section = {"usage": "2.1.1", "selector": "2.1.2", "matching type": "2.1.3"}[name]
        rule = "tlsa-" + name.replace(" ", "-") + "-unknown"
        raise TlsaError(rule, "RFC 6698", section, f"{name} {value} is not one this implementation knows")
    return value


def parse_tlsa(text: str) -> TlsaRecord:
    """A TLSA RDATA in presentation form (RFC 6698 section 2.2), e.g. ``"3 1 1 <hex>"``.
    Raises only :class:`~reference_impl.dane.errors.TlsaError`."""
    fields = _SEPARATOR.split(text.strip(" \t"))
    if len(fields) < 4 or not fields[3]:
        raise TlsaError(
            "tlsa-fields", "RFC 6698", _SECTION, f"{quote_value(text)}: needs usage, selector, matching type and data"
        )
    usage = _integer(fields[0], "usage", Usage)
    selector = _integer(fields[1], "selector", Selector)
    matching = _integer(fields[2], "matching type", MatchingType)
    hexdata = "".join(fields[3:])  # section 2.2: whitespace is allowed within the hex
    if not _HEX.fullmatch(hexdata):
        raise TlsaError(
            "tlsa-data-not-hex", "RFC 6698", _SECTION, f"data {quote_value(hexdata)} is not an even count of hex digits"
        )
    data = bytes.fromhex(hexdata)
    if len(data) > _MAX_DATA:
        raise TlsaError("tlsa-data-too-long", "RFC 1035", "3.2.1", f"{len(data)} octets of data do not fit an RR")
    return TlsaRecord(Usage(usage), Selector(selector), MatchingType(matching), data)


def presentation(record: TlsaRecord) -> str:
    """RFC 8460 section 4.5: ``"usage selector matching-type hex"``, no internal spaces, lower-case hex."""
    return f"{int(record.usage)} {int(record.selector)} {int(record.matching_type)} {record.data.hex()}"


def usable_records(records: Sequence[TlsaRecord]) -> tuple[TlsaRecord, ...]:
    """RFC 7672 section 3.1.3: the DANE-TA(2) and DANE-EE(3) records."""
    return tuple(r for r in records if r.usable)


def association(selector: Selector, matching_type: MatchingType, cert_der: bytes) -> bytes:
    """The certificate association data of ``cert_der`` for a selector and matching type
    (RFC 6698 sections 2.1.2, 2.1.3); raises CertificateError for selector 1 when the
    certificate cannot be walked."""
    selected = cert_der if selector is Selector.CERT else subject_public_key_info(cert_der)
    if matching_type is MatchingType.SHA2_256:
        return hashlib.sha256(selected).digest()
    if matching_type is MatchingType.SHA2_512:
        return hashlib.sha512(selected).digest()
    return selected


def _matches(record: TlsaRecord, cert_der: bytes) -> bool:
    try:
        return association(record.selector, record.matching_type, cert_der) == record.data
    except CertificateError:
        return False


@dataclass(frozen=True, slots=True)
class DaneVerdict:
    """The outcome of matching one chain: the record that authenticated it, or why none did
    (the reason goes into a TLSRPT "failure-reason-code")."""

    ok: bool
    matched: TlsaRecord | None = None
    reason: str = ""


def _ta_verdict(record: TlsaRecord, chain_der: Sequence[bytes], reference_names: Sequence[str]) -> DaneVerdict | None:
    """RFC 7672 section 3.1.2 for one DANE-TA(2) record: a verdict when the anchor was found,
    None when it was not."""
    candidates = [k for k in range(1, len(chain_der)) if _matches(record, chain_der[k])]
    certs = load_chain(chain_der)
    if record.selector is Selector.CERT and record.matching_type is MatchingType.FULL:
        # The anchor is in the record itself: it may issue any certificate of the chain.
        anchor = load_chain([record.data])
        if anchor:
            certs = [*certs, anchor[0]]
            candidates.append(len(certs) - 1)
    if not candidates:
        return None
    linked = [k for k in candidates if links_to(certs, k)]
    if not linked:
        return DaneVerdict(False, None, "DANE-TA trust anchor found, but the leaf does not chain to it")
    if not certs or not name_matches(certs[0], reference_names):
        # RFC 7672 section 3.2.2: with DANE-TA the MX host name must be in the certificate.
        return DaneVerdict(False, None, "DANE-TA chain matches, but the certificate is not for the MX host name")
    return DaneVerdict(True, record)


def verify_chain(
    records: Sequence[TlsaRecord], chain_der: Sequence[bytes], reference_names: Sequence[str] = ()
) -> DaneVerdict:
    """Match the presented ``chain_der`` (leaf first) against ``records`` (RFC 7672 section 3.1);
    ``reference_names`` are the names DANE-TA(2) requires in the leaf (section 3.2.2: the MX
    host). DANE-EE(3) records are tried first: they need no more than the leaf."""
    if not chain_der:
        return DaneVerdict(False, None, "no certificate presented")
    usable = usable_records(records)
    if not usable:
        return DaneVerdict(False, None, "no usable TLSA record (only PKIX-TA/PKIX-EE, RFC 7672 3.1.3)")
    for record in usable:
        if record.usage is Usage.DANE_EE and _matches(record, chain_der[0]):
            return DaneVerdict(True, record)  # 3.1.1: no name check, no expiry check
    failures: list[str] = []
    for record in usable:
        if record.usage is Usage.DANE_TA:
            verdict = _ta_verdict(record, chain_der, reference_names)
            if verdict is not None and verdict.ok:
                return verdict
            if verdict is not None:
                failures.append(verdict.reason)
    if failures:
        return DaneVerdict(False, None, failures[0])
    return DaneVerdict(False, None, "no TLSA record matches the presented certificate chain")


def match_tlsa(records: Sequence[TlsaRecord], chain_der: Sequence[bytes], reference_names: Sequence[str] = ()) -> bool:
    """Whether one usable record of ``records`` authenticates ``chain_der`` (see :func:`verify_chain`)."""
    return verify_chain(records, chain_der, reference_names).ok
