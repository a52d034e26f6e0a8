"""The operator linter (RFC 8461 sections 3.1, 3.2, 3.3, 5, 10.2): every rule, and agreement with the parsers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference_impl.mtasts.errors import PolicyError, RecordError
from reference_impl.mtasts.lint import Finding, lint_policy, lint_record
from reference_impl.mtasts.policy import PolicyReadings, parse_policy, render_policy
from reference_impl.mtasts.record import RecordReadings, parse_record, render_record
from tests.reference_impl.mtasts.strategies import policies, policy_bodies, record_texts, records, token_soup

GOOD = "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmax_age: 1209600\r\n"


def rules(findings: list[Finding]) -> list[tuple[str, str, int | None]]:
    return [(f.rule, f.severity, f.line) for f in findings]


def test_clean_policy_has_no_findings() -> None:
    assert lint_policy(GOOD) == []


def test_every_problem_with_its_line() -> None:
    body = (
        "version: stsv1\n"  # 1 invalid version, bare LF
        "mode: Enforce\r\n"  # 2 invalid mode
        "mx: b\u00fccher.example\r\n"  # 3 U-label
        "mx: a.example b.example\r\n"  # 4 two patterns on a line
        "max_age: -5\r\n"  # 5 sign
        "max_age: 5\r\n"  # 6 duplicate (ignored)
        "\r\n"  # 7 empty line
        "MX: c.example\r\n"  # 8 case-sensitive key
        "junk\r\n"  # 9 not key: value
        "x: \x00\r\n"  # 10 control character
    )
    assert rules(lint_policy(body)) == [
        ("policy-version-invalid", "error", 1),
        ("policy-bare-lf", "warning", 1),
        ("policy-mode-invalid", "error", 2),
        ("policy-mx-u-label", "error", 3),
        ("policy-mx-invalid", "error", 4),
        ("policy-max-age-invalid", "error", 5),
        ("policy-duplicate-field", "warning", 6),
        ("policy-empty-line", "error", 7),
        ("policy-key-case", "warning", 8),
        ("policy-field-syntax", "error", 9),
        ("policy-ext-value-invalid", "error", 10),
    ]


def test_missing_fields_are_file_wide() -> None:
    assert rules(lint_policy("mode: testing\n")) == [
        ("policy-bare-lf", "warning", 1),
        ("policy-mode-testing", "warning", 1),
        ("policy-version-missing", "error", None),
        ("policy-max-age-missing", "error", None),
        ("policy-mx-missing", "error", None),
    ]


WARNINGS = [
    ("short-max-age-enforce", GOOD.replace("1209600", "86400"), [("policy-max-age-short", "10.2", 4)]),
    ("one-week-is-fine", GOOD.replace("1209600", "604800"), []),
    ("short-max-age-none-is-fine", "version: STSv1\r\nmode: none\r\nmax_age: 1\r\n", []),
    (
        "testing-and-short",
        GOOD.replace("enforce", "testing").replace("1209600", "604799"),
        [("policy-mode-testing", "5", 2), ("policy-max-age-short", "10.2", 4)],
    ),
    ("over-limit-capped", GOOD.replace("1209600", "31557601"), [("policy-max-age-over-limit", "3.2", 4)]),
    ("bare-lf-once-per-file", GOOD.replace("\r\n", "\n"), [("policy-bare-lf", "3.2", 1)]),
    ("bare-lf-first-line", GOOD.replace("max_age: 1209600\r\n", "max_age: 1209600\n"), [("policy-bare-lf", "3.2", 4)]),
    ("no-final-terminator-is-fine", GOOD.removesuffix("\r\n"), []),
    ("duplicate", GOOD + "mode: none\r\n", [("policy-duplicate-field", "3.2", 5)]),
    ("duplicate-extension", GOOD + "a: 1\r\na: 2\r\n", [("policy-duplicate-field", "3.2", 6)]),
]


@pytest.mark.parametrize(("body", "expected"), [case[1:] for case in WARNINGS], ids=[case[0] for case in WARNINGS])
def test_warnings(body: str, expected: list[tuple[str, str, int]]) -> None:
    findings = lint_policy(body)
    assert all(f.severity == "warning" for f in findings)
    assert [(f.rule, f.section, f.line) for f in findings] == expected
    parse_policy(body)  # warnings never stop the parser


def test_readings_turn_warnings_into_errors_and_back() -> None:
    over = GOOD.replace("1209600", "31557601")
    assert rules(lint_policy(over, PolicyReadings(max_age_over_limit="reject"))) == [
        ("policy-max-age-over-limit", "error", 4)
    ]
    assert rules(lint_policy(GOOD + "\r\n", PolicyReadings(empty_lines="ignore"))) == [
        ("policy-empty-line", "warning", 5)
    ]


def test_encoding_and_size_stop_the_scan() -> None:
    assert rules(lint_policy(b"version: STSv1\n\xc3(")) == [("policy-not-utf8", "error", 2)]
    assert rules(lint_policy("x" * 70000)) == [("policy-too-large", "error", None)]


def test_record_every_problem() -> None:
    text = "v=STSv1 ; id=bad-id; id=2; x=; =y; z;; w=1 "
    assert [(f.rule, f.severity) for f in lint_record(text)] == [
        ("txt-version-whitespace", "warning"),
        ("txt-id-invalid", "error"),
        ("txt-duplicate-field", "warning"),
        ("txt-ext-value-invalid", "error"),
        ("txt-ext-name-invalid", "error"),
        ("txt-field-syntax", "error"),
        ("txt-empty-field", "error"),
        ("txt-trailing-whitespace", "error"),
    ]


def test_record_erratum_6285_severity_follows_the_reading() -> None:
    literal = RecordReadings(whitespace_before_semicolon=False)
    assert [(f.rule, f.severity) for f in lint_record("v=STSv1 ; id=1", literal)] == [
        ("txt-version-whitespace", "error")
    ]
    assert lint_record("v=STSv1; id=20160831085700Z;") == []


def test_record_missing_and_non_ascii() -> None:
    assert [f.rule for f in lint_record("v=STSv1; x=\u00e9")] == [
        "txt-not-ascii",
        "txt-ext-value-invalid",
        "txt-id-missing",
    ]


# --- agreement: the parser accepts exactly the inputs with no error finding -----------------

POLICY_READINGS = st.builds(
    PolicyReadings,
    max_age_over_limit=st.sampled_from(["cap", "reject"]),
    empty_lines=st.sampled_from(["reject", "ignore"]),
)
RECORD_READINGS = st.builds(RecordReadings, whitespace_before_semicolon=st.booleans())


@st.composite
def mangled_bodies(draw: st.DrawFn) -> str:
    """A valid body with a few tokens spliced in: near misses of every kind."""
    body, _ = draw(policy_bodies())
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(body)))
        body = body[:at] + draw(token_soup) + body[at:]
    return body


@given(st.one_of(st.text(), st.binary(), token_soup, mangled_bodies(), policies().map(render_policy)), POLICY_READINGS)
def test_lint_policy_agrees_with_parse_policy(body: str | bytes, readings: PolicyReadings) -> None:
    errors = [f for f in lint_policy(body, readings) if f.severity == "error"]
    try:
        parse_policy(body, readings)
    except PolicyError as exc:
        raised: tuple[str, int | None] | None = (exc.rule, exc.line)
    else:
        raised = None
    if raised is None:
        assert errors == []
    else:
        assert raised in {(f.rule, f.line) for f in errors}


@st.composite
def mangled_records(draw: st.DrawFn) -> str:
    text, _ = draw(record_texts())
    at = draw(st.integers(0, len(text)))
    return text[:at] + draw(token_soup) + text[at:]


@given(st.one_of(st.text(), token_soup, mangled_records(), records.map(render_record)), RECORD_READINGS)
def test_lint_record_agrees_with_parse_record(text: str, readings: RecordReadings) -> None:
    errors = [f for f in lint_record(text, readings) if f.severity == "error"]
    try:
        parse_record(text, readings)
    except RecordError as exc:
        raised: str | None = exc.rule
    else:
        raised = None
    if raised is None:
        assert errors == []
    else:
        assert errors and raised == errors[0].rule
