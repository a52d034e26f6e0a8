"""The SubjectPublicKeyInfo cut out of a certificate's DER (RFC 6698 2.1.2, RFC 5280 4.1)."""

from __future__ import annotations

import contextlib

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from hypothesis import given
from hypothesis import strategies as st

from reference_impl.dane.der import subject_public_key_info
from reference_impl.dane.errors import CertificateError

from .certs import issue


def _spki(cert: x509.Certificate) -> bytes:
    return cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.fixture(scope="module")
def ec_der() -> bytes:
    return issue("ec.test", sans=("ec.test",)).der


@pytest.fixture(scope="module")
def rsa_der() -> bytes:
    # trustme issues RSA leaves with long-form DER lengths throughout.
    pem = trustme.CA(key_type=trustme.KeyType.RSA).issue_cert("rsa.test").cert_chain_pems[0].bytes()
    return x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)


def test_spki_is_what_the_crypto_library_encodes(ec_der: bytes, rsa_der: bytes) -> None:
    for der in (ec_der, rsa_der):
        assert subject_public_key_info(der) == _spki(x509.load_der_x509_certificate(der))


def _tlv(tag: int, content: bytes) -> bytes:
    assert len(content) < 128
    return bytes([tag, len(content)]) + content


def test_a_v1_certificate_without_the_version_field() -> None:
    spki = _tlv(0x30, _tlv(0x30, b"\x06\x01\x00") + _tlv(0x03, b"\x00\x01"))
    tbs = _tlv(0x02, b"\x01") + _tlv(0x30, b"") * 4 + spki
    cert = _tlv(0x30, _tlv(0x30, tbs) + _tlv(0x30, b"") + _tlv(0x03, b"\x00"))
    assert subject_public_key_info(cert) == spki


@pytest.mark.parametrize(
    "der",
    [
        b"",
        b"\x30",
        b"\x31\x00",  # a SET, not a SEQUENCE
        b"\x30\x80\x00\x00",  # indefinite length (BER, not DER)
        b"\x30\x85\x00\x00\x00\x00\x01\x00",  # a 5-octet length
        b"\x30\x05\x30\x03\x02\x01\x01",  # longer than the data
        b"\x30\x04\x30\x02\x04\x00",  # an OCTET STRING where the serial number goes
    ],
)
def test_malformed_certificates(der: bytes) -> None:
    with pytest.raises(CertificateError) as caught:
        subject_public_key_info(der)
    assert caught.value.rule == "certificate-der"


@given(st.binary(max_size=200))
def test_any_bytes_give_bytes_or_our_error(data: bytes) -> None:
    with contextlib.suppress(CertificateError):
        assert isinstance(subject_public_key_info(data), bytes)


@given(st.data())
def test_a_cut_certificate_never_breaks_the_walker(ec_der: bytes, data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(ec_der) - 1))
    with pytest.raises(CertificateError):
        subject_public_key_info(ec_der[:cut])
