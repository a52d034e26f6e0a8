"""DANE-TA(2) checks: issuer links and reference identifiers (RFC 7672 3.1.2, 3.2; RFC 6125 6.4)."""

from __future__ import annotations

import pytest

from reference_impl.dane.chain import issued_by, links_to, load_chain, name_matches, reference_names_of

from .certs import Pki, issue


@pytest.fixture(scope="module")
def pki() -> Pki:
    return Pki.create()


def test_issuer_links(pki: Pki) -> None:
    leaf = pki.leaf("mx.d.test")
    assert issued_by(leaf.cert, pki.intermediate.cert) and issued_by(pki.intermediate.cert, pki.root.cert)
    assert not issued_by(leaf.cert, pki.root.cert)  # skips a link
    assert not issued_by(issue("x", sans=("mx.d.test",)).cert, pki.intermediate.cert)
    certs = [leaf.cert, pki.intermediate.cert, pki.root.cert]
    assert links_to(certs, 0) and links_to(certs, 1) and links_to(certs, 2)
    assert not links_to(certs, 3)  # past the end
    assert not links_to([leaf.cert, pki.root.cert], 1)


def test_load_chain_stops_at_the_first_unreadable_certificate(pki: Pki) -> None:
    leaf = pki.leaf("mx.d.test")
    certs = load_chain([leaf.der, b"garbage", pki.root.der])
    assert certs == [leaf.cert]


@pytest.mark.parametrize(
    ("sans", "cn", "reference", "ok"),
    [
        (("mx.d.test",), "x", "mx.d.test", True),
        (("MX.D.Test",), "x", "mx.d.test.", True),  # case and the root dot do not matter
        (("*.d.test",), "x", "mx.d.test", True),
        (("*.d.test",), "x", "d.test", False),  # the wildcard is one whole label
        (("*.d.test",), "x", "a.mx.d.test", False),
        (("m*.d.test",), "x", "mx.d.test", False),  # no partial-label wildcards
        (("other.test",), "mx.d.test", "mx.d.test", False),  # CN ignored when there are DNS-IDs
        ((), "mx.d.test", "mx.d.test", True),  # RFC 6125 6.4.4: CN only without DNS-IDs
        ((), "other.test", "mx.d.test", False),
    ],
)
def test_reference_identifiers(pki: Pki, sans: tuple[str, ...], cn: str, reference: str, ok: bool) -> None:
    leaf = pki.leaf(*sans, cn=cn)
    assert name_matches(leaf.cert, [reference]) is ok


def test_presented_names(pki: Pki) -> None:
    assert reference_names_of(pki.leaf("a.test", "b.test", cn="c.test").cert) == ("a.test", "b.test")
    assert reference_names_of(pki.leaf(cn="c.test").cert) == ("c.test",)
