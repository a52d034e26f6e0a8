"""The report JSON validator (RFC 8460 sections 4, 4.1, 4.3, 4.4, 4.5, 6.6; RFC 7493): one test per rule."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from reference_impl.tlsrpt.errors import ReportError
from reference_impl.tlsrpt.model import FailureDetail, PolicyReport, PolicyType, Report, ResultType, day_window
from reference_impl.tlsrpt.validate import load_schema, validate_report_json
from tests.reference_impl.tlsrpt.test_validate_support import DELETE, appendix_b, encode, good_report, rules, variant


def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    schema = load_schema()
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert set(schema["required"]) == {"organization-name", "date-range", "contact-info", "report-id", "policies"}


def test_load_schema_returns_a_fresh_copy() -> None:
    first = load_schema()
    first["required"].clear()
    assert load_schema()["required"]


def test_hand_written_report_is_clean() -> None:
    validation = validate_report_json(encode(good_report()))
    assert validation.findings == []
    assert validation.ok
    assert validation.form == "json"
    assert validation.report == good_report()


def test_appendix_b_as_printed_has_no_error() -> None:
    validation = validate_report_json(appendix_b())
    assert validation.ok
    assert validation.errors == []
    assert validation.warnings == ["additional-information-uri", "failure-detail-field-missing", "mx-host-string"]
    assert validation.infos == ["date-range-end-inclusive"]
    missing = [f for f in validation.findings if f.rule == "failure-detail-field-missing"]
    assert [(f.where, "receiving-ip" in f.message) for f in missing] == [("/policies/0/failure-details/0", True)]


def test_report_from_the_model_is_clean() -> None:
    """The project's report model (shared with the generator) writes what the validator accepts."""
    start, end = day_window(date(2026, 11, 27))
    failure = FailureDetail(ResultType.STARTTLS_NOT_SUPPORTED, 4, "192.0.2.1", "mx.receiver.example", None, "192.0.2.2")
    policy = PolicyReport(
        PolicyType.STS,
        "receiver.example",
        ("version: STSv1", "mode: testing", "mx: mx.receiver.example", "max_age: 86400"),
        ("mx.receiver.example",),
        successful=10,
        failed=4,
        failures=(failure,),
    )
    report = Report("Sender", start, end, "tlsrpt@sender.example", "r-1", (policy,))
    assert validate_report_json(report.to_bytes()).findings == []


def test_no_policy_found_needs_no_policy_string() -> None:
    report = variant("policies/1/policy", {"policy-type": "no-policy-found", "policy-domain": "receiver.example"})
    assert validate_report_json(encode(report)).findings == []


def test_policy_failures_need_no_receiving_mx() -> None:
    detail = {"result-type": "sts-policy-fetch-error", "sending-mta-ip": "192.0.2.10", "failed-session-count": 3}
    report = variant("policies/0/failure-details/0", detail)
    assert validate_report_json(encode(report)).findings == []


def test_date_range_with_offsets_at_utc_midnight_is_a_utc_day() -> None:
    report = variant(
        "date-range", {"start-datetime": "2026-11-27T01:00:00+01:00", "end-datetime": "2026-11-27T19:00:00-05:00"}
    )
    assert validate_report_json(encode(report)).findings == []


def test_contact_info_as_uri_is_accepted() -> None:
    for contact in ("mailto:tlsrpt@sender.example", "https://sender.example/tlsrpt"):
        assert validate_report_json(encode(variant("contact-info", contact))).findings == []


RULE_CASES: list[tuple[str, object, str, str]] = [
    # path, new value, rule, severity
    ("date-range/start-datetime", "2026-11-27T00:00:00", "date-range-format", "error"),
    ("date-range/end-datetime", "28 Nov 2026 00:00:00 GMT", "date-range-format", "error"),
    ("date-range/end-datetime", "2026-02-30T00:00:00Z", "date-range-format", "error"),
    ("date-range/end-datetime", "9999-12-31T23:59:59Z", "date-range-format", "error"),
    ("date-range/start-datetime", "0001-01-01T00:30:00+01:00", "date-range-format", "error"),
    ("date-range/end-datetime", "2026-11-26T00:00:00Z", "date-range-order", "error"),
    ("date-range/end-datetime", "2026-11-28T06:00:00Z", "date-range-not-utc-day", "warning"),
    ("date-range/start-datetime", "2026-11-27T00:30:00Z", "date-range-not-utc-day", "warning"),
    ("date-range/end-datetime", "2026-11-27T23:59:59Z", "date-range-end-inclusive", "info"),
    ("date-range/end-datetime", "2026-11-27T23:59:59.999Z", "date-range-end-inclusive", "info"),
    ("contact-info", "the postmaster of sender.example", "contact-info-format", "warning"),
    ("policies", [], "policies-empty", "error"),
    ("policies", good_report()["policies"][0], "policies-not-array", "error"),
    ("policies/0/policy/policy-type", "dane", "policy-type-unknown", "error"),
    ("policies/0/policy/policy-string", DELETE, "sts-policy-string-missing", "warning"),
    (
        "policies/0/policy/policy-string/1",
        "mode: enforce\nmx: mx1.receiver.example",
        "sts-policy-string-lines",
        "error",
    ),
    (
        "policies/0/policy/policy-string/2",
        "mx: mx1.receiver.example, mx2.receiver.example",
        "sts-policy-string-lines",
        "error",
    ),
    ("policies/0/policy/policy-string/0", "version: STSv2", "sts-policy-string-version", "error"),
    ("policies/0/policy/mx-host", DELETE, "sts-mx-host-missing", "warning"),
    ("policies/0/policy/mx-host", "mx1.receiver.example", "mx-host-string", "warning"),
    ("policies/1/policy/policy-string", DELETE, "tlsa-policy-string-missing", "warning"),
    (
        "policies/1/policy/policy-string/0",
        "3 1 1 0123456789ABCDEF 0123456789ABCDEF",
        "tlsa-policy-string-format",
        "error",
    ),
    ("policies/1/policy/policy-string/0", "3 1 1", "tlsa-policy-string-format", "error"),
    ("policies/1/policy/policy-string/0", "3 1 256 00FF", "tlsa-policy-string-format", "error"),
    ("policies/1/policy/policy-string/0", "3 1 1 00FF; 2 0 1 AABB", "tlsa-policy-string-joined", "warning"),
    ("policies/0/policy/policy-domain", "b\u00fccher.example", "domain-not-a-label", "error"),
    ("policies/0/policy/mx-host/1", "*.b\u00fccher.example", "domain-not-a-label", "error"),
    ("policies/0/policy/policy-domain", "receiver example", "domain-syntax", "warning"),
    ("policies/0/summary/total-failure-session-count", 9, "failure-count-mismatch", "warning"),
    ("policies/0/summary/total-failure-session-count", 4, "failure-count-mismatch", "info"),
    ("policies/0/failure-details/0/failed-session-count", 3.0, "count-not-integer", "error"),
    ("policies/1/summary/total-successful-session-count", 1e3, "count-not-integer", "error"),
    ("policies/1/summary/total-successful-session-count", -1, "report-schema", "error"),
    ("policies/1/summary/total-successful-session-count", "40", "report-schema", "error"),
    ("policies/1/summary/total-successful-session-count", True, "report-schema", "error"),
    ("report-id", DELETE, "report-schema", "error"),
    ("organization-name", None, "report-schema", "error"),
    ("policies/1/policy/policy-string", "3 1 1 00FF", "report-schema", "error"),
    ("policies/0/failure-details/0/result-type", "certificate-revoked", "result-type-unregistered", "error"),
    ("policies/0/failure-details/1/failure-reason-code", DELETE, "failure-reason-code-missing", "warning"),
    ("policies/0/failure-details/0/receiving-ip", DELETE, "failure-detail-field-missing", "warning"),
    ("policies/0/failure-details/0/sending-mta-ip", DELETE, "failure-detail-field-missing", "warning"),
    ("policies/0/failure-details/0/sending-mta-ip", "192.0.2.300", "ip-address-invalid", "error"),
    ("policies/0/failure-details/0/receiving-ip", "010.0.0.1", "ip-address-invalid", "error"),
    ("policies/0/failure-details/1/receiving-ip", "fe80::1%eth0", "ip-address-invalid", "error"),
    (
        "policies/0/failure-details/1/additional-information",
        "see our web site",
        "additional-information-uri",
        "warning",
    ),
    ("policies/0/policy/mx-host-pattern", ["mx1.receiver.example"], "draft-key", "warning"),
    ("policies/0/failure-details/0/failure-reason", "x", "draft-key", "warning"),
    ("policy", {}, "draft-key", "warning"),
    ("x-extension", {"anything": [1, 2]}, "unknown-key", "info"),
]


@pytest.mark.parametrize(("path", "value", "rule", "severity"), RULE_CASES, ids=lambda v: str(v)[:30])
def test_each_rule_alone(path: str, value: object, rule: str, severity: str) -> None:
    validation = validate_report_json(encode(variant(path, value)))
    assert rules(validation) == {(rule, severity)}
    assert all(f.section and f.where is not None and f.message for f in validation.findings)
    assert validation.ok == (severity != "error")


def test_findings_point_where_the_problem_is() -> None:
    validation = validate_report_json(encode(variant("policies/0/failure-details/1/sending-mta-ip", "not-an-ip")))
    (found,) = validation.findings
    assert found.where == "/policies/0/failure-details/1/sending-mta-ip"
    assert found.section == "4.4"
    assert "not-an-ip" in found.message


def test_required_key_is_named_by_its_pointer() -> None:
    validation = validate_report_json(encode(variant("policies/0/summary/total-failure-session-count", DELETE)))
    assert [(f.rule, f.where) for f in validation.findings] == [
        ("report-schema", "/policies/0/summary/total-failure-session-count")
    ]


def test_missing_version_is_info_when_the_policy_was_reported_broken() -> None:
    report = variant("policies/0/policy/policy-string/0", "versoin: STSv1")
    report = variant("policies/0/failure-details/0/result-type", "sts-policy-invalid", report)
    assert rules(validate_report_json(encode(report))) == {("sts-policy-string-version", "info")}


def _raw(text: str) -> bytes:
    return text.encode("utf-8")


def _good_text() -> str:
    return encode(good_report()).decode("utf-8")


JSON_CASES: list[tuple[bytes, str, str, bool]] = [
    # body, rule, severity, readable
    (b'{"organization-name": "\xff"}', "json-not-utf8", "error", False),
    (b"\xef\xbb\xbf" + encode(good_report()), "json-bom", "warning", True),
    (b'{"organization-name": ', "json-syntax", "error", False),
    (b"", "json-syntax", "error", False),
    (
        _raw(_good_text().replace('"total-successful-session-count": 40', '"total-successful-session-count": NaN')),
        "json-non-finite",
        "error",
        False,
    ),
    (b"[" * 100 + b"]" * 100, "json-too-deep", "error", False),
    (b"[" * 100_000 + b"]" * 100_000, "json-too-deep", "error", False),
    (
        _raw(_good_text().replace('"report-id":', '"report-id": "first",\n "report-id":')),
        "json-duplicate-key",
        "error",
        True,
    ),
    (
        _raw(_good_text().replace('"Sender Example Inc."', '"Sender \\ud800 Inc."')),
        "json-bad-code-point",
        "error",
        True,
    ),
    (_raw(_good_text().replace('"Sender Example Inc."', '"Sender \ufdd0 Inc."')), "json-bad-code-point", "error", True),
    (_raw(_good_text().replace(": 120,", ": 9007199254740993,")), "json-number-range", "warning", True),
]


@pytest.mark.parametrize(("body", "rule", "severity", "readable"), JSON_CASES, ids=lambda v: str(v)[:24])
def test_each_json_rule_alone(body: bytes, rule: str, severity: str, readable: bool) -> None:
    validation = validate_report_json(body)
    assert rules(validation) == {(rule, severity)}
    assert (validation.report is not None) == readable


def test_duplicate_key_keeps_the_last_value() -> None:
    body = _raw(_good_text().replace('"report-id":', '"report-id": "first",\n "report-id":'))
    validation = validate_report_json(body)
    assert validation.report is not None and validation.report["report-id"] == good_report()["report-id"]
    assert [f.where for f in validation.findings] == ["/report-id"]


def test_json_that_is_not_an_object() -> None:
    validation = validate_report_json(b'["policies"]')
    assert rules(validation) == {("report-schema", "error")}
    assert validation.report is None


def test_several_problems_are_all_reported() -> None:
    report: dict[str, Any] = variant("policies/0/policy/mx-host", "mx1.receiver.example")
    report = variant("policies/0/failure-details/0/result-type", "tls-downgrade", report)
    report = variant("contact-info", "postmaster", report)
    validation = validate_report_json(encode(report))
    assert validation.errors == ["result-type-unregistered"]
    assert validation.warnings == ["contact-info-format", "mx-host-string"]


def test_errors_and_warnings_are_sorted_and_unique() -> None:
    report = variant("policies/0/failure-details/0/sending-mta-ip", "x")
    report = variant("policies/0/failure-details/1/sending-mta-ip", "y", report)
    report = variant("policies/0/failure-details/0/result-type", "z", report)
    assert validate_report_json(encode(report)).errors == ["ip-address-invalid", "result-type-unregistered"]


def test_unusable_argument_raises_report_error() -> None:
    with pytest.raises(ReportError) as raised:
        validate_report_json(json.dumps(good_report()))  # type: ignore[arg-type]
    assert raised.value.rule == "validator-argument"
