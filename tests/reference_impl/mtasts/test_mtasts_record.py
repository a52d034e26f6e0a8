"""The ``_mta-sts`` TXT record (RFC 8461 section 3.1): table-driven edge cases and properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference_impl.mtasts.errors import RecordError
from reference_impl.mtasts.record import (
    RecordReadings,
    StsRecord,
    parse_record,
    render_record,
    select_record,
)
from tests.reference_impl.mtasts.strategies import record_ids, record_texts, records, token_soup

LITERAL = RecordReadings(whitespace_before_semicolon=False)

# --- parse_record: valid records (RFC-NOTES 1.1, TXT record) --------------------------------

VALID = [
    ("rfc-example", "v=STSv1; id=20160831085700Z;", StsRecord("20160831085700Z")),
    ("no-trailing-semicolon", "v=STSv1; id=20160831085700Z", StsRecord("20160831085700Z")),
    ("no-spaces", "v=STSv1;id=abc", StsRecord("abc")),
    ("tabs-around-delims", "v=STSv1;\tid=abc\t;\t", StsRecord("abc")),
    ("trailing-delim-with-spaces", "v=STSv1; id=abc ; ", StsRecord("abc")),
    ("id-32-chars", "v=STSv1; id=" + "a" * 32, StsRecord("a" * 32)),
    ("id-one-char", "v=STSv1; id=0", StsRecord("0")),
    ("extension-after-id", "v=STSv1; id=1; foo=bar", StsRecord("1", (("foo", "bar"),))),
    ("extension-before-id", "v=STSv1; x-y.z_1=a:b<c>; id=1;", StsRecord("1", (("x-y.z_1", "a:b<c>"),))),
    ("extension-name-32-chars", "v=STSv1; id=1; " + "e" * 32 + "=v", StsRecord("1", (("e" * 32, "v"),))),
    ("ID-uppercase-is-extension", "v=STSv1; id=1; ID=2", StsRecord("1", (("ID", "2"),))),
    ("duplicate-id-first-wins", "v=STSv1; id=first; id=second", StsRecord("first")),
    ("duplicate-id-later-only-extension-syntax", "v=STSv1; id=first; id=not-an-id", StsRecord("first")),
    ("duplicate-extension-first-wins", "v=STSv1; id=1; a=1; a=2", StsRecord("1", (("a", "1"),))),
    ("later-v-ignored", "v=STSv1; id=1; v=STSv2", StsRecord("1")),
    ("whitespace-before-semicolon-abnf", "v=STSv1 ; id=1", StsRecord("1")),
]


@pytest.mark.parametrize(("text", "expected"), [case[1:] for case in VALID], ids=[case[0] for case in VALID])
def test_valid_records(text: str, expected: StsRecord) -> None:
    assert parse_record(text) == expected


# --- parse_record: invalid records -----------------------------------------------------------

INVALID = [
    ("empty", "", "txt-version-first"),
    ("id-first", "id=1; v=STSv1", "txt-version-first"),
    ("version-lowercase", "v=stsv1; id=1", "txt-version-first"),
    ("version-other", "v=STSv2; id=1", "txt-version-first"),
    ("version-longer", "v=STSv10; id=1", "txt-version-first"),
    ("leading-space", " v=STSv1; id=1", "txt-version-first"),
    ("no-delimiter-after-version", "v=STSv1 id=1", "txt-version-first"),
    ("missing-id", "v=STSv1;", "txt-id-missing"),
    ("missing-id-only-version", "v=STSv1", "txt-id-missing"),
    ("missing-id-with-extension", "v=STSv1; foo=bar", "txt-id-missing"),
    ("id-33-chars", "v=STSv1; id=" + "a" * 33, "txt-id-invalid"),
    ("id-punctuation", "v=STSv1; id=2016-08-31", "txt-id-invalid"),
    ("id-empty", "v=STSv1; id=", "txt-id-invalid"),
    ("id-non-ascii-digit", "v=STSv1; id=\u0661", "txt-not-ascii"),
    ("duplicate-id-first-invalid", "v=STSv1; id=bad-one; id=good", "txt-id-invalid"),
    ("double-semicolon", "v=STSv1; id=1;; foo=bar", "txt-empty-field"),
    ("double-trailing-semicolon", "v=STSv1; id=1;;", "txt-empty-field"),
    ("field-without-equals", "v=STSv1; id=1; foo", "txt-field-syntax"),
    ("extension-name-punctuation-first", "v=STSv1; id=1; _x=1", "txt-ext-name-invalid"),
    ("extension-name-33-chars", "v=STSv1; id=1; " + "e" * 33 + "=v", "txt-ext-name-invalid"),
    ("extension-value-empty", "v=STSv1; id=1; foo=", "txt-ext-value-invalid"),
    ("extension-value-equals", "v=STSv1; id=1; foo=a=b", "txt-ext-value-invalid"),
    ("extension-value-space", "v=STSv1; id=1; foo=a b", "txt-ext-value-invalid"),
    ("extension-value-ctl", "v=STSv1; id=1; foo=a\x7f", "txt-ext-value-invalid"),
    ("trailing-space-without-semicolon", "v=STSv1; id=1 ", "txt-trailing-whitespace"),
    ("non-ascii", "v=STSv1; id=1; x=\u00e9", "txt-not-ascii"),
]


@pytest.mark.parametrize(("text", "rule"), [case[1:] for case in INVALID], ids=[case[0] for case in INVALID])
def test_invalid_records(text: str, rule: str) -> None:
    with pytest.raises(RecordError) as caught:
        parse_record(text)
    assert caught.value.rule == rule
    assert caught.value.section in {"3.1", "3.2"}


def test_erratum_6285_literal_reading_rejects_whitespace_before_semicolon() -> None:
    with pytest.raises(RecordError) as caught:
        parse_record("v=STSv1 ; id=1", LITERAL)
    assert caught.value.rule == "txt-version-whitespace"
    assert parse_record("v=STSv1; id=1 ; x=y", LITERAL) == StsRecord("1", (("x", "y"),))


# --- select_record: the RRset ----------------------------------------------------------------

SELECT = [
    ("no-rrs", [], None),
    ("only-unrelated", [[b"google-site-verification=abc"]], None),
    ("one-among-unrelated", [[b"spf1 -all"], [b"v=STSv1; id=1;"], [b"x"]], StsRecord("1")),
    ("split-strings-joined-without-spaces", [[b"v=STSv1; id=abc", b"def;"]], StsRecord("abcdef")),
    ("split-inside-prefix", [[b"v=ST", b"Sv1;", b" id=1"]], StsRecord("1")),
    ("empty-strings", [[b"", b"v=STSv1;id=1", b""]], StsRecord("1")),
    ("lowercase-version-discarded", [[b"v=stsv1; id=1"]], None),
    ("id-first-discarded", [[b"id=1; v=STSv1"]], None),
    ("version-without-semicolon-discarded", [[b"v=STSv1"]], None),
    ("invalid-record-discarded-by-prefix", [[b"v=STSv10; id=1"], [b"v=STSv1; id=2"]], StsRecord("2")),
    ("whitespace-before-semicolon-abnf", [[b"v=STSv1 ; id=1"]], StsRecord("1")),
]


@pytest.mark.parametrize(("rrs", "expected"), [case[1:] for case in SELECT], ids=[case[0] for case in SELECT])
def test_select_record(rrs: list[list[bytes]], expected: StsRecord | None) -> None:
    assert select_record(rrs) == expected


SELECT_ERRORS = [
    ("two-records", [[b"v=STSv1; id=1;"], [b"v=STSv1; id=2;"]], "txt-multiple-records"),
    ("two-equal-records", [[b"v=STSv1; id=1;"], [b"v=STSv1; id=1;"]], "txt-multiple-records"),
    ("one-valid-one-invalid", [[b"v=STSv1; id=1;"], [b"v=STSv1; id=bad!"]], "txt-multiple-records"),
    ("missing-id", [[b"v=STSv1; foo=bar"]], "txt-id-missing"),
    ("overlong-id", [[b"v=STSv1; id=" + b"a" * 33]], "txt-id-invalid"),
    ("non-ascii-byte", [[b"v=STSv1; id=1; x=\xff"]], "txt-not-ascii"),
    ("whitespace-and-literal-both-kept", [[b"v=STSv1 ; id=1"], [b"v=STSv1; id=2"]], "txt-multiple-records"),
]


@pytest.mark.parametrize(("rrs", "rule"), [case[1:] for case in SELECT_ERRORS], ids=[case[0] for case in SELECT_ERRORS])
def test_select_record_errors(rrs: list[list[bytes]], rule: str) -> None:
    with pytest.raises(RecordError) as caught:
        select_record(rrs)
    assert caught.value.rule == rule


def test_erratum_6285_literal_reading_discards() -> None:
    assert select_record([[b"v=STSv1 ; id=1"]], LITERAL) is None
    assert select_record([[b"v=STSv1 ; id=1"], [b"v=STSv1; id=2"]], LITERAL) == StsRecord("2")


# --- properties ------------------------------------------------------------------------------

READINGS = st.builds(RecordReadings, whitespace_before_semicolon=st.booleans())


@given(st.one_of(st.text(), token_soup), READINGS)
def test_parse_record_is_total(text: str, readings: RecordReadings) -> None:
    try:
        result = parse_record(text, readings)
    except RecordError:
        return
    assert isinstance(result, StsRecord)


@given(st.lists(st.lists(st.one_of(st.binary(), token_soup.map(str.encode)), max_size=3), max_size=4), READINGS)
def test_select_record_is_total(rrs: list[list[bytes]], readings: RecordReadings) -> None:
    try:
        result = select_record(rrs, readings)
    except RecordError:
        return
    assert result is None or isinstance(result, StsRecord)


@given(records)
def test_render_then_parse_round_trips(record: StsRecord) -> None:
    text = render_record(record)
    assert parse_record(text) == record
    assert parse_record(text, LITERAL) == record
    assert select_record([[text.encode()]]) == record


@given(record_texts())
def test_grammar_generated_texts_parse_to_their_record(case: tuple[str, StsRecord]) -> None:
    text, record = case
    assert parse_record(text) == record


@given(record_texts(), st.data())
def test_splitting_into_character_strings_changes_nothing(case: tuple[str, StsRecord], data: st.DataObject) -> None:
    text, record = case
    raw = text.encode()
    cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=5)))
    strings = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
    assert select_record([strings]) == record


@given(record_ids, st.sampled_from(["V=STSv1", "v=stsv1", "v=STSV1", "v=STSv2", "v = STSv1", "v=STSv1x"]))
def test_near_miss_version_is_rejected_and_discarded(record_id: str, version: str) -> None:
    text = f"{version}; id={record_id}"
    with pytest.raises(RecordError) as caught:
        parse_record(text)
    assert caught.value.rule == "txt-version-first"
    assert select_record([[text.encode()]]) is None


OVERLONG_IDS = st.from_regex(r"[A-Za-z0-9]{33,40}", fullmatch=True)
PUNCTUATED_IDS = st.from_regex(r"[A-Za-z0-9]{0,10}[!-/:<>-@\[-`{-~][!-:<>-~]{0,5}", fullmatch=True)


@given(st.one_of(OVERLONG_IDS, PUNCTUATED_IDS))
def test_near_miss_id_is_rejected(bad_id: str) -> None:
    with pytest.raises(RecordError) as caught:
        parse_record(f"v=STSv1; id={bad_id}")
    assert caught.value.rule == "txt-id-invalid"
