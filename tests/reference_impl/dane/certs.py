"""Small certificate chains for the DANE tests, built with ``cryptography`` (EC P-256: fast).

``Pki`` is a root, an intermediate under it and leaves under the intermediate; each helper
returns DER, the form a TLS handshake presents and the matcher takes.
"""

from __future__ import annotations

import datetime
import hashlib
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

NOW = datetime.datetime.now(datetime.UTC)
DAY = datetime.timedelta(days=1)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


@dataclass(frozen=True)
class Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def spki(self) -> bytes:
        return self.cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def issue(
    cn: str,
    *,
    issuer: Issued | None = None,
    sans: tuple[str, ...] = (),
    ca: bool = False,
    expired: bool = False,
) -> Issued:
    """A certificate for ``cn`` (self-signed without ``issuer``)."""
    key = _key()
    not_after = NOW - DAY if expired else NOW + 30 * DAY
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer.cert.subject if issuer else _name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - 10 * DAY)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in sans]), critical=False)
    signer = issuer.key if issuer else key
    return Issued(builder.sign(signer, hashes.SHA256()), key)


@dataclass(frozen=True)
class Pki:
    root: Issued
    intermediate: Issued

    @classmethod
    def create(cls, name: str = "Test") -> Pki:
        root = issue(f"{name} Root", ca=True)
        return cls(root, issue(f"{name} Intermediate", issuer=root, ca=True))

    def leaf(self, *sans: str, cn: str = "leaf", expired: bool = False) -> Issued:
        return issue(cn, issuer=self.intermediate, sans=sans, expired=expired)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha512_hex(data: bytes) -> str:
    return hashlib.sha512(data).hexdigest()
