"""Tests for the world's CA: real TLS handshakes on loopback, and the certificates' contents."""

from __future__ import annotations

import datetime
import hashlib
import socket
import ssl
import stat
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.world.ca import (
    ID_ON_DNSSRV,
    ID_ON_XMPPADDR,
    CaError,
    CaSpecError,
    WorldCA,
    der_ia5string,
    der_utf8string,
)
from conformance.world.spec import CertProfile, CertSpec

HOST = "mx1.example.test"
TIMEOUT = 5.0

# OpenSSL X509_V_ERR_* codes, named so the table below reads as the failure it expects.
X509_V_ERR_CERT_NOT_YET_VALID = 9
X509_V_ERR_CERT_HAS_EXPIRED = 10
X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT = 18
X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY = 20
X509_V_ERR_HOSTNAME_MISMATCH = 62
X509_V_ERR_EE_KEY_TOO_SMALL = 66


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> WorldCA:
    return WorldCA(tmp_path_factory.mktemp("ca"))


@dataclass
class Outcome:
    version: str | None = None
    client_error: ssl.SSLError | None = None
    server_error: BaseException | None = None


def handshake(server: ssl.SSLContext, client: ssl.SSLContext, server_hostname: str) -> Outcome:
    """One TLS handshake over a loopback TCP connection; both sides bounded by TIMEOUT."""
    outcome = Outcome()
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(TIMEOUT)
    port = listener.getsockname()[1]

    def serve() -> None:
        try:
            conn, _ = listener.accept()
        except OSError as exc:
            outcome.server_error = exc
            return
        conn.settimeout(TIMEOUT)
        try:
            with server.wrap_socket(conn, server_side=True):
                pass
        except (ssl.SSLError, OSError) as exc:
            outcome.server_error = exc
        finally:
            conn.close()

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw:
            try:
                with client.wrap_socket(raw, server_hostname=server_hostname) as tls:
                    outcome.version = tls.version()
            except ssl.SSLError as exc:
                outcome.client_error = exc
    finally:
        thread.join(TIMEOUT)
        listener.close()
    return outcome


def permissive_client(ca: WorldCA) -> ssl.SSLContext:
    """A client that trusts the world root but accepts legacy TLS and weak keys."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.load_verify_locations(cadata=ca.trusted_root_pem.decode("ascii"))
    return ctx


def load(ca: WorldCA, spec: CertSpec, host: str = HOST) -> x509.Certificate:
    return x509.load_der_x509_certificate(ca.issue(host, spec).der)


def san(cert: x509.Certificate) -> x509.SubjectAlternativeName:
    return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value


def der_read(data: bytes) -> tuple[int, bytes]:
    """Decode one DER TLV that spans all of ``data``: (tag, contents)."""
    tag, first = data[0], data[1]
    if first < 0x80:
        length, offset = first, 2
    else:
        n = first & 0x7F
        length, offset = int.from_bytes(data[2 : 2 + n], "big"), 2 + n
    assert len(data) == offset + length
    return tag, data[offset:]


def root_public_key(pem: bytes) -> ec.EllipticCurvePublicKey:
    key = x509.load_pem_x509_certificate(pem).public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    return key


# -- handshakes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("profile", "extra"),
    [
        (CertProfile.VALID, {}),
        (CertProfile.WILDCARD, {}),
        (CertProfile.SRV_ID, {"srv_ids": ("_xmpp-server.example.test",)}),
        (CertProfile.XMPP_ADDR, {"xmpp_addrs": ("example.test",)}),
    ],
)
def test_good_profiles_pass_strict_client(ca: WorldCA, profile: CertProfile, extra: dict[str, tuple[str, ...]]) -> None:
    spec = CertSpec(profile=profile, **extra)
    outcome = handshake(ca.server_context(HOST, spec), ca.client_context(), HOST)
    assert outcome.client_error is None
    assert outcome.version == "TLSv1.3"


@pytest.mark.parametrize(
    ("profile", "code"),
    [
        (CertProfile.EXPIRED, X509_V_ERR_CERT_HAS_EXPIRED),
        (CertProfile.NOT_YET_VALID, X509_V_ERR_CERT_NOT_YET_VALID),
        (CertProfile.WRONG_NAME, X509_V_ERR_HOSTNAME_MISMATCH),
        (CertProfile.CN_ONLY, X509_V_ERR_HOSTNAME_MISMATCH),
        (CertProfile.SELF_SIGNED, X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT),
        (CertProfile.UNTRUSTED_CA, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY),
        (CertProfile.WEAK_KEY, X509_V_ERR_EE_KEY_TOO_SMALL),
    ],
)
def test_bad_profiles_fail_verification(ca: WorldCA, profile: CertProfile, code: int) -> None:
    outcome = handshake(ca.server_context(HOST, CertSpec(profile=profile)), ca.client_context(), HOST)
    assert isinstance(outcome.client_error, ssl.SSLCertVerificationError)
    assert outcome.client_error.verify_code == code
    assert outcome.version is None


def test_wildcard_does_not_match_parent_or_two_levels(ca: WorldCA) -> None:
    spec = CertSpec(profile=CertProfile.WILDCARD)
    for other in ("example.test", "a.mx1.example.test"):
        outcome = handshake(ca.server_context(HOST, spec), ca.client_context(), other)
        assert isinstance(outcome.client_error, ssl.SSLCertVerificationError)
        assert outcome.client_error.verify_code == X509_V_ERR_HOSTNAME_MISMATCH


def test_tls_max_caps_version(ca: WorldCA) -> None:
    ctx = ca.server_context(HOST, CertSpec(), tls_max="TLSv1.2")
    assert handshake(ctx, ca.client_context(), HOST).version == "TLSv1.2"


@pytest.mark.parametrize(("version"), ["TLSv1", "TLSv1.1"])
def test_legacy_tls_offered_but_strict_client_refuses(ca: WorldCA, version: str) -> None:
    ctx = ca.server_context(HOST, CertSpec(), tls_min=version, tls_max=version)
    assert handshake(ctx, permissive_client(ca), HOST).version == version
    ctx = ca.server_context(HOST, CertSpec(), tls_min=version, tls_max=version)
    refused = handshake(ctx, ca.client_context(), HOST)
    assert refused.version is None
    assert refused.client_error is not None
    assert not isinstance(refused.client_error, ssl.SSLCertVerificationError)


def test_weak_key_is_served_to_a_permissive_client(ca: WorldCA) -> None:
    ctx = ca.server_context(HOST, CertSpec(profile=CertProfile.WEAK_KEY))
    assert handshake(ctx, permissive_client(ca), HOST).version is not None


def test_client_context_is_strict(ca: WorldCA) -> None:
    ctx = ca.client_context()
    assert ctx.check_hostname
    assert ctx.verify_mode is ssl.CERT_REQUIRED
    assert ctx.minimum_version is ssl.TLSVersion.TLSv1_2
    assert not ctx.hostname_checks_common_name
    assert len(ctx.get_ca_certs()) == 1


# -- cache, files, errors --------------------------------------------------------------------


def test_issue_is_cached_per_host_and_spec(ca: WorldCA) -> None:
    first = ca.issue("cache.example.test", CertSpec())
    assert ca.issue("cache.example.test", CertSpec()) is first
    assert ca.issue("CACHE.example.test.", CertSpec()) is first
    assert ca.issue("cache.example.test", CertSpec(profile=CertProfile.EXPIRED)) is not first
    assert ca.issue("other.example.test", CertSpec()) is not first


def test_server_context_is_new_each_call(ca: WorldCA) -> None:
    assert ca.server_context(HOST, CertSpec()) is not ca.server_context(HOST, CertSpec())


def test_files_on_disk(ca: WorldCA) -> None:
    issued = ca.issue(HOST, CertSpec())
    assert issued.cert_path.read_bytes() == issued.chain_pem
    assert issued.key_path.read_bytes() == issued.key_pem
    assert stat.S_IMODE(issued.key_path.stat().st_mode) == 0o600
    assert ca.trust_bundle_path().read_bytes() == ca.trusted_root_pem
    assert ca.trusted_root_pem != ca.untrusted_root_pem


def test_spki_sha256_is_tlsa_311_data(ca: WorldCA) -> None:
    issued = ca.issue(HOST, CertSpec())
    spki = (
        x509.load_der_x509_certificate(issued.der)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    assert issued.spki_sha256 == hashlib.sha256(spki).hexdigest()


def test_missing_srv_ids_and_xmpp_addrs_are_errors(ca: WorldCA) -> None:
    with pytest.raises(CaSpecError, match="srv_ids"):
        ca.issue(HOST, CertSpec(profile=CertProfile.SRV_ID))
    with pytest.raises(CaSpecError, match="xmpp_addrs"):
        ca.issue(HOST, CertSpec(profile=CertProfile.XMPP_ADDR))
    with pytest.raises(CaSpecError, match="ASCII"):
        ca.issue(HOST, CertSpec(profile=CertProfile.SRV_ID, srv_ids=("_xmpp-server.exämple",)))


@pytest.mark.parametrize("name", ["bad name.test", "exämple.test", "a..b", ""])
def test_bad_names_are_errors(ca: WorldCA, name: str) -> None:
    with pytest.raises(CaSpecError):
        ca.issue(name, CertSpec())


def test_wildcard_needs_a_parent(ca: WorldCA) -> None:
    with pytest.raises(CaSpecError, match="parent"):
        ca.issue("localhost", CertSpec(profile=CertProfile.WILDCARD))


def test_bad_tls_versions(ca: WorldCA) -> None:
    with pytest.raises(CaError, match="unknown"):
        ca.server_context(HOST, CertSpec(), tls_min="SSLv3")
    with pytest.raises(CaError, match="above"):
        ca.server_context(HOST, CertSpec(), tls_min="TLSv1.3", tls_max="TLSv1.2")


# -- certificate contents --------------------------------------------------------------------


def test_valid_contents(ca: WorldCA) -> None:
    cert = load(ca, CertSpec(names=("a.example.test", "b.example.test")))
    assert san(cert).get_values_for_type(x509.DNSName) == ["a.example.test", "b.example.test"]
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "a.example.test"
    assert cert.issuer == x509.load_pem_x509_certificate(ca.trusted_root_pem).subject
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca.trusted_root_pem))
    key = cert.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    assert key.curve.name == "secp256r1"
    now = datetime.datetime.now(datetime.UTC)
    assert cert.not_valid_before_utc < now < cert.not_valid_after_utc
    bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert not bc.ca


def test_default_name_is_the_host(ca: WorldCA) -> None:
    issued = ca.issue(HOST, CertSpec())
    assert issued.dns_names == (HOST,)
    assert san(load(ca, CertSpec())).get_values_for_type(x509.DNSName) == [HOST]


def test_ip_host_gets_an_ip_san(ca: WorldCA) -> None:
    cert = load(ca, CertSpec(), host="127.0.0.9")
    assert [str(ip) for ip in san(cert).get_values_for_type(x509.IPAddress)] == ["127.0.0.9"]


def test_expired_and_not_yet_valid_dates(ca: WorldCA) -> None:
    now = datetime.datetime.now(datetime.UTC)
    expired = load(ca, CertSpec(profile=CertProfile.EXPIRED))
    assert expired.not_valid_after_utc < now - datetime.timedelta(days=7)
    future = load(ca, CertSpec(profile=CertProfile.NOT_YET_VALID))
    assert future.not_valid_before_utc > now + datetime.timedelta(days=7)
    issued = ca.issue(HOST, CertSpec(profile=CertProfile.EXPIRED))
    assert issued.not_after == expired.not_valid_after_utc


def test_wrong_name_contents(ca: WorldCA) -> None:
    default = load(ca, CertSpec(profile=CertProfile.WRONG_NAME))
    assert san(default).get_values_for_type(x509.DNSName) == ["wrong-name.invalid"]
    chosen = load(ca, CertSpec(profile=CertProfile.WRONG_NAME, names=("mx.other.test",)))
    assert san(chosen).get_values_for_type(x509.DNSName) == ["mx.other.test"]


def test_wildcard_contents(ca: WorldCA) -> None:
    cert = load(ca, CertSpec(profile=CertProfile.WILDCARD))
    assert san(cert).get_values_for_type(x509.DNSName) == ["*.example.test"]


def test_cn_only_contents(ca: WorldCA) -> None:
    cert = load(ca, CertSpec(profile=CertProfile.CN_ONLY))
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == HOST
    assert ca.issue(HOST, CertSpec(profile=CertProfile.CN_ONLY)).dns_names == ()


def test_self_signed_contents(ca: WorldCA) -> None:
    cert = load(ca, CertSpec(profile=CertProfile.SELF_SIGNED))
    assert cert.issuer == cert.subject
    cert.verify_directly_issued_by(cert)
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_untrusted_ca_contents(ca: WorldCA) -> None:
    cert = load(ca, CertSpec(profile=CertProfile.UNTRUSTED_CA))
    untrusted_root = x509.load_pem_x509_certificate(ca.untrusted_root_pem)
    assert cert.issuer == untrusted_root.subject
    cert.verify_directly_issued_by(untrusted_root)
    assert san(cert).get_values_for_type(x509.DNSName) == [HOST]


def test_weak_key_contents(ca: WorldCA) -> None:
    key = load(ca, CertSpec(profile=CertProfile.WEAK_KEY)).public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    assert key.key_size == 1024


def test_srv_id_contents(ca: WorldCA) -> None:
    spec = CertSpec(
        profile=CertProfile.SRV_ID,
        srv_ids=("_xmpp-server.example.test", "_xmpp-client.example.test"),
    )
    names = san(load(ca, spec))
    others = names.get_values_for_type(x509.OtherName)
    assert [o.type_id for o in others] == [ID_ON_DNSSRV, ID_ON_DNSSRV]
    decoded = [der_read(o.value) for o in others]
    assert decoded == [(0x16, b"_xmpp-server.example.test"), (0x16, b"_xmpp-client.example.test")]
    assert ID_ON_DNSSRV.dotted_string == "1.3.6.1.5.5.7.8.7"
    assert names.get_values_for_type(x509.DNSName) == [HOST]


def test_xmpp_addr_contents(ca: WorldCA) -> None:
    spec = CertSpec(profile=CertProfile.XMPP_ADDR, xmpp_addrs=("exämple.test",))
    names = san(load(ca, spec))
    (other,) = names.get_values_for_type(x509.OtherName)
    assert other.type_id == ID_ON_XMPPADDR
    assert ID_ON_XMPPADDR.dotted_string == "1.3.6.1.5.5.7.8.5"
    assert der_read(other.value) == (0x0C, "exämple.test".encode())
    assert names.get_values_for_type(x509.DNSName) == [HOST]


def test_roots_are_distinct_cas(ca: WorldCA) -> None:
    trusted = x509.load_pem_x509_certificate(ca.trusted_root_pem)
    untrusted = x509.load_pem_x509_certificate(ca.untrusted_root_pem)
    assert trusted.subject != untrusted.subject
    assert root_public_key(ca.trusted_root_pem) != root_public_key(ca.untrusted_root_pem)
    for root in (trusted, untrusted):
        assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


# -- DER helpers -----------------------------------------------------------------------------


@settings(max_examples=60)
@given(st.text(max_size=300))
def test_der_utf8string_round_trip(text: str) -> None:
    tag, body = der_read(der_utf8string(text))
    assert tag == 0x0C
    assert body.decode("utf-8") == text


@settings(max_examples=60)
@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=400))
def test_der_ia5string_round_trip(text: str) -> None:
    tag, body = der_read(der_ia5string(text))
    assert tag == 0x16
    assert body.decode("ascii") == text


@given(st.text(min_size=1).filter(lambda t: not t.isascii()))
def test_der_ia5string_rejects_non_ascii(text: str) -> None:
    with pytest.raises(CaError):
        der_ia5string(text)


def test_fresh_ca_writes_bundle(tmp_path: Path) -> None:
    fresh_ca = WorldCA(tmp_path)
    assert fresh_ca.trust_bundle_path() == tmp_path / "trust-bundle.pem"
    assert fresh_ca.trust_bundle_path().read_bytes() == fresh_ca.trusted_root_pem


@pytest.mark.parametrize(("size", "header"), [(127, b"\x0c\x7f"), (128, b"\x0c\x81\x80"), (300, b"\x0c\x82\x01\x2c")])
def test_der_length_forms(size: int, header: bytes) -> None:
    assert der_utf8string("x" * size) == header + b"x" * size
