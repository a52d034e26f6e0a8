"""MX host validation against mx patterns (RFC 8461 section 4.1)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference_impl.mtasts.matching import mx_pattern_matches, policy_allows_mx
from reference_impl.mtasts.policy import Mode, Policy
from tests.reference_impl.mtasts.strategies import domains, mx_patterns

MATCHES = [
    ("exact", "mail.example.com", "mail.example.com", True),
    ("exact-case-insensitive", "Mail.Example.COM", "mail.EXAMPLE.com", True),
    ("exact-trailing-dot-on-host", "mail.example.com", "mail.example.com.", True),
    ("exact-other-name", "mail.example.com", "mx.example.com", False),
    ("exact-is-not-suffix", "example.com", "mail.example.com", False),
    ("exact-is-not-prefix", "mail.example.com", "mail.example.com.evil", False),
    ("wildcard-one-label", "*.example.com", "mail.example.com", True),
    ("wildcard-case-and-dot", "*.Example.com", "MAIL.example.COM.", True),
    ("wildcard-not-the-domain-itself", "*.example.com", "example.com", False),
    ("wildcard-not-two-labels", "*.example.com", "a.b.example.com", False),
    ("wildcard-not-empty-label", "*.example.com", ".example.com", False),
    ("wildcard-suffix-must-align", "*.example.com", "mail.badexample.com", False),
    ("wildcard-a-label-host", "*.example.com", "xn--bcher-kva.example.com", True),
    ("idn-a-label-exact", "xn--bcher-kva.example", "XN--BCHER-KVA.example.", True),
    ("idn-u-label-host-not-converted", "xn--bcher-kva.example", "b\u00fccher.example", False),
    ("non-ascii-not-case-folded", "xn--bcher-kva.example", "B\u00dcCHER.example", False),
    ("star-in-host-is-literal", "mail.example.com", "*.example.com", False),
    ("empty-host", "mail.example.com", "", False),
    ("root-host", "mail.example.com", ".", False),
    ("empty-pattern", "", "mail.example.com", False),
]


@pytest.mark.parametrize(
    ("pattern", "host", "expected"), [case[1:] for case in MATCHES], ids=[case[0] for case in MATCHES]
)
def test_mx_pattern_matches(pattern: str, host: str, expected: bool) -> None:
    assert mx_pattern_matches(pattern, host) is expected


def test_policy_allows_mx_any_pattern() -> None:
    policy = Policy(Mode.ENFORCE, 604800, ("mail.example.com", "*.example.net"))
    assert policy_allows_mx(policy, "mail.example.com.")
    assert policy_allows_mx(policy, "mx1.example.net")
    assert not policy_allows_mx(policy, "example.net")
    assert not policy_allows_mx(policy, "evil.example.org")


@pytest.mark.parametrize("mode", list(Mode))
def test_policy_allows_mx_ignores_mode(mode: Mode) -> None:
    assert policy_allows_mx(Policy(mode, 1, ("a.example",)), "a.example")
    assert not policy_allows_mx(Policy(mode, 1, ()), "a.example")


@given(domains, st.sampled_from(["", "."]))
def test_a_name_matches_itself(name: str, dot: str) -> None:
    assert mx_pattern_matches(name, name.upper() + dot)


@given(domains, st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True), domains)
def test_wildcard_matches_exactly_one_label(suffix: str, label: str, extra: str) -> None:
    pattern = "*." + suffix
    assert mx_pattern_matches(pattern, f"{label}.{suffix}")
    assert not mx_pattern_matches(pattern, suffix)
    assert not mx_pattern_matches(pattern, f"{extra}.{label}.{suffix}")


@given(st.one_of(mx_patterns, st.text()), st.text())
def test_matching_is_total(pattern: str, host: str) -> None:
    assert isinstance(mx_pattern_matches(pattern, host), bool)
