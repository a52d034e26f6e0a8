"""Does a next hop qualify for a REQUIRETLS message? RFC 8689 section 4.2.1, sans-IO.

The sending MTA MUST, for each MX host (section 4.2.1, steps 2-5), in this order:

* step 2: trust the MX host name: the MX answer was DNSSEC-validated (the AD bit), or an
  MTA-STS policy's ``mx`` patterns match the name (RFC 8461 section 4.1). Whether a policy in
  ``testing`` mode counts is not said; :class:`QualifyOptions` makes it a choice (default: only
  ``enforce``). A host reached through the implicit MX (no MX record, the domain's own A/AAAA)
  needs no MX name check: there was no MX lookup to forge beyond the domain itself;
* step 4: TLS established, the certificate trusted (a chain to a trust anchor, or DANE,
  RFC 7672) and the MX host name matching a DNS-ID **or a CN-ID** (RFC 6125; MTA-STS alone
  accepts DNS-IDs only, ``dns_id_only``);
* step 5: REQUIRETLS in the EHLO reply that followed TLS.

:func:`qualify` checks them in that order and names the first that failed, so a table of
inputs tests each condition alone. :func:`failure_status` maps a failure to the enhanced status
code of the non-delivery notice (section 4.2.1: 5.7.30 "REQUIRETLS support required" when the
server lacks REQUIRETLS, 5.7.10 "Encryption needed" when no TLS-protected, authenticated session
could be had; an untrusted MX name is counted with the latter: no session to an authenticated
server was possible).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from enum import Enum

from cryptography import x509
from cryptography.x509.oid import NameOID

from reference_impl.mtasts.policy import Mode

__all__ = [
    "CertNames",
    "NextHop",
    "NextHopFailure",
    "QualifyOptions",
    "cert_names_from_der",
    "check_mx_name",
    "check_session",
    "failure_status",
    "name_matches",
    "qualify",
]


class NextHopFailure(Enum):
    """Which condition of RFC 8689 section 4.2.1 a next hop failed."""

    MX_NAME_UNTRUSTED = "mx-name-untrusted"  # step 2: neither DNSSEC nor an MTA-STS mx match
    NO_TLS = "no-tls"  # step 4: no TLS session (not offered, refused, handshake failed)
    CERT_UNTRUSTED = "certificate-untrusted"  # step 4: chain not trusted (nor DANE-verified)
    CERT_NAME_MISMATCH = "certificate-name-mismatch"  # step 4: MX name is no DNS-ID / CN-ID
    NO_REQUIRETLS = "requiretls-not-offered"  # step 5: post-TLS EHLO lacks REQUIRETLS


@dataclass(frozen=True, slots=True)
class CertNames:
    """The identifiers of a server certificate (RFC 6125 terms)."""

    dns_ids: tuple[str, ...] = ()  # subjectAltName dNSName entries
    cn_ids: tuple[str, ...] = ()  # subject commonName values


@dataclass(frozen=True, slots=True)
class QualifyOptions:
    sts_testing_counts: bool = False  # an MTA-STS policy in testing mode validates the MX name


@dataclass(frozen=True, slots=True)
class NextHop:
    """What the sender knows about one MX host (``None`` fields: not known yet)."""

    mx_name: str
    mx_dnssec_validated: bool = False  # the MX answer carried the AD bit
    implicit_mx: bool = False  # no MX record: the domain itself (step 4's "absence of an MX")
    sts_mode: Mode | None = None  # the MTA-STS policy in force (None: none)
    sts_mx_match: bool = False  # the policy's mx patterns match ``mx_name``
    tls_established: bool | None = None
    chain_trusted: bool = False  # verified to a trust anchor
    dane_verified: bool = False  # RFC 7672: the chain matched a usable TLSA record
    cert_names: CertNames = field(default_factory=CertNames)
    dns_id_only: bool = False  # an enforced MTA-STS policy also applies (RFC 8461 4.2: no CN-ID)
    ehlo_keywords: frozenset[str] | None = None  # of the EHLO after TLS, upper case


def _labels(name: str) -> list[str]:
    return name.rstrip(".").lower().split(".")


def name_matches(reference: str, presented: str) -> bool:
    """RFC 6125 section 6.4: case-insensitive; a wildcard only as the whole left-most label,
    standing for exactly one label (6.4.3)."""
    want, have = _labels(reference), _labels(presented)
    if len(want) != len(have) or not all(want) or not all(have):
        return False
    if have[0] == "*":
        return len(have) > 2 and want[1:] == have[1:]
    return want == have


def cert_names_from_der(der: bytes | None) -> CertNames:
    """DNS-IDs and CN-IDs of a DER certificate; an unreadable certificate has none."""
    if not der:
        return CertNames()
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        return CertNames()
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns_ids = tuple(san.get_values_for_type(x509.DNSName))
    except (x509.ExtensionNotFound, ValueError):
        dns_ids = ()
    cn_ids = tuple(str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME))
    return CertNames(dns_ids, cn_ids)


def _any_match(name: str, presented: Sequence[str]) -> bool:
    return any(name_matches(name, p) for p in presented)


def check_mx_name(hop: NextHop, options: QualifyOptions = QualifyOptions()) -> NextHopFailure | None:
    """Step 2, asked before connecting: is the MX host name trustworthy?"""
    if hop.implicit_mx or hop.mx_dnssec_validated:
        return None
    counting = {Mode.ENFORCE, Mode.TESTING} if options.sts_testing_counts else {Mode.ENFORCE}
    if hop.sts_mode in counting and hop.sts_mx_match:
        return None  # RFC 8461 section 4.1
    return NextHopFailure.MX_NAME_UNTRUSTED


def check_session(hop: NextHop) -> NextHopFailure | None:
    """Steps 4 and 5, asked once the session is as secure as it got."""
    if not hop.tls_established:
        return NextHopFailure.NO_TLS
    if not hop.dane_verified:
        if not hop.chain_trusted:
            return NextHopFailure.CERT_UNTRUSTED
        names: Collection[str] = hop.cert_names.dns_ids
        if not hop.dns_id_only and not hop.cert_names.dns_ids:
            # RFC 6125 6.4.4: a CN-ID only when the certificate has no DNS-ID at all.
            names = hop.cert_names.cn_ids
        if not _any_match(hop.mx_name, tuple(names)):
            return NextHopFailure.CERT_NAME_MISMATCH
    if hop.ehlo_keywords is None or "REQUIRETLS" not in hop.ehlo_keywords:
        return NextHopFailure.NO_REQUIRETLS
    return None


def qualify(hop: NextHop, options: QualifyOptions = QualifyOptions()) -> NextHopFailure | None:
    """The first condition of section 4.2.1 ``hop`` fails, or None when it qualifies."""
    return check_mx_name(hop, options) or check_session(hop)


def failure_status(failure: NextHopFailure) -> str:
    """Section 4.2.1: 5.7.30 for a server without REQUIRETLS, 5.7.10 otherwise."""
    return "5.7.30" if failure is NextHopFailure.NO_REQUIRETLS else "5.7.10"
