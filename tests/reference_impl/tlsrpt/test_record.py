"""The ``_smtp._tls`` TXT record (RFC 8460 section 3): table-driven cases and properties."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference_impl.tlsrpt.errors import RecordError
from reference_impl.tlsrpt.record import (
    ReportUri,
    TlsRptRecord,
    begins_with_version,
    mailto_address,
    parse_record,
    record_name,
    render_record,
    select_record,
)
from tests.reference_impl.tlsrpt.strategies import grammar_uris, record_texts, records, token_soup


def mailto(uri: str) -> ReportUri:
    return ReportUri(uri, "mailto")


def https(uri: str) -> ReportUri:
    return ReportUri(uri, "https")


# --- parse_record: valid records -------------------------------------------------------------

VALID = [
    (
        "rfc-3.1.1-mailto",
        "v=TLSRPTv1;rua=mailto:reports@example.com",
        TlsRptRecord((mailto("mailto:reports@example.com"),)),
    ),
    (
        "rfc-3.1.2-https",
        "v=TLSRPTv1; rua=https://reporting.example.com/v1/tlsrpt",
        TlsRptRecord((https("https://reporting.example.com/v1/tlsrpt"),)),
    ),
    ("trailing-delimiter", "v=TLSRPTv1; rua=mailto:a@b.example;", TlsRptRecord((mailto("mailto:a@b.example"),))),
    (
        "trailing-delimiter-wsp",
        "v=TLSRPTv1;\trua=mailto:a@b.example \t; ",
        TlsRptRecord((mailto("mailto:a@b.example"),)),
    ),
    (
        "two-uris-spaces-around-comma",
        "v=TLSRPTv1; rua=mailto:a@b.example , \thttps://c.example/r",
        TlsRptRecord((mailto("mailto:a@b.example"), https("https://c.example/r"))),
    ),
    (
        "unknown-fields-kept-in-order",
        "v=TLSRPTv1; x.y-z_1=a:b<c>; rua=mailto:a@b.example; RUA=ignored",
        TlsRptRecord((mailto("mailto:a@b.example"),), (("x.y-z_1", "a:b<c>"), ("RUA", "ignored"))),
    ),
    (
        "mixed-schemes-keep-the-supported",
        "v=TLSRPTv1; rua=http://c.example/r,mailto:a@b.example,ftp://x.example",
        TlsRptRecord((mailto("mailto:a@b.example"),)),
    ),
    ("scheme-case-insensitive", "v=TLSRPTv1; rua=HTTPS://C.example/r", TlsRptRecord((https("HTTPS://C.example/r"),))),
    (
        "https-port-query-ipv6",
        "v=TLSRPTv1; rua=https://[2001:db8::1]:8443/r?x=1%2C2",
        TlsRptRecord((https("https://[2001:db8::1]:8443/r?x=1%2C2"),)),
    ),
    (
        "encoded-specials",
        "v=TLSRPTv1; rua=mailto:a%21b@c.example?subject=x%3By%2Cz",
        TlsRptRecord((mailto("mailto:a%21b@c.example?subject=x%3By%2Cz"),)),
    ),
    (
        "duplicate-rua-first-wins",
        "v=TLSRPTv1; rua=mailto:a@b.example; rua=mailto:c@d.example",
        TlsRptRecord((mailto("mailto:a@b.example"),)),
    ),
    (
        "duplicate-rua-unusable-ignored",
        "v=TLSRPTv1; rua=mailto:a@b.example; rua=ftp://x.example",
        TlsRptRecord((mailto("mailto:a@b.example"),)),
    ),
    (
        "later-v-ignored",
        "v=TLSRPTv1; rua=mailto:a@b.example; v=TLSRPTv2",
        TlsRptRecord((mailto("mailto:a@b.example"),)),
    ),
    (
        "whitespace-before-semicolon-abnf",
        "v=TLSRPTv1 ; rua=mailto:a@b.example",
        TlsRptRecord((mailto("mailto:a@b.example"),)),
    ),
]


@pytest.mark.parametrize(("text", "expected"), [case[1:] for case in VALID], ids=[case[0] for case in VALID])
def test_valid_records(text: str, expected: TlsRptRecord) -> None:
    assert parse_record(text) == expected


# --- parse_record: invalid records (each error rule) -----------------------------------------

INVALID = [
    ("empty", "", "record-version-missing"),
    ("version-lowercase", "v=tlsrptv1; rua=mailto:a@b.example", "record-version-missing"),
    ("version-other", "v=TLSRPTv2; rua=mailto:a@b.example", "record-version-missing"),
    ("version-without-delimiter", "v=TLSRPTv1 rua=mailto:a@b.example", "record-version-missing"),
    ("version-second", "rua=mailto:a@b.example; v=TLSRPTv1", "record-version-not-first"),
    ("leading-space", " v=TLSRPTv1; rua=mailto:a@b.example", "record-version-not-first"),
    ("only-version", "v=TLSRPTv1", "record-rua-missing"),
    ("only-version-delimiter", "v=TLSRPTv1;", "record-rua-missing"),
    ("rua-uppercase", "v=TLSRPTv1; RUA=mailto:a@b.example", "record-rua-missing"),
    ("rua-empty", "v=TLSRPTv1; rua=", "record-rua-bad-uri"),
    ("rua-trailing-comma", "v=TLSRPTv1; rua=mailto:a@b.example,", "record-rua-bad-uri"),
    ("rua-space-after-equals", "v=TLSRPTv1; rua= mailto:a@b.example", "record-rua-bad-uri"),
    ("rua-no-scheme", "v=TLSRPTv1; rua=reports@example.com", "record-rua-bad-uri"),
    ("rua-space-in-uri", "v=TLSRPTv1; rua=https://a.example/x y", "record-rua-bad-uri"),
    ("rua-non-ascii", "v=TLSRPTv1; rua=mailto:jos\u00e9@b.example", "record-rua-bad-uri"),
    ("rua-bad-percent", "v=TLSRPTv1; rua=https://a.example/%zz", "record-rua-bad-uri"),
    ("rua-bad-ip-literal", "v=TLSRPTv1; rua=https://[::zz]/r", "record-rua-bad-uri"),
    ("raw-bang", "v=TLSRPTv1; rua=mailto:a@b.example!10m", "record-rua-unencoded-char"),
    ("raw-comma", "v=TLSRPTv1; rua=mailto:a@b.example?subject=x,y", "record-rua-unencoded-char"),
    ("raw-semicolon", "v=TLSRPTv1; rua=https://a.example/r;jsessionid", "record-rua-unencoded-char"),
    ("only-unsupported-scheme", "v=TLSRPTv1; rua=http://a.example/r", "record-rua-no-supported-uri"),
    ("only-bad-mailto", "v=TLSRPTv1; rua=mailto:?to=a@b.example", "record-rua-no-supported-uri"),
    ("only-hostless-https", "v=TLSRPTv1; rua=https:/r", "record-rua-no-supported-uri"),
    ("bad-ext-name", "v=TLSRPTv1; rua=mailto:a@b.example; _x=1", "record-bad-extension"),
    ("bad-ext-value-empty", "v=TLSRPTv1; rua=mailto:a@b.example; x=", "record-bad-extension"),
    ("bad-ext-value-space", "v=TLSRPTv1; rua=mailto:a@b.example; x=a b", "record-bad-extension"),
    ("bad-ext-value-equals", "v=TLSRPTv1; rua=mailto:a@b.example; x=a=b", "record-bad-extension"),
    ("bad-ext-name-33", "v=TLSRPTv1; rua=mailto:a@b.example; " + "e" * 33 + "=1", "record-bad-extension"),
    ("field-without-equals", "v=TLSRPTv1; foo; rua=mailto:a@b.example", "record-field-syntax"),
    ("double-semicolon", "v=TLSRPTv1;; rua=mailto:a@b.example", "record-empty-field"),
    ("trailing-space", "v=TLSRPTv1; rua=mailto:a@b.example ", "record-trailing-whitespace"),
    ("second-rua-malformed", "v=TLSRPTv1; rua=mailto:a@b.example; rua=not a uri", "record-rua-bad-uri"),
]


@pytest.mark.parametrize(("text", "rule"), [case[1:] for case in INVALID], ids=[case[0] for case in INVALID])
def test_invalid_records(text: str, rule: str) -> None:
    with pytest.raises(RecordError) as caught:
        parse_record(text)
    assert caught.value.rule == rule
    assert caught.value.section == "3"
    assert str(caught.value).startswith(f"RFC 8460 section 3 [{rule}]: ")


# --- mailto_address and ReportUri.target -----------------------------------------------------

MAILTO = [
    ("plain", "mailto:reports@example.com", "reports@example.com"),
    ("query-dropped", "mailto:reports@example.com?subject=TLS%20report&body=x", "reports@example.com"),
    ("fragment-dropped", "mailto:reports@example.com#x", "reports@example.com"),
    ("percent-decoded", "mailto:tls%2Breports@example.com", "tls+reports@example.com"),
    ("encoded-bang", "mailto:a%21b@example.com", "a!b@example.com"),
    ("utf8-local", "mailto:jos%C3%A9@example.com", "jos\u00e9@example.com"),
    ("quoted-local", "mailto:%22a%20b%22@example.com", '"a b"@example.com'),
    ("scheme-case", "MAILTO:a@example.com", "a@example.com"),
    ("domain-literal", "mailto:a@[192.0.2.1]", "a@[192.0.2.1]"),
]


@pytest.mark.parametrize(("uri", "address"), [case[1:] for case in MAILTO], ids=[case[0] for case in MAILTO])
def test_mailto_address(uri: str, address: str) -> None:
    assert mailto_address(uri) == address


BAD_MAILTO = [
    ("not-mailto", "https://example.com"),
    ("no-address", "mailto:?to=a@example.com"),
    ("no-at", "mailto:reports"),
    ("two-ats", "mailto:a%40b@example.com"),
    ("two-addresses", "mailto:a@example.com%2Cb@example.com"),
    ("bad-percent", "mailto:a%2@example.com"),
    ("not-utf8", "mailto:a%FF@example.com"),
    ("space", "mailto:a%20b@example.com"),
]


@pytest.mark.parametrize("uri", [case[1] for case in BAD_MAILTO], ids=[case[0] for case in BAD_MAILTO])
def test_mailto_address_rejects(uri: str) -> None:
    with pytest.raises(RecordError) as caught:
        mailto_address(uri)
    assert caught.value.rule == "record-rua-bad-mailto"


def test_target_is_the_address_for_mailto_and_the_uri_for_https() -> None:
    record = parse_record("v=TLSRPTv1; rua=mailto:tls%2Brpt@example.com?subject=x, https://r.example/v1?a=b")
    assert [uri.scheme for uri in record.rua] == ["mailto", "https"]
    assert [uri.target for uri in record.rua] == ["tls+rpt@example.com", "https://r.example/v1?a=b"]


# --- select_record: the TXT record set -------------------------------------------------------

GOOD = "v=TLSRPTv1; rua=mailto:a@b.example"
SELECT = [
    ("no-records", [], None),
    ("only-unrelated", ["v=spf1 -all"], None),
    ("one-among-unrelated", ["v=spf1 -all", GOOD, "x"], TlsRptRecord((mailto("mailto:a@b.example"),))),
    ("two-records", [GOOD, "v=TLSRPTv1; rua=https://r.example/"], None),
    ("two-equal-records", [GOOD, GOOD], None),
    ("two-one-malformed", [GOOD, "v=TLSRPTv1; rua=junk"], None),
    ("lowercase-discarded", ["v=tlsrptv1; rua=mailto:a@b.example"], None),
    ("version-without-semicolon-discarded", ["v=TLSRPTv1"], None),
    (
        "longer-version-discarded",
        ["v=TLSRPTv10; rua=mailto:x@y.example", GOOD],
        TlsRptRecord((mailto("mailto:a@b.example"),)),
    ),
    ("leading-space-discarded", [" " + GOOD], None),
    (
        "whitespace-before-semicolon-kept",
        ["v=TLSRPTv1\t ; rua=mailto:a@b.example"],
        TlsRptRecord((mailto("mailto:a@b.example"),)),
    ),
    ("whitespace-and-literal-both-kept", ["v=TLSRPTv1 ; rua=mailto:a@b.example", GOOD], None),
]


@pytest.mark.parametrize(("records", "expected"), [case[1:] for case in SELECT], ids=[case[0] for case in SELECT])
def test_select_record(records: list[str], expected: TlsRptRecord | None) -> None:
    assert select_record(records) == expected


def test_select_record_raises_for_the_one_malformed_record() -> None:
    with pytest.raises(RecordError) as caught:
        select_record(["v=spf1 -all", "v=TLSRPTv1; rua=mailto:a@b.example!10m"])
    assert caught.value.rule == "record-rua-unencoded-char"


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("v=TLSRPTv1;", True),
        ("v=TLSRPTv1 \t;x", True),
        ("v=TLSRPTv1", False),
        ("v=TLSRPTv1x;", False),
        (" v=TLSRPTv1;", False),
    ],
)
def test_discard_rule_prefix(text: str, kept: bool) -> None:
    assert begins_with_version(text) is kept


# --- record_name ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("domain", "name"),
    [
        ("example.com", "_smtp._tls.example.com"),
        ("Example.COM.", "_smtp._tls.example.com"),
        ("b\u00fccher.example", "_smtp._tls.xn--bcher-kva.example"),
        ("B\u00dcCHER.example", "_smtp._tls.xn--bcher-kva.example"),
        ("xn--bcher-kva.example", "_smtp._tls.xn--bcher-kva.example"),
        ("b\u00fccher\u3002example", "_smtp._tls.xn--bcher-kva.example"),  # UTS 46 maps the ideographic full stop
    ],
)
def test_record_name(domain: str, name: str) -> None:
    assert record_name(domain) == name


@pytest.mark.parametrize(
    "domain", ["", "a..example", "x" * 64 + ".example", ("a" * 60 + ".") * 5 + "example", "\u2615\u0301.example"]
)
def test_record_name_rejects(domain: str) -> None:
    with pytest.raises(RecordError) as caught:
        record_name(domain)
    assert caught.value.rule == "record-domain-invalid"


# --- properties ------------------------------------------------------------------------------


@given(st.one_of(st.text(), token_soup))
def test_parse_record_is_total(text: str) -> None:
    try:
        result = parse_record(text)
    except RecordError:
        return
    assert isinstance(result, TlsRptRecord) and result.rua


@given(st.lists(st.one_of(st.text(max_size=40), token_soup, st.just(GOOD)), max_size=4))
def test_select_record_is_total(texts: list[str]) -> None:
    try:
        result = select_record(texts)
    except RecordError:
        return
    assert result is None or isinstance(result, TlsRptRecord)


@given(st.one_of(st.text(), token_soup.map(lambda text: "mailto:" + text)))
def test_mailto_address_is_total(uri: str) -> None:
    try:
        address = mailto_address(uri)
    except RecordError:
        return
    assert "@" in address


@given(st.one_of(st.text(max_size=80), token_soup))
def test_record_name_is_total(domain: str) -> None:
    try:
        name = record_name(domain)
    except RecordError:
        return
    assert name.startswith("_smtp._tls.") and name.isascii()


@given(records)
def test_render_then_parse_round_trips(record: TlsRptRecord) -> None:
    text = render_record(record)
    assert parse_record(text) == record
    assert select_record(["v=spf1 -all", text]) == record


@given(record_texts())
def test_grammar_generated_texts_parse_to_their_record(case: tuple[str, TlsRptRecord]) -> None:
    text, record = case
    assert parse_record(text) == record


@given(grammar_uris)
def test_every_rfc3986_uri_is_syntax_the_parser_accepts(uri: str) -> None:
    # Unusable schemes are skipped, not errors, next to a usable URI (the mixed case).
    record = parse_record(f"v=TLSRPTv1; rua={uri},mailto:a@b.example")
    assert record.rua[-1] == mailto("mailto:a@b.example")
    assert all(usable.uri == uri for usable in record.rua[:-1])


@given(st.sampled_from(["V=TLSRPTv1", "v=tlsrptv1", "v=TLSRPTV1", "v=TLSRPTv2", "v = TLSRPTv1", "v=TLSRPTv1x"]))
def test_near_miss_version_is_rejected_and_discarded(version: str) -> None:
    text = f"{version}; rua=mailto:a@b.example"
    with pytest.raises(RecordError) as caught:
        parse_record(text)
    assert caught.value.rule == "record-version-missing"
    assert select_record([text]) is None


def test_core_imports_no_io_modules() -> None:
    forbidden = ["asyncio", "socket", "ssl", "_ssl", "selectors", "dns", "h11", "http", "urllib.request"]
    code = (
        "import sys\nimport reference_impl.tlsrpt.record\nimport reference_impl.tlsrpt.lint\n"
        f"print(sorted(set({forbidden!r}) & set(sys.modules)))\n"
    )
    result = subprocess.run(  # noqa: S603 - runs this interpreter on fixed code
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30
    )
    assert result.stdout.strip() == "[]"
