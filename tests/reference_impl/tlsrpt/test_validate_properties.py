"""Totality of the validator: any input gives a Validation (or, for bad arguments only, ReportError)."""

from __future__ import annotations

import functools
import gzip
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reference_impl.tlsrpt.validate import (
    Validation,
    validate_report_json,
    validate_report_mail,
    validate_report_payload,
)
from reference_impl.tlsrpt.validate_rules import DATE_TIME_PATTERN, parse_datetime
from tests.reference_impl.tlsrpt.test_validate_support import (
    DELETE,
    encode,
    good_report,
    key_lookup,
    report_mail,
    sign,
    variant,
)

PROPERTY = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=120)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)

# JSON a well-behaved reporter could write: finite numbers, printable ASCII text (keys too).
_printable = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
clean_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(_printable, max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(_printable, max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)


def _paths(value: Any, prefix: str = "") -> list[str]:
    """Every "/"-separated path into ``value`` (objects and arrays), leaves included."""
    out = []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else []
    for key, child in items:
        path = f"{prefix}/{key}"
        out += [path, *_paths(child, path)]
    return out


GOOD_PATHS = _paths(good_report())


def _assert_well_formed(validation: Validation) -> None:
    assert isinstance(validation, Validation)
    # The mail validator's last-resort guard: reached, it would hide an exception worth knowing.
    assert "mail-unparseable" not in validation.errors
    assert validation.report is None or isinstance(validation.report, dict)
    assert validation.ok == (validation.errors == [])
    assert validation.errors == sorted(set(validation.errors))
    for item in validation.findings:
        assert item.rule and item.section and item.message
        assert item.severity in ("error", "warning", "info")
        assert item.where is None or isinstance(item.where, str)
        assert str(item).startswith(item.severity)


@PROPERTY
@given(st.binary(max_size=400))
def test_json_validator_is_total_on_bytes(data: bytes) -> None:
    _assert_well_formed(validate_report_json(data))


@PROPERTY
@given(json_values)
def test_json_validator_is_total_on_json_values(value: object) -> None:
    validation = validate_report_json(json.dumps(value).encode("utf-8", "surrogatepass"))
    _assert_well_formed(validation)
    if not isinstance(value, dict):
        assert validation.report is None and not validation.ok


@PROPERTY
@given(st.sampled_from(GOOD_PATHS), st.one_of(st.just(DELETE), json_values))
def test_json_validator_is_total_on_report_variants(path: str, value: object) -> None:
    report = variant(path, value)
    validation = validate_report_json(json.dumps(report).encode("utf-8", "surrogatepass"))
    _assert_well_formed(validation)
    # Still an object, so always read, unless json.dumps wrote NaN or Infinity (not JSON).
    assert validation.report is not None or validation.errors == ["json-non-finite"]


@PROPERTY
@given(st.dictionaries(st.from_regex(r"x-[a-z]{1,8}", fullmatch=True), clean_json_values, max_size=3))
def test_unknown_keys_are_never_errors(extra: dict[str, Any]) -> None:
    report = good_report()
    report.update(extra)
    validation = validate_report_json(encode(report))
    assert validation.errors == []
    assert {f.rule for f in validation.findings} == ({"unknown-key"} if extra else set())


date_times = st.from_regex(DATE_TIME_PATTERN, fullmatch=True)


@PROPERTY
@given(date_times, date_times)
def test_any_date_time_of_the_grammar_is_judged(start: str, end: str) -> None:
    validation = validate_report_json(encode(variant("date-range", {"start-datetime": start, "end-datetime": end})))
    _assert_well_formed(validation)
    moment, problem = parse_datetime(start)
    assert (moment is None) == (problem is not None)
    if moment is not None:
        offset = moment.utcoffset()
        assert offset is not None and offset.total_seconds() == 0  # returned in UTC


@PROPERTY
@given(
    st.binary(max_size=300) | st.binary(max_size=300).map(lambda b: gzip.compress(b)),
    st.none() | st.text(max_size=30),
    st.none() | st.text(max_size=40),
)
def test_payload_validator_is_total(data: bytes, content_type: str | None, filename: str | None) -> None:
    _assert_well_formed(validate_report_payload(data, content_type=content_type, filename=filename))


@PROPERTY
@given(json_values, st.booleans())
def test_payload_validator_is_total_on_json_values(value: object, compress: bool) -> None:
    text = json.dumps(value).encode("utf-8", "surrogatepass")
    _assert_well_formed(validate_report_payload(gzip.compress(text) if compress else text))


@functools.cache
def _signed_mail() -> bytes:
    return sign(report_mail())


@PROPERTY
@given(st.binary(max_size=600))
def test_mail_validator_is_total_on_bytes(data: bytes) -> None:
    _assert_well_formed(validate_report_mail(data, txt_lookup=key_lookup()))


@PROPERTY
@given(
    st.lists(
        st.tuples(
            st.integers(0, 10_000), st.sampled_from(["flip", "insert", "delete"]), st.binary(min_size=1, max_size=8)
        ),
        min_size=1,
        max_size=6,
    )
)
def test_mail_validator_is_total_on_damaged_report_mail(edits: list[tuple[int, str, bytes]]) -> None:
    message = bytearray(_signed_mail())
    for position, operation, data in edits:
        at = position % len(message)
        if operation == "flip":
            message[at : at + len(data)] = data
        elif operation == "insert":
            message[at:at] = data
        else:
            del message[at : at + len(data)]
    _assert_well_formed(validate_report_mail(bytes(message), txt_lookup=key_lookup()))


@PROPERTY
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["Content-Type", "Subject", "TLS-Report-Domain", "DKIM-Signature", "From"]),
            st.text(max_size=60),
        ),
        max_size=5,
    ),
    st.binary(max_size=200),
)
def test_mail_validator_is_total_on_odd_headers(headers: list[tuple[str, str]], body: bytes) -> None:
    head = b"".join(f"{name}: {value}\r\n".encode("utf-8", "surrogateescape") for name, value in headers)
    _assert_well_formed(validate_report_mail(head + b"\r\n" + body, txt_lookup=key_lookup()))
