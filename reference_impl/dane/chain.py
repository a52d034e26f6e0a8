"""The DANE-TA(2) checks of a presented chain: issuer links and the server's name (RFC 7672 3.1.2, 3.2).

A DANE-TA(2) record names a trust anchor, not the server's own certificate, so matching it is
not enough (RFC 7672 section 3.1.2):

* **Issuer links.** The leaf must chain to the matched trust anchor: each certificate from the
  leaf up to the anchor is issued by the next one (name and signature; RFC 5280 section 6.1
  in its simplest form). Without this check any chain that merely *contains* the anchor's
  certificate would pass, whoever signed the leaf.
* **Reference identifiers** (RFC 7672 section 3.2.2): the leaf must be for the MX host (the TLSA
  base domain; with no CNAME expansion here the two are the same name). Its DNS-IDs are
  matched as RFC 7672 section 3.2.3 and RFC 6125 section 6.4 say, a wildcard only as the whole
  left-most label (the rule :func:`reference_impl.mtasts.matching.mx_pattern_matches` already
  implements for MTA-STS), case-insensitively; the subject CN counts only when the
  certificate has no DNS-ID at all (RFC 6125 section 6.4.4).

Not checked (a documented simplification): validity dates of the chain and the basic
constraints of the intermediates. DANE-EE(3) needs none of this (RFC 7672 section 3.1.1:
no name checks and no expiry checks).
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.x509.oid import NameOID

from reference_impl.mtasts.matching import mx_pattern_matches

__all__ = ["issued_by", "links_to", "load_chain", "name_matches", "reference_names_of"]


def load_chain(chain_der: Sequence[bytes]) -> list[x509.Certificate]:
    """The presented chain parsed, cut at the first certificate that does not parse (nothing
    above it can be linked to the leaf)."""
    certs: list[x509.Certificate] = []
    for der in chain_der:
        try:
            certs.append(x509.load_der_x509_certificate(der))
        except ValueError:
            break
    return certs


def issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Whether ``issuer`` issued ``cert``: the issuer name matches and its key verifies the
    signature (RFC 5280 section 6.1.3 (a)(1), (a)(4))."""
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def links_to(certs: Sequence[x509.Certificate], top: int) -> bool:
    """Whether ``certs[0]`` (the leaf) chains up to ``certs[top]``, link by link."""
    return top < len(certs) and all(issued_by(certs[i], certs[i + 1]) for i in range(top))


def reference_names_of(cert: x509.Certificate) -> tuple[str, ...]:
    """The presented identifiers: the SAN DNS-IDs, or the subject CN when there is none
    (RFC 6125 section 6.4.4)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns_ids = tuple(str(name) for name in san.get_values_for_type(x509.DNSName))
    except (x509.ExtensionNotFound, ValueError):
        dns_ids = ()
    if dns_ids:
        return dns_ids
    try:
        return tuple(str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME))
    except ValueError:
        return ()


def name_matches(cert: x509.Certificate, reference_names: Sequence[str]) -> bool:
    """RFC 7672 section 3.2.2: one presented identifier matches one reference identifier."""
    presented = reference_names_of(cert)
    return any(mx_pattern_matches(p, name) for p in presented for name in reference_names if name)
