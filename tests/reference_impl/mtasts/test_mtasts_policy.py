"""The MTA-STS policy file (RFC 8461 section 3.2): table-driven edge cases and properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference_impl.mtasts.errors import PolicyError
from reference_impl.mtasts.policy import (
    MAX_AGE_LIMIT,
    MAX_POLICY_BYTES,
    Mode,
    Policy,
    PolicyReadings,
    parse_policy,
    render_policy,
)
from tests.reference_impl.mtasts.strategies import mx_patterns, policies, policy_bodies, token_soup

HEAD = "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\n"
ENFORCE = Policy(Mode.ENFORCE, 604800, ("mail.example.com",))
REJECT = PolicyReadings(max_age_over_limit="reject")
IGNORE_EMPTY = PolicyReadings(empty_lines="ignore")

# --- valid bodies (RFC-NOTES 1.1, policy file syntax) ----------------------------------------

RFC_EXAMPLE = (
    "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\n"
    "mx: backupmx.example.com\r\nmax_age: 604800\r\n"
)
RFC_EXAMPLE_MX = ("mail.example.com", "*.example.net", "backupmx.example.com")


def enforce(
    max_age: int = 604800,
    mx: tuple[str, ...] = ("mail.example.com",),
    *,
    pairs: tuple[tuple[str, str], ...] = (),
    **ext: str,
) -> Policy:
    return Policy(Mode.ENFORCE, max_age, mx, extensions=pairs + tuple(ext.items()))


def with_mx(pattern: str) -> str:
    return HEAD.replace("mail.example.com", pattern) + "max_age: 604800"


TAIL = "max_age: 604800\r\n"
VALID = [
    ("rfc-example", RFC_EXAMPLE, enforce(mx=RFC_EXAMPLE_MX)),
    ("crlf", HEAD + TAIL, ENFORCE),
    ("bare-lf", HEAD.replace("\r\n", "\n") + "max_age: 604800\n", ENFORCE),
    ("mixed-line-ends", "version: STSv1\nmode: enforce\r\nmx: mail.example.com\nmax_age: 604800\r\n", ENFORCE),
    ("no-final-terminator", HEAD + "max_age: 604800", ENFORCE),
    ("no-space-after-colon", "version:STSv1\nmode:enforce\nmx:mail.example.com\nmax_age:604800", ENFORCE),
    ("tabs-trailing-space", "version:\tSTSv1 \nmode:  enforce\t\nmx: mail.example.com  \nmax_age: 604800 ", ENFORCE),
    ("fields-any-order", "max_age: 604800\nmx: mail.example.com\nmode: enforce\nversion: STSv1\n", ENFORCE),
    ("unknown-key-ignored", HEAD + TAIL + "foo: bar baz\r\n", enforce(foo="bar baz")),
    ("extension-value-spaces-absorbed", HEAD + TAIL + "x:   v  \r\n", enforce(x="v")),
    ("extension-utf8", HEAD + TAIL + "note: caf\u00e9 \u2713\r\n", enforce(note="caf\u00e9 \u2713")),
    ("extension-name-typo-grammar", HEAD + TAIL + "9a_b-c.d: 1\r\n", enforce(pairs=(("9a_b-c.d", "1"),))),
    ("key-case-sensitive-extension", HEAD + TAIL + "Mode: none\r\n", enforce(Mode="none")),
    ("duplicate-version-first-wins", HEAD + TAIL + "version: STSv2\r\n", ENFORCE),
    ("duplicate-mode-first-wins", HEAD + TAIL + "mode: none\r\n", ENFORCE),
    ("duplicate-max-age-first-wins", HEAD + TAIL + "max_age: 1\r\n", ENFORCE),
    ("duplicate-mode-later-invalid-ignored", HEAD + TAIL + "mode: Enforce\r\n", ENFORCE),
    ("duplicate-extension-first-wins", HEAD + TAIL + "x: 1\r\nx: 2\r\n", enforce(x="1")),
    (
        "several-mx",
        HEAD + "mx: *.example.net\r\nmx: mail.example.com\r\n" + TAIL,
        enforce(mx=("mail.example.com", "*.example.net", "mail.example.com")),
    ),
    ("mode-none-without-mx", "version: STSv1\r\nmode: none\r\nmax_age: 86400\r\n", Policy(Mode.NONE, 86400, ())),
    (
        "mode-none-with-mx",
        "version: STSv1\nmode: none\nmx: a.example\nmax_age: 9",
        Policy(Mode.NONE, 9, ("a.example",)),
    ),
    ("mode-testing", "version: STSv1\nmode: testing\nmx: a\nmax_age: 9", Policy(Mode.TESTING, 9, ("a",))),
    ("max-age-zero", HEAD + "max_age: 0", enforce(0)),
    ("max-age-limit", HEAD + "max_age: 31557600", enforce(MAX_AGE_LIMIT)),
    ("max-age-over-limit-capped", HEAD + "max_age: 31557601", enforce(MAX_AGE_LIMIT)),
    ("max-age-ten-digits-capped", HEAD + "max_age: 9999999999", enforce(MAX_AGE_LIMIT)),
    ("max-age-leading-zeros", HEAD + "max_age: 0000604800", ENFORCE),
    ("mx-a-label", with_mx("xn--bcher-kva.example"), enforce(mx=("xn--bcher-kva.example",))),
    ("mx-mixed-case-kept", with_mx("MAIL.Example.COM"), enforce(mx=("MAIL.Example.COM",))),
    ("mx-single-label", with_mx("localhost"), enforce(mx=("localhost",))),
    ("mx-wildcard-tld", with_mx("*.example"), enforce(mx=("*.example",))),
    ("mx-label-63", with_mx("a" * 63 + ".example"), enforce(mx=("a" * 63 + ".example",))),
    ("bytes-body", (HEAD + "max_age: 604800").encode(), ENFORCE),
]


@pytest.mark.parametrize(("body", "expected"), [case[1:] for case in VALID], ids=[case[0] for case in VALID])
def test_valid_policies(body: str | bytes, expected: Policy) -> None:
    assert parse_policy(body) == expected


# --- invalid bodies --------------------------------------------------------------------------

INVALID = [
    ("empty", "", "policy-version-missing", None),
    ("missing-version", "mode: enforce\nmx: a.example\nmax_age: 1\n", "policy-version-missing", None),
    ("missing-mode", "version: STSv1\nmx: a.example\nmax_age: 1\n", "policy-mode-missing", None),
    ("missing-max-age", HEAD, "policy-max-age-missing", None),
    ("enforce-without-mx", "version: STSv1\nmode: enforce\nmax_age: 1\n", "policy-mx-missing", None),
    ("testing-without-mx", "version: STSv1\nmode: testing\nmax_age: 1\n", "policy-mx-missing", None),
    ("mode-capitalised", "version: STSv1\nmode: Enforce\nmx: a.example\nmax_age: 1\n", "policy-mode-invalid", 2),
    ("mode-unknown", "version: STSv1\nmode: report\nmx: a.example\nmax_age: 1\n", "policy-mode-invalid", 2),
    ("mode-first-invalid-then-valid", "mode: Enforce\nmode: enforce\nmx: a\nmax_age: 1", "policy-mode-invalid", 1),
    ("version-lowercase", "version: stsv1\nmode: none\nmax_age: 1\n", "policy-version-invalid", 1),
    ("version-two", "version: STSv2\nmode: none\nmax_age: 1\n", "policy-version-invalid", 1),
    ("max-age-eleven-digits", HEAD + "max_age: 10000000000\r\n", "policy-max-age-invalid", 4),
    ("max-age-negative", HEAD + "max_age: -1\r\n", "policy-max-age-invalid", 4),
    ("max-age-plus-sign", HEAD + "max_age: +1\r\n", "policy-max-age-invalid", 4),
    ("max-age-inner-space", HEAD + "max_age: 604 800\r\n", "policy-max-age-invalid", 4),
    ("max-age-empty", HEAD + "max_age:\r\n", "policy-max-age-invalid", 4),
    ("max-age-arabic-digits", HEAD + "max_age: \u0661\u0662\r\n", "policy-max-age-invalid", 4),
    ("max-age-decimal", HEAD + "max_age: 1.5\r\n", "policy-max-age-invalid", 4),
    ("mx-u-label", "version: STSv1\nmode: enforce\nmx: b\u00fccher.example\nmax_age: 1", "policy-mx-u-label", 3),
    ("mx-two-on-one-line", "version: STSv1\nmode: enforce\nmx: a.example b.c\nmax_age: 1", "policy-mx-invalid", 3),
    ("mx-comma-list", "version: STSv1\nmode: enforce\nmx: a.example,b.example\nmax_age: 1", "policy-mx-invalid", 3),
    ("mx-inner-wildcard", "version: STSv1\nmode: enforce\nmx: mail.*.example\nmax_age: 1", "policy-mx-invalid", 3),
    ("mx-partial-wildcard", "version: STSv1\nmode: enforce\nmx: *mail.example\nmax_age: 1", "policy-mx-invalid", 3),
    ("mx-bare-star", "version: STSv1\nmode: enforce\nmx: *\nmax_age: 1", "policy-mx-invalid", 3),
    ("mx-trailing-dot", "version: STSv1\nmode: enforce\nmx: mail.example.\nmax_age: 1", "policy-mx-invalid", 3),
    ("mx-hyphen-edge", "version: STSv1\nmode: enforce\nmx: -mail.example\nmax_age: 1", "policy-mx-invalid", 3),
    ("mx-label-64", "version: STSv1\nmode: enforce\nmx: " + "a" * 64 + ".example\nmax_age: 1", "policy-mx-invalid", 3),
    ("mx-empty", "version: STSv1\nmode: none\nmx:\nmax_age: 1", "policy-mx-invalid", 3),
    ("key-space-before-colon", "version : STSv1\nmode: none\nmax_age: 1", "policy-ext-name-invalid", 1),
    ("leading-space", " version: STSv1\nmode: none\nmax_age: 1", "policy-ext-name-invalid", 1),
    ("bom", "\ufeffversion: STSv1\nmode: none\nmax_age: 1", "policy-ext-name-invalid", 1),
    ("no-colon", "version STSv1\nmode: none\nmax_age: 1", "policy-field-syntax", 1),
    ("extension-value-empty", "version: STSv1\nmode: none\nmax_age: 1\nfoo:", "policy-ext-value-invalid", 4),
    ("extension-value-ctl", "version: STSv1\nmode: none\nmax_age: 1\nfoo: a\x00b", "policy-ext-value-invalid", 4),
    ("extension-value-inner-tab", "version: STSv1\nmode: none\nmax_age: 1\nfoo: a\tb", "policy-ext-value-invalid", 4),
    ("duplicate-with-ctl", "version: STSv1\nmode: none\nmax_age: 1\nmode: a\x01", "policy-ext-value-invalid", 4),
    ("bare-cr-line-end", "version: STSv1\rmode: none\rmax_age: 1\r", "policy-bare-cr", 1),
    ("bare-cr-at-end", "version: STSv1\nmode: none\nmax_age: 1\r", "policy-bare-cr", 3),
    ("empty-line-inside", "version: STSv1\n\nmode: none\nmax_age: 1", "policy-empty-line", 2),
    ("extra-final-terminator", "version: STSv1\nmode: none\nmax_age: 1\n\n", "policy-empty-line", 4),
    ("whitespace-only-line", "version: STSv1\nmode: none\nmax_age: 1\n  \n", "policy-empty-line", 4),
    ("invalid-utf8", b"version: STSv1\nmode: none\nmax_age: 1\nx: \xff\n", "policy-not-utf8", 4),
    ("utf8-surrogate-bytes", b"version: STSv1\nx: \xed\xa0\x80\n", "policy-not-utf8", 2),
    ("lone-surrogate-str", "version: STSv1\nmode: none\nx: \ud800", "policy-not-utf8", 3),
]  # fmt: skip


@pytest.mark.parametrize(("body", "rule", "line"), [case[1:] for case in INVALID], ids=[case[0] for case in INVALID])
def test_invalid_policies(body: str | bytes, rule: str, line: int | None) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(body)
    assert (caught.value.rule, caught.value.line) == (rule, line)
    assert caught.value.section == "3.2"


def test_max_age_over_limit_reject_reading() -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(HEAD + "max_age: 31557601", REJECT)
    assert (caught.value.rule, caught.value.line) == ("policy-max-age-over-limit", 4)
    assert parse_policy(HEAD + "max_age: 31557600", REJECT).max_age == MAX_AGE_LIMIT


def test_empty_lines_ignore_reading() -> None:
    body = "\nversion: STSv1\r\n\r\nmode: none\n \t\nmax_age: 5\n\n\n"
    assert parse_policy(body, IGNORE_EMPTY) == Policy(Mode.NONE, 5, ())


def test_size_limit_is_64_kib() -> None:
    body = HEAD + "max_age: 604800\r\n"
    padding = "x: " + "y" * 60 + "\r\n"
    filler = (MAX_POLICY_BYTES - len(body)) // len(padding)
    just_fits = body + padding * filler
    just_fits += "z: " + "w" * (MAX_POLICY_BYTES - len(just_fits) - 3)
    assert len(just_fits.encode()) == MAX_POLICY_BYTES
    assert parse_policy(just_fits).mode is Mode.ENFORCE
    for too_large in (just_fits + "w", (just_fits + "w").encode()):
        with pytest.raises(PolicyError) as caught:
            parse_policy(too_large)
        assert (caught.value.rule, caught.value.section) == ("policy-too-large", "3.3")


def test_size_limit_counts_utf8_bytes_of_text() -> None:
    body = HEAD + "max_age: 1\r\nx: " + "\u00e9" * (MAX_POLICY_BYTES // 2)
    with pytest.raises(PolicyError) as caught:
        parse_policy(body)
    assert caught.value.rule == "policy-too-large"


@pytest.mark.parametrize("line_end", ["\r\n", "\n"])
def test_render_layout(line_end: str) -> None:
    policy = Policy(Mode.TESTING, 86400, ("a.example", "*.b.example"), extensions=(("x", "y z"),))
    expected = ["version: STSv1", "mode: testing", "mx: a.example", "mx: *.b.example", "max_age: 86400", "x: y z"]
    assert render_policy(policy, line_end=line_end) == "".join(line + line_end for line in expected)


# --- properties ------------------------------------------------------------------------------

READINGS = st.builds(
    PolicyReadings,
    max_age_over_limit=st.sampled_from(["cap", "reject"]),
    empty_lines=st.sampled_from(["reject", "ignore"]),
)


@given(st.one_of(st.text(), st.binary(), token_soup, token_soup.map(str.encode)), READINGS)
def test_parse_policy_is_total(body: str | bytes, readings: PolicyReadings) -> None:
    try:
        result: Policy | PolicyError = parse_policy(body, readings)
    except PolicyError as exc:
        result = exc
    assert isinstance(result, Policy) or result.line is None or result.line >= 1


@given(policies(), st.sampled_from(["\r\n", "\n"]))
def test_render_then_parse_round_trips(policy: Policy, line_end: str) -> None:
    text = render_policy(policy, line_end=line_end)
    assert parse_policy(text) == policy
    assert parse_policy(text.encode()) == policy
    assert parse_policy(text.removesuffix(line_end)) == policy  # no final terminator


@given(policy_bodies())
def test_grammar_generated_bodies_parse_to_their_policy(case: tuple[str, Policy]) -> None:
    body, policy = case
    assert parse_policy(body) == policy


@given(policy_bodies(), st.text(min_size=1).filter(lambda v: v.strip(" \t") not in {"enforce", "testing", "none"}))
def test_near_miss_mode_is_rejected(case: tuple[str, Policy], bad: str) -> None:
    body, _ = case
    body = "mode: " + bad.replace("\n", "").replace("\r", "") + "\n" + body
    with pytest.raises(PolicyError) as caught:
        parse_policy(body)
    assert (caught.value.rule, caught.value.line) == ("policy-mode-invalid", 1)


@given(policy_bodies(), st.sampled_from(["ENFORCE", "Enforce", "Testing", "NONE", "None", "enforce.", "non"]))
def test_near_miss_mode_case_is_rejected(case: tuple[str, Policy], bad: str) -> None:
    body, _ = case
    with pytest.raises(PolicyError) as caught:
        parse_policy(f"mode: {bad}\n{body}")
    assert (caught.value.rule, caught.value.line) == ("policy-mode-invalid", 1)


NEAR_MISS_MAX_AGE = st.one_of(
    st.from_regex(r"[0-9]{11,14}", fullmatch=True),
    st.from_regex(r"[+-][0-9]{1,10}", fullmatch=True),
    st.from_regex(r"[0-9]{1,5} [0-9]{1,5}", fullmatch=True),
    st.from_regex(r"[0-9]{0,5}[.,_eExX][0-9]{0,5}", fullmatch=True),
)


@given(policy_bodies(), NEAR_MISS_MAX_AGE)
def test_near_miss_max_age_is_rejected(case: tuple[str, Policy], bad: str) -> None:
    body, _ = case
    with pytest.raises(PolicyError) as caught:
        parse_policy(f"max_age: {bad}\r\n{body}")
    assert (caught.value.rule, caught.value.line) == ("policy-max-age-invalid", 1)


@given(policy_bodies(), st.integers(MAX_AGE_LIMIT + 1, 9_999_999_999))
def test_over_limit_max_age_caps_or_rejects(case: tuple[str, Policy], seconds: int) -> None:
    body, _ = case
    body = f"max_age: {seconds}\r\n{body}"
    assert parse_policy(body).max_age == MAX_AGE_LIMIT
    with pytest.raises(PolicyError) as caught:
        parse_policy(body, REJECT)
    assert caught.value.rule == "policy-max-age-over-limit"


@given(mx_patterns, st.sampled_from(["\u00fc", "\u00e9", "\u4e2d", "\u0430"]), st.data())
def test_near_miss_mx_u_label_is_rejected(pattern: str, char: str, data: st.DataObject) -> None:
    where = data.draw(st.integers(0, len(pattern)))
    bad = pattern[:where] + char + pattern[where:]
    with pytest.raises(PolicyError) as caught:
        parse_policy(f"version: STSv1\nmode: enforce\nmx: {bad}\nmax_age: 1\n")
    assert (caught.value.rule, caught.value.line) == ("policy-mx-u-label", 3)


@given(policies().filter(lambda p: p.mode is not Mode.NONE))
def test_enforce_and_testing_need_mx(policy: Policy) -> None:
    body = render_policy(Policy(policy.mode, policy.max_age, (), extensions=policy.extensions))
    with pytest.raises(PolicyError) as caught:
        parse_policy(body)
    assert caught.value.rule == "policy-mx-missing"
