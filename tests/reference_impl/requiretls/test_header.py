"""The TLS-Required header field parser (RFC 8689 section 3), with property tests."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference_impl.requiretls.header import (
    TlsRequired,
    TlsRequiredError,
    find_tls_required,
    parse_value,
)

WSP = st.text(alphabet=" \t", max_size=4)
NO_CASES = st.sampled_from(["No", "no", "NO", "nO"])


def message(*fields: str, body: str = "body TLS-Required: No\r\n") -> bytes:
    return ("".join(f + "\r\n" for f in ("From: a@b.test", *fields)) + "\r\n" + body).encode()


@given(NO_CASES, WSP, WSP)
def test_no_in_any_case_with_surrounding_whitespace(value: str, before: str, after: str) -> None:
    assert parse_value(before + value + after) is TlsRequired.NO
    found = find_tls_required(message(f"TLS-Required:{before}{value}{after}"))
    assert found.state is TlsRequired.NO and found.tls_optional and found.count == 1


@given(st.text(max_size=30))
def test_any_other_value_is_refused(value: str) -> None:
    if value.replace("\r\n", "").replace("\n", "").strip(" \t").lower() == "no":
        return
    with pytest.raises(TlsRequiredError):
        parse_value(value)


@given(st.binary(max_size=300))
def test_find_never_raises_on_arbitrary_bytes(data: bytes) -> None:
    found = find_tls_required(data)
    assert isinstance(found.state, TlsRequired)
    assert found.tls_optional == (found.state is TlsRequired.NO)


@given(st.integers(min_value=2, max_value=4), NO_CASES)
def test_more_than_one_instance_is_not_honoured(count: int, value: str) -> None:
    found = find_tls_required(message(*[f"TLS-Required: {value}"] * count))
    assert (found.state, found.count, found.tls_optional) == (TlsRequired.INVALID, count, False)
    assert found.problem is not None


def test_field_name_is_case_insensitive_and_folding_is_unfolded() -> None:
    assert find_tls_required(message("tls-required:\r\n No")).state is TlsRequired.NO


def test_absent_bad_value_and_body_only() -> None:
    assert find_tls_required(message()).state is TlsRequired.ABSENT  # "TLS-Required" in the body only
    bad = find_tls_required(message("TLS-Required: Yes"))
    assert (bad.state, bad.tls_optional) == (TlsRequired.INVALID, False)
    assert find_tls_required(message("X-TLS-Required: No")).state is TlsRequired.ABSENT
