"""The TLSRPT record linter (RFC 8460 section 3): every rule, and agreement with the parser."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference_impl.tlsrpt.errors import RecordError
from reference_impl.tlsrpt.lint import Finding, lint_record, lint_record_set, looks_like_tlsrpt
from reference_impl.tlsrpt.record import parse_record, select_record
from tests.reference_impl.tlsrpt.strategies import record_texts, token_soup

GOOD = "v=TLSRPTv1; rua=mailto:a@b.example"


def rules(findings: list[Finding]) -> list[tuple[str, str]]:
    return [(f.rule, f.severity) for f in findings]


@pytest.mark.parametrize(
    "text",
    ["v=TLSRPTv1;rua=mailto:reports@example.com", "v=TLSRPTv1; rua=https://reporting.example.com/v1/tlsrpt"],
    ids=["rfc-3.1.1", "rfc-3.1.2"],
)
def test_rfc_examples_are_clean(text: str) -> None:
    assert lint_record(text) == []
    assert lint_record_set([text]) == []


RECORD_RULES = [
    ("record-version-missing", "error", "v=TLSRPTv2; rua=mailto:a@b.example"),
    ("record-version-not-first", "error", "rua=mailto:a@b.example; v=TLSRPTv1"),
    ("record-rua-missing", "error", "v=TLSRPTv1; x=1"),
    ("record-rua-bad-uri", "error", "v=TLSRPTv1; rua=mailto:a@b.example,,https://r.example/"),
    ("record-rua-unencoded-char", "error", "v=TLSRPTv1; rua=mailto:a@b.example!10m"),
    ("record-rua-no-supported-uri", "error", "v=TLSRPTv1; rua=ftp://r.example/"),
    ("record-bad-extension", "error", "v=TLSRPTv1; rua=mailto:a@b.example; x=\x01"),
    ("record-field-syntax", "error", "v=TLSRPTv1; rua=mailto:a@b.example; x=1; junk"),
    ("record-empty-field", "error", "v=TLSRPTv1; rua=mailto:a@b.example;;"),
    ("record-trailing-whitespace", "error", "v=TLSRPTv1; rua=mailto:a@b.example\t"),
    ("record-rua-unsupported-scheme", "warning", "v=TLSRPTv1; rua=http://r.example/,mailto:a@b.example"),
    ("record-rua-bad-mailto", "warning", "v=TLSRPTv1; rua=mailto:reports,mailto:a@b.example"),
    ("record-rua-bad-https", "warning", "v=TLSRPTv1; rua=https:r,mailto:a@b.example"),
    ("record-duplicate-field", "warning", "v=TLSRPTv1; rua=mailto:a@b.example; x=1; x=2"),
    ("record-field-case", "warning", "v=TLSRPTv1; rua=mailto:a@b.example; Rua=mailto:c@d.example"),
    ("record-version-whitespace", "warning", "v=TLSRPTv1 ; rua=mailto:a@b.example"),
]


@pytest.mark.parametrize(("rule", "severity", "text"), RECORD_RULES, ids=[case[0] for case in RECORD_RULES])
def test_each_record_rule(rule: str, severity: str, text: str) -> None:
    findings = lint_record(text)
    assert (rule, severity) in rules(findings)
    assert all(f.section == "3" for f in findings)
    # Errors are exactly what the parser rejects, warnings leave the record usable.
    if severity == "error":
        with pytest.raises(RecordError):
            parse_record(text)
    else:
        assert parse_record(text).rua


def test_all_problems_reported_in_order() -> None:
    text = "v=TLSRPTv1 ; RUA=x; rua=http://r.example/ , mailto:a@b.example!; x=1; x=a b"
    assert rules(lint_record(text)) == [
        ("record-version-whitespace", "warning"),
        ("record-field-case", "warning"),
        ("record-rua-unencoded-char", "error"),
        ("record-rua-unsupported-scheme", "warning"),
        ("record-rua-no-supported-uri", "error"),
        ("record-bad-extension", "error"),
    ]


def test_unusable_uris_name_their_reason() -> None:
    [finding] = lint_record("v=TLSRPTv1; rua=http://r.example/,mailto:a@b.example")
    assert "reports are only POSTed over https" in finding.message
    assert "senders skip this URI" in finding.message


# --- the record set ---------------------------------------------------------------------------


def test_no_record_at_all() -> None:
    assert rules(lint_record_set([])) == [("record-none", "error")]
    assert rules(lint_record_set(["v=spf1 -all"])) == [("record-none", "error")]


def test_near_misses_are_explained_when_nothing_is_kept() -> None:
    findings = lint_record_set(["v=spf1 -all", "v=tlsrptv1; rua=mailto:a@b.example"])
    assert rules(findings) == [("record-version-missing", "error"), ("record-none", "error")]
    assert findings[0].where == "record 2" and "case-sensitive" in findings[0].message


def test_multiple_records() -> None:
    findings = lint_record_set([GOOD, "v=TLSRPTv1; rua=junk"])
    assert rules(findings) == [("record-multiple-records", "error"), ("record-rua-bad-uri", "error")]
    assert findings[1].where == "record 2"


def test_a_discarded_look_alike_next_to_the_used_record() -> None:
    findings = lint_record_set([GOOD, "V=TLSRPTv1; rua=mailto:c@d.example"])
    assert rules(findings) == [("record-discarded", "warning")]
    assert findings[0].where == "record 2"


def test_a_single_record_carries_no_where() -> None:
    [finding] = lint_record_set(["v=TLSRPTv1; rua=mailto:a@b.example; x=1; x=2"])
    assert finding.rule == "record-duplicate-field" and finding.where is None


@pytest.mark.parametrize(
    ("text", "looks"),
    [
        ("v=TLSRPTv2; x", True),
        ("RUA = mailto:x", True),
        ("a=b; rua=x", True),
        ("v=spf1 -all", False),
        ("ruax=1", False),
    ],
)
def test_looks_like_tlsrpt(text: str, looks: bool) -> None:
    assert looks_like_tlsrpt(text) is looks


# --- agreement with the parser ----------------------------------------------------------------


@given(st.one_of(st.text(), token_soup, record_texts().map(lambda case: case[0])))
def test_parser_accepts_iff_lint_has_no_error(text: str) -> None:
    findings = lint_record(text)
    assert all(f.section == "3" and f.severity in ("error", "warning") for f in findings)
    errors = [f for f in findings if f.severity == "error"]
    if not errors:
        assert parse_record(text).rua
        return
    with pytest.raises(RecordError) as caught:
        parse_record(text)
    assert (caught.value.rule, caught.value.detail) == (errors[0].rule, errors[0].message)


@given(st.lists(st.one_of(token_soup, st.just(GOOD), record_texts().map(lambda case: case[0])), max_size=4))
def test_select_finds_a_record_iff_set_lint_has_no_error(texts: list[str]) -> None:
    findings = lint_record_set(texts)
    try:
        record = select_record(texts)
    except RecordError:
        record = None
    assert (record is not None) == (not any(f.severity == "error" for f in findings))
