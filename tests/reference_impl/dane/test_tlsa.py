"""TLSA records in presentation form (RFC 6698 2.2, RFC 8460 4.5) and chain matching (RFC 7672 3)."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from reference_impl.dane.errors import DaneError, TlsaError
from reference_impl.dane.tlsa import (
    MatchingType,
    Selector,
    TlsaRecord,
    Usage,
    association,
    match_tlsa,
    parse_tlsa,
    presentation,
    usable_records,
    verify_chain,
)

from .certs import Issued, Pki, issue, sha256_hex, sha512_hex

MX = "mx1.d.test"

# -- parsing (RFC 6698 section 2.2) ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3 1 1 ABCD", TlsaRecord(Usage.DANE_EE, Selector.SPKI, MatchingType.SHA2_256, b"\xab\xcd")),
        ("2 0 0 00ff", TlsaRecord(Usage.DANE_TA, Selector.CERT, MatchingType.FULL, b"\x00\xff")),
        ("1 1 2 aa", TlsaRecord(Usage.PKIX_EE, Selector.SPKI, MatchingType.SHA2_512, b"\xaa")),
        ("0 0 1 aa", TlsaRecord(Usage.PKIX_TA, Selector.CERT, MatchingType.SHA2_256, b"\xaa")),
        # 2.2: "Whitespace is allowed within the string of hexadecimal characters".
        ("3 1 1 ab cd\tef", TlsaRecord(Usage.DANE_EE, Selector.SPKI, MatchingType.SHA2_256, b"\xab\xcd\xef")),
        ("  3\t1  1 ab  ", TlsaRecord(Usage.DANE_EE, Selector.SPKI, MatchingType.SHA2_256, b"\xab")),
        ("003 01 1 ab", TlsaRecord(Usage.DANE_EE, Selector.SPKI, MatchingType.SHA2_256, b"\xab")),
    ],
)
def test_parse(text: str, expected: TlsaRecord) -> None:
    assert parse_tlsa(text) == expected


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("", "tlsa-fields"),
        ("3 1 1", "tlsa-fields"),
        ("3 1 1 ", "tlsa-fields"),
        ("x 1 1 ab", "tlsa-field-not-integer"),
        ("-3 1 1 ab", "tlsa-field-not-integer"),
        ("\u0663 1 1 ab", "tlsa-field-not-integer"),  # ARABIC-INDIC DIGIT THREE is not a decimal digit here
        ("3 1.0 1 ab", "tlsa-field-not-integer"),
        ("256 1 1 ab", "tlsa-field-range"),
        ("1" + "0" * 5000 + " 1 1 ab", "tlsa-field-range"),  # no int() of a 5000-digit string
        ("4 1 1 ab", "tlsa-usage-unknown"),  # 2.1.1: 4-254 unassigned, 255 private use
        ("255 1 1 ab", "tlsa-usage-unknown"),
        ("3 2 1 ab", "tlsa-selector-unknown"),
        ("3 1 3 ab", "tlsa-matching-type-unknown"),
        ("3 1 1 abc", "tlsa-data-not-hex"),  # an odd count of hex digits
        ("3 1 1 zz", "tlsa-data-not-hex"),
        ("3 1 1 ab\n", "tlsa-data-not-hex"),
        ("3 1 1 ( ab )", "tlsa-data-not-hex"),  # zone-file parentheses are not read
        ("3 1 1 " + "ab" * 65533, "tlsa-data-too-long"),
    ],
)
def test_parse_errors(text: str, rule: str) -> None:
    with pytest.raises(TlsaError) as caught:
        parse_tlsa(text)
    assert caught.value.rule == rule
    assert str(caught.value).startswith(f"{caught.value.rfc} section {caught.value.section} [{rule}]")


def test_presentation_is_the_rfc_8460_form() -> None:
    # 4.5: four fields, one space between them, no internal spaces; hex in lower case.
    record = parse_tlsa("3  1 1 AB CD EF")
    assert presentation(record) == "3 1 1 abcdef"


def test_usable_records_are_dane_ta_and_dane_ee() -> None:
    records = [parse_tlsa(f"{usage} 1 1 ab") for usage in range(4)]
    assert [int(r.usage) for r in usable_records(records)] == [2, 3]  # RFC 7672 3.1.3


# -- properties --------------------------------------------------------------------------------

records = st.builds(
    TlsaRecord,
    st.sampled_from(Usage),
    st.sampled_from(Selector),
    st.sampled_from(MatchingType),
    st.binary(min_size=1, max_size=80),
)


@given(st.text(max_size=200))
@example("3 1 1 ")
@example("3 1 1 \x00")
def test_parse_returns_or_raises_only_its_own_error(text: str) -> None:
    try:
        record = parse_tlsa(text)
    except DaneError:
        return
    assert parse_tlsa(presentation(record)) == record


@given(records)
def test_round_trip(record: TlsaRecord) -> None:
    text = presentation(record)
    assert parse_tlsa(text) == record
    assert text == text.lower() and "  " not in text and len(text.split(" ")) == 4


@given(records, st.data())
def test_whitespace_and_case_inside_the_data_do_not_matter(record: TlsaRecord, data: st.DataObject) -> None:
    hexdata = record.data.hex()
    cuts = sorted(data.draw(st.sets(st.integers(1, max(len(hexdata) - 1, 1)), max_size=4)))
    pieces = [hexdata[i:j] for i, j in zip([0, *cuts], [*cuts, len(hexdata)], strict=True) if hexdata[i:j]]
    spaced = data.draw(st.sampled_from([" ", "\t", "  "])).join(pieces)
    upper = data.draw(st.booleans())
    text = f"{int(record.usage)} {int(record.selector)} {int(record.matching_type)} {spaced}"
    assert parse_tlsa(text.upper() if upper else text) == record


@given(records, st.integers(0, 2), st.integers(0, 255))
def test_near_miss_parameters_are_refused_with_their_rule(record: TlsaRecord, which: int, value: int) -> None:
    known = [{0, 1, 2, 3}, {0, 1}, {0, 1, 2}][which]
    fields = [str(int(record.usage)), str(int(record.selector)), str(int(record.matching_type)), record.data.hex()]
    fields[which] = str(value)
    text = " ".join(fields)
    if value in known:
        assert parse_tlsa(text) is not None
        return
    with pytest.raises(TlsaError) as caught:
        parse_tlsa(text)
    assert caught.value.rule == ["tlsa-usage-unknown", "tlsa-selector-unknown", "tlsa-matching-type-unknown"][which]


# -- matching (RFC 7672 section 3.1) -----------------------------------------------------------


@pytest.fixture(scope="module")
def pki() -> Pki:
    return Pki.create()


@pytest.fixture(scope="module")
def leaf(pki: Pki) -> Issued:
    return pki.leaf(MX)


def ee(selector: int, matching: int, cert: Issued) -> TlsaRecord:
    selected = cert.der if selector == 0 else cert.spki
    data = {0: selected.hex(), 1: sha256_hex(selected), 2: sha512_hex(selected)}[matching]
    return parse_tlsa(f"3 {selector} {matching} {data}")


@pytest.mark.parametrize("selector", [0, 1])
@pytest.mark.parametrize("matching", [0, 1, 2])
def test_dane_ee_matches_the_leaf_by_every_selector_and_matching_type(
    pki: Pki, leaf: Issued, selector: int, matching: int
) -> None:
    record = ee(selector, matching, leaf)
    chain = [leaf.der, pki.intermediate.der]
    assert match_tlsa([record], chain) and verify_chain([record], chain).matched == record
    # The record names the leaf only: another leaf, or the intermediate as leaf, does not match.
    assert not match_tlsa([record], [pki.leaf(MX).der, pki.intermediate.der])
    assert not match_tlsa([ee(selector, matching, pki.intermediate)], chain)


def test_association_of_the_spki_is_the_certificates_own_bytes(leaf: Issued) -> None:
    assert association(Selector.SPKI, MatchingType.FULL, leaf.der) == leaf.spki
    assert association(Selector.CERT, MatchingType.SHA2_256, leaf.der).hex() == sha256_hex(leaf.der)


def test_dane_ee_checks_neither_name_nor_expiry(pki: Pki) -> None:
    # RFC 7672 3.1.1: the key is what is authenticated; names and dates do not matter.
    stale = pki.leaf("other.example", expired=True)
    self_signed = issue("anything")
    assert match_tlsa([ee(1, 1, stale)], [stale.der], reference_names=[MX])
    assert match_tlsa([ee(1, 1, self_signed)], [self_signed.der])


def test_a_wrong_digest_does_not_match_and_says_so(leaf: Issued) -> None:
    wrong = parse_tlsa("3 1 1 " + "00" * 32)
    short = parse_tlsa("3 1 1 " + sha256_hex(leaf.spki)[:16])  # wrong length: usable, never matches
    verdict = verify_chain([wrong, short], [leaf.der])
    assert not verdict.ok and verdict.reason == "no TLSA record matches the presented certificate chain"


def test_pkix_usages_are_unusable_for_smtp(pki: Pki, leaf: Issued) -> None:
    # RFC 7672 3.1.3: PKIX-TA(0) and PKIX-EE(1) are not used, even when their data match.
    records = [parse_tlsa(f"1 1 1 {sha256_hex(leaf.spki)}"), parse_tlsa(f"0 0 1 {sha256_hex(pki.root.der)}")]
    verdict = verify_chain(records, [leaf.der, pki.intermediate.der, pki.root.der], [MX])
    assert not verdict.ok and "no usable TLSA record" in verdict.reason


def test_nothing_presented_matches_nothing(leaf: Issued) -> None:
    assert verify_chain([ee(1, 1, leaf)], []).reason == "no certificate presented"


def test_dane_ta_matches_an_issuer_of_the_chain_with_the_mx_name(pki: Pki) -> None:
    leaf = pki.leaf("*.d.test")  # RFC 7672 3.2.3: a wildcard as the whole left-most label
    chain = [leaf.der, pki.intermediate.der, pki.root.der]
    for record in (
        parse_tlsa(f"2 0 1 {sha256_hex(pki.intermediate.der)}"),
        parse_tlsa(f"2 1 1 {sha256_hex(pki.root.spki)}"),
        parse_tlsa(f"2 1 2 {sha512_hex(pki.intermediate.spki)}"),
    ):
        assert match_tlsa([record], chain, reference_names=[MX]), record
        assert match_tlsa([record], chain, reference_names=["MX1.D.TEST"])  # names fold case
        # RFC 7672 3.2.2: DANE-TA needs the MX host name in the certificate.
        verdict = verify_chain([record], chain, reference_names=["mx1.other.test"])
        assert not verdict.ok and "not for the MX host name" in verdict.reason
        assert not match_tlsa([record], chain, reference_names=[])


def test_dane_ta_anchor_given_in_full_by_the_record_need_not_be_sent(pki: Pki) -> None:
    leaf = pki.leaf(MX)
    record = parse_tlsa(f"2 0 0 {pki.root.der.hex()}")
    assert match_tlsa([record], [leaf.der, pki.intermediate.der], reference_names=[MX])
    assert not match_tlsa([record], [leaf.der], reference_names=[MX])  # the intermediate is missing


def test_dane_ta_needs_the_leaf_to_chain_to_the_anchor(pki: Pki) -> None:
    # A chain that merely contains the anchor's certificate is not issued by it.
    impostor = issue("impostor", sans=(MX,))
    record = parse_tlsa(f"2 0 1 {sha256_hex(pki.intermediate.der)}")
    verdict = verify_chain([record], [impostor.der, pki.intermediate.der], reference_names=[MX])
    assert not verdict.ok and "does not chain" in verdict.reason


def test_dane_ta_does_not_match_the_leaf_itself(pki: Pki, leaf: Issued) -> None:
    record = parse_tlsa(f"2 0 1 {sha256_hex(leaf.der)}")
    assert not match_tlsa([record], [leaf.der, pki.intermediate.der], reference_names=[MX])


def test_subject_cn_counts_only_without_dns_ids(pki: Pki) -> None:
    record = parse_tlsa(f"2 0 1 {sha256_hex(pki.intermediate.der)}")
    cn_only = pki.leaf(cn=MX)
    both = pki.leaf("mx9.d.test", cn=MX)
    assert match_tlsa([record], [cn_only.der, pki.intermediate.der], reference_names=[MX])
    assert not match_tlsa([record], [both.der, pki.intermediate.der], reference_names=[MX])


def test_dane_ee_wins_over_a_failing_dane_ta(pki: Pki, leaf: Issued) -> None:
    ta = parse_tlsa(f"2 0 1 {sha256_hex(pki.intermediate.der)}")
    verdict = verify_chain([ta, ee(1, 1, leaf)], [leaf.der, pki.intermediate.der], reference_names=["other.test"])
    assert verdict.ok and verdict.matched is not None and verdict.matched.usage is Usage.DANE_EE


@given(st.lists(records, max_size=4), st.lists(st.binary(max_size=300), max_size=3), st.lists(st.text(), max_size=2))
def test_matching_garbage_never_raises(tlsa: list[TlsaRecord], chain: list[bytes], names: list[str]) -> None:
    assert isinstance(match_tlsa(tlsa, chain, names), bool)
