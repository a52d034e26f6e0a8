"""Hypothesis strategies for MTA-STS records and policies, built from the parsers' own grammar strings."""

from __future__ import annotations

import re

from hypothesis import strategies as st

from reference_impl.mtasts.policy import (
    DOMAIN_PATTERN,
    MAX_AGE_LIMIT,
    MAX_DOMAIN_LENGTH,
    MX_PATTERN,
    Mode,
    Policy,
)
from reference_impl.mtasts.policy import EXT_NAME_PATTERN as POLICY_EXT_NAME_PATTERN
from reference_impl.mtasts.policy import EXT_VALUE_PATTERN as POLICY_EXT_VALUE_PATTERN
from reference_impl.mtasts.record import EXT_NAME_PATTERN, EXT_VALUE_PATTERN, ID_PATTERN, StsRecord

WSP = st.text(alphabet=" \t", max_size=3)

# --- section 3.1: the TXT record -------------------------------------------------------------

record_ids = st.from_regex(ID_PATTERN, fullmatch=True)
record_ext_names = st.from_regex(EXT_NAME_PATTERN, fullmatch=True).filter(lambda name: name not in {"v", "id"})
record_ext_values = st.from_regex(EXT_VALUE_PATTERN, fullmatch=True)

records = st.builds(
    StsRecord,
    id=record_ids,
    extensions=st.lists(st.tuples(record_ext_names, record_ext_values), max_size=4, unique_by=lambda pair: pair[0]).map(
        tuple
    ),
)


@st.composite
def record_texts(draw: st.DrawFn) -> tuple[str, StsRecord]:
    """A valid record text with grammar-allowed whitespace, id anywhere, and the record it means."""
    record = draw(records)
    fields = [f"{name}={value}" for name, value in record.extensions]
    fields.insert(draw(st.integers(0, len(fields))), f"id={record.id}")
    text = "v=STSv1"
    for field in fields:
        text += draw(WSP) + ";" + draw(WSP) + field  # sts-field-delim = *WSP ";" *WSP
    if draw(st.booleans()):
        text += draw(WSP) + ";" + draw(WSP)  # [sts-field-delim]
    return text, record


# --- section 3.2: the policy file ------------------------------------------------------------

modes = st.sampled_from(list(Mode))
max_ages = st.integers(0, MAX_AGE_LIMIT)
domains = st.from_regex(DOMAIN_PATTERN, fullmatch=True).filter(lambda name: len(name) <= MAX_DOMAIN_LENGTH)
mx_patterns = st.from_regex(MX_PATTERN, fullmatch=True).filter(
    lambda pattern: len(pattern.removeprefix("*.")) <= MAX_DOMAIN_LENGTH
)
policy_ext_names = st.from_regex(POLICY_EXT_NAME_PATTERN, fullmatch=True).filter(
    lambda name: name not in {"version", "mode", "max_age", "mx"}
)
# sts-policy-ext-value = sts-policy-vchar [*(%x20 / sts-policy-vchar) sts-policy-vchar], built from its parts:
# st.from_regex over POLICY_EXT_VALUE_PATTERN is correct but takes seconds to compile the Unicode ranges.
_vchar = st.one_of(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E),  # %x21-7E
    st.characters(min_codepoint=0x80, exclude_categories=["Cs"]),  # UTF8-2 / UTF8-3 / UTF8-4
)


def _grammar_checked(value: str) -> str:
    assert re.fullmatch(POLICY_EXT_VALUE_PATTERN, value), value
    return value


policy_ext_values = st.one_of(
    _vchar,
    st.builds(
        lambda first, middle, last: first + middle + last,
        _vchar,
        st.text(alphabet=st.one_of(_vchar, st.just(" ")), max_size=12),
        _vchar,
    ),
).map(_grammar_checked)


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    mode = draw(modes)
    mx = draw(st.lists(mx_patterns, min_size=0 if mode is Mode.NONE else 1, max_size=4))
    extensions = draw(
        st.lists(st.tuples(policy_ext_names, policy_ext_values), max_size=3, unique_by=lambda pair: pair[0])
    )
    return Policy(mode=mode, max_age=draw(max_ages), mx=tuple(mx), extensions=tuple(extensions))


@st.composite
def policy_bodies(draw: st.DrawFn) -> tuple[str, Policy]:
    """A valid body in any field order, with optional WSP, mixed LF/CRLF, optional final term and
    ignored later duplicates of the non-repeated fields, and the policy it means."""
    policy = draw(policies())
    arranged = [("mx", pattern) for pattern in policy.mx]  # mx order matters, so they stay in order
    for key, value in (("version", policy.version), ("mode", policy.mode.value), ("max_age", str(policy.max_age))):
        arranged.insert(draw(st.integers(0, len(arranged))), (key, value))
    arranged += list(policy.extensions)
    duplicates = draw(st.lists(st.tuples(st.sampled_from(["version", "mode", "max_age"]), policy_ext_values)))
    arranged += duplicates  # 3.2: later duplicates are ignored
    text = ""
    for index, (key, value) in enumerate(arranged):
        text += key + ":" + draw(WSP) + value + draw(WSP)
        if index < len(arranged) - 1 or draw(st.booleans()):
            text += draw(st.sampled_from(["\n", "\r\n"]))
    return text, policy


# --- token soup: arbitrary text that often gets deep into the parsers ------------------------

TOKENS = [
    "v=STSv1", "v=stsv1", "id=", "id=abc", "20160831085700Z", ";", " ", "\t", "=", "x", "-", ".",
    "version", "mode", "mx", "max_age", "Mode", ":", "STSv1", "enforce", "testing", "none", "Enforce",
    "mail.example.com", "*.example.net", "*.", "*", "604800", "31557601", "99999999999", "-1", "+1",
    "\n", "\r\n", "\r", "\x00", "é", "bücher.example", "xn--bcher-kva.example", "\ufeff", ",",
]  # fmt: skip
token_soup = st.lists(st.sampled_from(TOKENS), max_size=30).map("".join)
