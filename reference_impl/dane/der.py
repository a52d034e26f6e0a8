"""The SubjectPublicKeyInfo of a certificate, as the DER bytes it was sent in (RFC 6698 section 2.1.2).

Selector 1 of a TLSA record (RFC 6698 section 2.1.2) hashes or compares "the DER-encoded
binary structure as defined in [RFC5280]" of the certificate's SubjectPublicKeyInfo. Those
bytes are cut out of the certificate here rather than re-encoded from a parsed public key:
re-encoding needs a key type the crypto library knows and may normalise odd encodings, while
DANE matches the bytes the server presented.

RFC 5280 section 4.1::

    Certificate  ::=  SEQUENCE  { tbsCertificate TBSCertificate, ... }
    TBSCertificate  ::=  SEQUENCE  {
        version         [0]  EXPLICIT Version DEFAULT v1,
        serialNumber         CertificateSerialNumber,
        signature            AlgorithmIdentifier,
        issuer               Name,
        validity             Validity,
        subject              Name,
        subjectPublicKeyInfo SubjectPublicKeyInfo,
        ... }

Only definite-length DER (X.690 section 10.1) is read; anything else is a
:class:`~reference_impl.dane.errors.CertificateError`.
"""

from __future__ import annotations

from reference_impl.dane.errors import CertificateError

__all__ = ["subject_public_key_info"]

_SEQUENCE = 0x30
_INTEGER = 0x02
_VERSION = 0xA0  # [0] EXPLICIT, constructed
_MAX_LENGTH_OCTETS = 4


def _error(detail: str) -> CertificateError:
    return CertificateError("certificate-der", "RFC 5280", "4.1", detail)


def _element(data: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """The element at ``pos``: (tag, start of its content, end of the element)."""
    if pos + 2 > end:
        raise _error("truncated element header")
    tag, first = data[pos], data[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > _MAX_LENGTH_OCTETS:
            raise _error("indefinite or oversized length")  # X.690 10.1: DER lengths are definite
        if pos + count > end:
            raise _error("truncated length")
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    if pos + length > end:
        raise _error("element longer than its container")
    return tag, pos, pos + length


def _expect(data: bytes, pos: int, end: int, tag: int, what: str) -> tuple[int, int]:
    found, start, stop = _element(data, pos, end)
    if found != tag:
        raise _error(f"{what}: tag 0x{found:02x}, expected 0x{tag:02x}")
    return start, stop


def subject_public_key_info(cert_der: bytes) -> bytes:
    """The DER SubjectPublicKeyInfo element of ``cert_der`` (tag and length included);
    raises :class:`CertificateError` when the certificate cannot be walked."""
    cert_start, cert_end = _expect(cert_der, 0, len(cert_der), _SEQUENCE, "Certificate")
    pos, tbs_end = _expect(cert_der, cert_start, cert_end, _SEQUENCE, "TBSCertificate")
    tag, _, stop = _element(cert_der, pos, tbs_end)
    if tag == _VERSION:
        pos = stop
    _, pos = _expect(cert_der, pos, tbs_end, _INTEGER, "serialNumber")
    for what in ("signature", "issuer", "validity", "subject"):
        _, pos = _expect(cert_der, pos, tbs_end, _SEQUENCE, what)
    start = pos
    _, stop = _expect(cert_der, pos, tbs_end, _SEQUENCE, "subjectPublicKeyInfo")
    return cert_der[start:stop]
