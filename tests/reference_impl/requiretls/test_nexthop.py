"""Next-hop qualification for REQUIRETLS (RFC 8689 section 4.2.1): each condition alone."""

from __future__ import annotations

import dataclasses
import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st

from reference_impl.mtasts.policy import Mode
from reference_impl.requiretls.nexthop import (
    CertNames,
    NextHop,
    NextHopFailure,
    QualifyOptions,
    cert_names_from_der,
    failure_status,
    name_matches,
    qualify,
)

MX = "mx1.example.test"
GOOD = NextHop(
    mx_name=MX,
    mx_dnssec_validated=True,
    tls_established=True,
    chain_trusted=True,
    cert_names=CertNames(dns_ids=(MX,)),
    ehlo_keywords=frozenset({"PIPELINING", "REQUIRETLS"}),
)

CASES: list[tuple[str, dict[str, object], QualifyOptions, NextHopFailure | None]] = [
    ("all conditions met", {}, QualifyOptions(), None),
    (
        "MX answer not validated, no policy",
        {"mx_dnssec_validated": False},
        QualifyOptions(),
        NextHopFailure.MX_NAME_UNTRUSTED,
    ),
    (
        "no DNSSEC, enforce policy matches",
        {"mx_dnssec_validated": False, "sts_mode": Mode.ENFORCE, "sts_mx_match": True},
        QualifyOptions(),
        None,
    ),
    (
        "no DNSSEC, enforce policy does not match",
        {"mx_dnssec_validated": False, "sts_mode": Mode.ENFORCE, "sts_mx_match": False},
        QualifyOptions(),
        NextHopFailure.MX_NAME_UNTRUSTED,
    ),
    (
        "no DNSSEC, testing policy matches, testing does not count",
        {"mx_dnssec_validated": False, "sts_mode": Mode.TESTING, "sts_mx_match": True},
        QualifyOptions(),
        NextHopFailure.MX_NAME_UNTRUSTED,
    ),
    (
        "no DNSSEC, testing policy matches, testing counts",
        {"mx_dnssec_validated": False, "sts_mode": Mode.TESTING, "sts_mx_match": True},
        QualifyOptions(sts_testing_counts=True),
        None,
    ),
    (
        "no DNSSEC, none policy matches",
        {"mx_dnssec_validated": False, "sts_mode": Mode.NONE, "sts_mx_match": True},
        QualifyOptions(sts_testing_counts=True),
        NextHopFailure.MX_NAME_UNTRUSTED,
    ),
    ("implicit MX (no MX record)", {"mx_dnssec_validated": False, "implicit_mx": True}, QualifyOptions(), None),
    ("no TLS", {"tls_established": False}, QualifyOptions(), NextHopFailure.NO_TLS),
    ("TLS unknown", {"tls_established": None}, QualifyOptions(), NextHopFailure.NO_TLS),
    ("chain not trusted", {"chain_trusted": False}, QualifyOptions(), NextHopFailure.CERT_UNTRUSTED),
    ("DANE-verified, chain not", {"chain_trusted": False, "dane_verified": True}, QualifyOptions(), None),
    (
        "name mismatch",
        {"cert_names": CertNames(dns_ids=("other.example.test",))},
        QualifyOptions(),
        NextHopFailure.CERT_NAME_MISMATCH,
    ),
    ("CN-ID only", {"cert_names": CertNames(cn_ids=(MX,))}, QualifyOptions(), None),
    (
        "CN-ID only under an enforced MTA-STS policy",
        {"cert_names": CertNames(cn_ids=(MX,)), "dns_id_only": True},
        QualifyOptions(),
        NextHopFailure.CERT_NAME_MISMATCH,
    ),
    (
        "CN-ID ignored when a DNS-ID is present (RFC 6125 6.4.4)",
        {"cert_names": CertNames(dns_ids=("other.example.test",), cn_ids=(MX,))},
        QualifyOptions(),
        NextHopFailure.CERT_NAME_MISMATCH,
    ),
    ("wildcard DNS-ID", {"cert_names": CertNames(dns_ids=("*.example.test",))}, QualifyOptions(), None),
    (
        "no REQUIRETLS after TLS",
        {"ehlo_keywords": frozenset({"PIPELINING"})},
        QualifyOptions(),
        NextHopFailure.NO_REQUIRETLS,
    ),
    ("EHLO unknown", {"ehlo_keywords": None}, QualifyOptions(), NextHopFailure.NO_REQUIRETLS),
]


@pytest.mark.parametrize(("changes", "options", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_condition(changes: dict[str, object], options: QualifyOptions, expected: NextHopFailure | None) -> None:
    hop = dataclasses.replace(GOOD, **changes)  # type: ignore[arg-type]
    assert qualify(hop, options) == expected


def test_failures_map_to_the_section_4_2_1_codes() -> None:
    assert failure_status(NextHopFailure.NO_REQUIRETLS) == "5.7.30"
    others = set(NextHopFailure) - {NextHopFailure.NO_REQUIRETLS}
    assert {failure_status(f) for f in others} == {"5.7.10"}


@pytest.mark.parametrize(
    ("reference", "presented", "expected"),
    [
        ("mx.a.test", "MX.A.TEST", True),
        ("mx.a.test.", "mx.a.test", True),
        ("mx.a.test", "*.a.test", True),
        ("a.test", "*.a.test", False),
        ("x.mx.a.test", "*.a.test", False),
        ("mx.a.test", "*.test", False),
        ("mx.a.test", "m*.a.test", False),
        ("mx.a.test", "mx.b.test", False),
        ("mx..test", "mx..test", False),
    ],
)
def test_name_matching(reference: str, presented: str, expected: bool) -> None:
    assert name_matches(reference, presented) is expected


LABEL = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=10)


@given(st.lists(LABEL, min_size=1, max_size=4))
def test_a_name_matches_itself_in_any_case(labels: list[str]) -> None:
    name = ".".join(labels)
    assert name_matches(name, name.upper())


def _cert(*, cn: str | None, sans: tuple[str, ...]) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn else [])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]), False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def test_cert_names_from_der() -> None:
    assert cert_names_from_der(_cert(cn=MX, sans=())) == CertNames((), (MX,))
    assert cert_names_from_der(_cert(cn="x", sans=(MX, "*.b.test"))) == CertNames((MX, "*.b.test"), ("x",))
    assert cert_names_from_der(b"not a certificate") == CertNames()
    assert cert_names_from_der(None) == CertNames()


@given(st.binary(max_size=200))
def test_cert_names_never_raise(der: bytes) -> None:
    assert isinstance(cert_names_from_der(der), CertNames)
