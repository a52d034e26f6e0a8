"""The world's certificate authority: the certificates every world peer presents.

Two roots are minted at start-up with trustme: a *trusted* root (the only one the SUT is
told to trust, via ``trust_bundle_path``) and an *untrusted* root that is never published.
Leaf certificates are minted on demand with the ``cryptography`` builder, one
``CertProfile`` each (see ``conformance.world.spec``), and cached per (host, spec):

- DNS-ID (``subjectAltName`` dNSName), the identity RFC 6125 Section 6.4 and RFC 7817
  Section 3 / RFC 8461 Section 4.2 have clients check; ``cn-only`` puts the name in the
  subject CN only, which RFC 6125 Section 6.4.4 / RFC 9525 Section 6.3 tell clients to ignore.
- SRV-ID: otherName SRVName (RFC 4985 Section 2, OID 1.3.6.1.5.5.7.8.7, IA5String), used
  by XMPP (RFC 7590 Section 3.2, RFC 6120 Section 13.7.1.2).
- XmppAddr: otherName id-on-xmppAddr (RFC 6120 Section 13.7.1.4, OID 1.3.6.1.5.5.7.8.5,
  UTF8String).

Why one builder for every leaf rather than trustme's ``issue_cert`` for the plain profiles:
each bad profile then differs from ``valid`` in exactly the property it names (dates,
issuer, key, names) and in nothing else (same extensions, subject shape and key type), so a
SUT that rejects it rejects it for the intended reason.

Every profile except ``weak-key`` uses an EC P-256 key, which is cheap to mint.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
import re
import ssl
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from conformance.world.spec import CertProfile, CertSpec

__all__ = [
    "ID_ON_DNSSRV",
    "ID_ON_XMPPADDR",
    "CaError",
    "CaSpecError",
    "IssuedCert",
    "WorldCA",
    "der_ia5string",
    "der_utf8string",
]

# RFC 4985 Section 2: id-on-dnsSRV, the otherName carrying an SRVName.
ID_ON_DNSSRV = ObjectIdentifier("1.3.6.1.5.5.7.8.7")
# RFC 6120 Section 13.7.1.4: id-on-xmppAddr.
ID_ON_XMPPADDR = ObjectIdentifier("1.3.6.1.5.5.7.8.5")

_ORG = "MailTLS Conformance World"
_WRONG_NAME = "wrong-name.invalid"
# Expired / not-yet-valid certificates are far enough from "now" that no clock skew
# allowance a SUT applies can make them acceptable.
_SKEW = datetime.timedelta(days=30)
_LIFETIME = datetime.timedelta(days=365)
_BACKDATE = datetime.timedelta(days=1)

_TLS_VERSIONS: dict[str, ssl.TLSVersion] = {
    "TLSv1": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}
_LEGACY_TLS = {"TLSv1", "TLSv1.1"}
_CN_MAX = 64  # RFC 5280 Appendix A: ub-common-name
_LDH = re.compile(r"^(\*\.)?[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)*$")


class CaError(Exception):
    """Base of every error the world's CA raises."""


class CaSpecError(CaError):
    """A certificate request the CA cannot honour (bad name, missing SRV-ID, ...)."""

    def __init__(self, host: str, spec: CertSpec, reason: str) -> None:
        super().__init__(f"certificate for {host!r} ({spec.profile.value}): {reason}")
        self.host = host
        self.spec = spec
        self.reason = reason


@dataclass(frozen=True, slots=True)
class IssuedCert:
    """A minted leaf certificate, its key, and where both live on disk."""

    host: str
    spec: CertSpec
    chain_pem: bytes  # the leaf, then any intermediates (none: leaves are root-issued)
    key_pem: bytes  # PKCS#8, unencrypted
    cert_path: Path
    key_path: Path
    der: bytes  # the leaf certificate
    dns_names: tuple[str, ...]  # the SAN dNSNames (empty for cn-only)
    not_before: datetime.datetime
    not_after: datetime.datetime
    # SHA-256 of the SubjectPublicKeyInfo, hex: the data of a "3 1 1" TLSA record (RFC 6698).
    spki_sha256: str

    def describe(self) -> str:
        """One evidence line: what a client was shown (subject, names, issuer, validity)."""
        leaf = x509.load_der_x509_certificate(self.der)
        subject, issuer = leaf.subject.rfc4514_string(), leaf.issuer.rfc4514_string()
        names = ", ".join(self.dns_names) or "no DNS names (CN only)"
        signer = "self-signed" if subject == issuer else f"issuer {issuer}"
        return (
            f"{subject or '(empty subject)'}; SAN {names}; {signer}; "
            f"valid {self.not_before:%Y-%m-%d} to {self.not_after:%Y-%m-%d}; profile {self.spec.profile.value}"
        )


def der_length(n: int) -> bytes:
    """DER length octets (X.690 Section 8.1.3): short form below 128, else long form."""
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def der_ia5string(text: str) -> bytes:
    """DER of an IA5String (tag 22); RFC 4985 Section 2 types SRVName as IA5String."""
    try:
        raw = text.encode("ascii")
    except UnicodeEncodeError as exc:
        raise CaError(f"IA5String must be ASCII: {text!r}") from exc
    return b"\x16" + der_length(len(raw)) + raw


def der_utf8string(text: str) -> bytes:
    """DER of a UTF8String (tag 12); RFC 6120 Section 13.7.1.4 types XmppAddr as UTF8String."""
    raw = text.encode("utf-8")
    return b"\x0c" + der_length(len(raw)) + raw


class WorldCA:
    """Mints and caches the world's certificates; hands out TLS contexts for them."""

    def __init__(self, workdir: Path) -> None:
        self._workdir = workdir
        self._certdir = workdir / "certs"
        self._certdir.mkdir(parents=True, exist_ok=True)
        self._trusted = trustme.CA(organization_name=_ORG, organization_unit_name="Trusted root")
        self._untrusted = trustme.CA(organization_name=_ORG, organization_unit_name="Untrusted root")
        self._trusted_pem: bytes = self._trusted.cert_pem.bytes()
        self._untrusted_pem: bytes = self._untrusted.cert_pem.bytes()
        self._roots = {
            True: _load_root(self._trusted),
            False: _load_root(self._untrusted),
        }
        self._bundle = workdir / "trust-bundle.pem"
        self._bundle.write_bytes(self._trusted_pem)
        self._cache: dict[tuple[str, CertSpec], IssuedCert] = {}
        self._lock = threading.Lock()  # peers may mint from worker threads too
        self._serial = 0

    @property
    def trusted_root_pem(self) -> bytes:
        return self._trusted_pem

    @property
    def untrusted_root_pem(self) -> bytes:
        return self._untrusted_pem

    def trust_bundle_path(self) -> Path:
        """A PEM file holding only the trusted root, for SUTs to trust."""
        return self._bundle

    def issue(self, host: str, spec: CertSpec) -> IssuedCert:
        """The certificate for ``host`` per ``spec``; the same object for the same request."""
        key = (host.lower().rstrip("."), spec)
        with self._lock:
            cached = self._cache.get(key)
            if cached is None:
                cached = self._mint(key[0], spec)
                self._cache[key] = cached
            return cached

    def server_context(
        self, host: str, spec: CertSpec, *, tls_min: str = "TLSv1.2", tls_max: str = "TLSv1.3"
    ) -> ssl.SSLContext:
        """A fresh server-side context presenting the certificate for (host, spec)."""
        try:
            low, high = _TLS_VERSIONS[tls_min], _TLS_VERSIONS[tls_max]
        except KeyError as exc:
            raise CaError(f"unknown TLS version {exc.args[0]!r}") from exc
        if low > high:
            raise CaError(f"tls_min {tls_min} is above tls_max {tls_max}")
        issued = self.issue(host, spec)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        if tls_min in _LEGACY_TLS or spec.profile is CertProfile.WEAK_KEY:
            # OpenSSL 3 refuses TLS < 1.2 (SHA-1 signatures) and RSA-1024 keys at its
            # default security level; level 0 lets the world offer what it is told to.
            # Set before load_cert_chain, which checks the key against the level.
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        with warnings.catch_warnings():
            # Python deprecates TLSVersion.TLSv1/TLSv1_1; offering them is the point here.
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = low
            ctx.maximum_version = high
        ctx.load_cert_chain(issued.cert_path, issued.key_path)
        return ctx

    def client_context(self) -> ssl.SSLContext:
        """A strict client context (TLS >= 1.2, hostname checked) trusting only the trusted root."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        # Python falls back to the subject CN when there is no SAN; RFC 6125 Section 6.4.4
        # and RFC 8461 Section 4.2 (DNS-ID only) say a client must not.
        ctx.hostname_checks_common_name = False
        ctx.load_verify_locations(cadata=self._trusted_pem.decode("ascii"))
        return ctx

    # -- minting ---------------------------------------------------------------------------

    def _mint(self, host: str, spec: CertSpec) -> IssuedCert:
        profile = spec.profile
        names = _dns_names(host, spec)
        san_names = names
        if profile is CertProfile.WILDCARD:
            parent = names[0].partition(".")[2]
            if not parent:
                raise CaSpecError(host, spec, f"{names[0]!r} has no parent for a wildcard")
            san_names = (f"*.{parent}",)
        if profile is CertProfile.SRV_ID and not spec.srv_ids:
            raise CaSpecError(host, spec, "profile srv-id needs at least one srv_ids entry")
        if profile is CertProfile.XMPP_ADDR and not spec.xmpp_addrs:
            raise CaSpecError(host, spec, "profile xmpp-addr needs at least one xmpp_addrs entry")
        for name in san_names:
            if not _is_ip(name) and not _LDH.match(name):
                raise CaSpecError(host, spec, f"not an ASCII host name: {name!r}")

        key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
        if profile is CertProfile.WEAK_KEY:
            key = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - the weak-key profile
        else:
            key = ec.generate_private_key(ec.SECP256R1())

        now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
        not_before, not_after = now - _BACKDATE, now + _LIFETIME
        if profile is CertProfile.EXPIRED:
            not_before, not_after = now - _LIFETIME, now - _SKEW
        elif profile is CertProfile.NOT_YET_VALID:
            not_before, not_after = now + _SKEW, now + _LIFETIME

        cn = san_names[0]
        if profile is CertProfile.CN_ONLY and len(cn) > _CN_MAX:
            raise CaSpecError(host, spec, f"{cn!r} is too long for a subject CN")
        subject_attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORG)]
        if len(cn) <= _CN_MAX:
            subject_attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
        subject = x509.Name(subject_attrs)

        if profile is CertProfile.SELF_SIGNED:
            issuer_name, signer = subject, key
            aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key())
        else:
            root_cert, root_key = self._roots[profile is not CertProfile.UNTRUSTED_CA]
            issuer_name, signer = root_cert.subject, root_key
            aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key())

        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    # RSA key exchange (TLS < 1.3) encrypts to the key.
                    key_encipherment=isinstance(key, rsa.RSAPrivateKey),
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .add_extension(aki, critical=False)
        )
        if profile is not CertProfile.CN_ONLY:
            general: list[x509.GeneralName] = [_general_name(n) for n in san_names]
            # RFC 4985 Section 2: SRVName ::= IA5String, inside otherName.
            general += [x509.OtherName(ID_ON_DNSSRV, _srv_der(host, spec, s)) for s in spec.srv_ids]
            # RFC 6120 Section 13.7.1.4: XmppAddr ::= UTF8String, inside otherName.
            general += [x509.OtherName(ID_ON_XMPPADDR, der_utf8string(a)) for a in spec.xmpp_addrs]
            builder = builder.add_extension(x509.SubjectAlternativeName(general), critical=False)
        cert = builder.sign(signer, hashes.SHA256())

        cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        self._serial += 1
        stem = f"{self._serial:05d}-{profile.value}-{_slug(host)}"
        cert_path = self._certdir / f"{stem}.pem"
        key_path = self._certdir / f"{stem}.key"
        cert_path.write_bytes(cert_pem)
        _write_private(key_path, key_pem)
        spki = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return IssuedCert(
            host=host,
            spec=spec,
            chain_pem=cert_pem,
            key_pem=key_pem,
            cert_path=cert_path,
            key_path=key_path,
            der=cert.public_bytes(serialization.Encoding.DER),
            dns_names=() if profile is CertProfile.CN_ONLY else tuple(n for n in san_names if not _is_ip(n)),
            not_before=not_before,
            not_after=not_after,
            spki_sha256=hashlib.sha256(spki).hexdigest(),
        )


def _load_root(ca: trustme.CA) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert = x509.load_pem_x509_certificate(ca.cert_pem.bytes())
    key = serialization.load_pem_private_key(ca.private_key_pem.bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):  # trustme's default key type
        raise CaError(f"unexpected root key type {type(key).__name__}")
    return cert, key


def _dns_names(host: str, spec: CertSpec) -> tuple[str, ...]:
    """The names a certificate is for: the spec's, else the host's own.

    ``wrong-name`` ignores the host: its names are the spec's (the scenario chose a
    particular wrong name) or ``wrong-name.invalid`` (RFC 6761: never a real host)."""
    names = tuple(n.lower().rstrip(".") for n in spec.names)
    if spec.profile is CertProfile.WRONG_NAME:
        return names or (_WRONG_NAME,)
    if names:
        return names
    if not host:
        raise CaSpecError(host, spec, "empty host name")
    return (host,)


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _general_name(name: str) -> x509.GeneralName:
    if _is_ip(name):
        return x509.IPAddress(ipaddress.ip_address(name))
    return x509.DNSName(name)


def _srv_der(host: str, spec: CertSpec, srv_name: str) -> bytes:
    try:
        return der_ia5string(srv_name)
    except CaError as exc:
        raise CaSpecError(host, spec, str(exc)) from exc


def _slug(host: str) -> str:
    return re.sub(r"[^a-z0-9.-]", "_", host.lower())[:60] or "_"


def _write_private(path: Path, data: bytes) -> None:
    """Write a private key readable by its owner only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
