"""The TLSRPT report checks: each can pass and fail, absence is decided only at the end, and a
warning-only deviation is a WARN whatever the requirement's level."""

from __future__ import annotations

import gzip
from typing import Any

from conformance.catalog.model import NoReport, ReportFailure, ReportPolicy, ReportReceived, ReportValid
from conformance.drivers.reports import ReceivedReport, collect_reports, is_report_mail, judge_report_check
from conformance.world.observe import DeliveredMessage, ObservationLog, ReportPost
from reference_impl.tlsrpt.errors import Finding
from reference_impl.tlsrpt.validate import Validation

DOMAIN = "d.test"


def _expand(text: str) -> str:
    return text.replace("{domain}", DOMAIN)


def _report(
    *, failures: list[dict[str, Any]] | None = None, successful: int = 1, mx_host: Any = None
) -> dict[str, Any]:
    policy: dict[str, Any] = {
        "policy-type": "sts",
        "policy-string": ["version: STSv1", "mode: testing", f"mx: mx1.{DOMAIN}", "max_age: 86400"],
        "policy-domain": DOMAIN,
        "mx-host": mx_host if mx_host is not None else [f"mx1.{DOMAIN}"],
    }
    entry: dict[str, Any] = {
        "policy": policy,
        "summary": {
            "total-successful-session-count": successful,
            "total-failure-session-count": sum(f["failed-session-count"] for f in failures or []),
        },
    }
    if failures:
        entry["failure-details"] = failures
    return {"policies": [entry]}


def _received(report: dict[str, Any] | None, findings: list[Finding] | None = None, **kw: Any) -> ReceivedReport:
    validation = Validation(findings=findings or [], report=report, form=kw.pop("form", "gzip"))
    return ReceivedReport(
        kw.pop("via", "https"), kw.pop("to", f"tlsrpt.{DOMAIN}/tlsrpt"), kw.pop("accepted", True), 200, validation
    )


def _judge(check: Any, reports: list[ReceivedReport], final: bool = True) -> Any:
    return judge_report_check(check, reports, domain=DOMAIN, expand=_expand, final=final, waited="in the test")


def test_report_received_passes_at_once_and_fails_only_at_the_end() -> None:
    check = ReportReceived(check="report-received", via="https", accepted=True)
    assert _judge(check, [_received(_report())], final=False).ok
    assert _judge(check, [], final=False) is None
    decision = _judge(check, [])
    assert not decision.ok and "no accepted report" in decision.detail
    assert not _judge(check, [_received(_report(), accepted=False)]).ok


def test_report_received_compressed() -> None:
    check = ReportReceived(check="report-received", compressed=True)
    assert _judge(check, [_received(_report(), form="gzip")]).ok
    assert not _judge(check, [_received(_report(), form="json")]).ok


def test_no_report_waits_for_the_end_and_fails_on_any_report() -> None:
    check = NoReport(check="no-report")
    assert _judge(check, [], final=False) is None
    assert _judge(check, []).ok
    assert not _judge(check, [_received(_report())], final=False).ok


def test_report_valid_errors_fail_and_warnings_warn() -> None:
    check = ReportValid(check="report-valid")
    error = Finding("report-schema", "4.4", "error", "missing key")
    warning = Finding("mx-host-string", "4.4", "warning", "a string")
    info = Finding("unknown-key", "4.4", "info", "x")
    assert _judge(check, [_received(_report(), [info])]).ok
    failed = _judge(check, [_received(_report(), [error, warning])])
    assert not failed.ok and not failed.warn_only
    warned = _judge(check, [_received(_report(), [warning])])
    assert not warned.ok and warned.warn_only
    only_schema = ReportValid(check="report-valid", rules=("report-schema",))
    assert _judge(only_schema, [_received(_report(), [warning])]).ok


def test_report_policy_counts_type_and_strings() -> None:
    report = [_received(_report(successful=2))]
    assert _judge(ReportPolicy(check="report-policy", policy_type="sts", successful=2, failed=0), report).ok
    missed = _judge(ReportPolicy(check="report-policy", successful=1), report)
    assert not missed.ok and "total-successful-session-count 2" in missed.detail
    strings = ReportPolicy(check="report-policy", policy_strings_include=("mode: enforce",))
    assert not _judge(strings, report).ok
    absent = ReportPolicy(check="report-policy", policy_type="no-policy-found", absent=True)
    assert _judge(absent, report).ok
    assert not _judge(ReportPolicy(check="report-policy", policy_type="sts", absent=True), report).ok


def test_report_policy_reads_the_string_form_of_mx_host() -> None:
    check = ReportPolicy(check="report-policy", mx_hosts=("mx1.{domain}", "mx2.{domain}"))
    as_string = [_received(_report(mx_host=f"mx1.{DOMAIN},mx2.{DOMAIN}"))]
    assert _judge(check, as_string).ok
    assert not _judge(check, [_received(_report())]).ok


def test_report_failure_type_host_count_reason_and_absence() -> None:
    detail = {
        "result-type": "certificate-expired",
        "receiving-mx-hostname": f"mx1.{DOMAIN}",
        "failed-session-count": 1,
    }
    reports = [_received(_report(failures=[detail]))]
    assert _judge(
        ReportFailure(check="report-failure", result_type="certificate-expired", mx_host="mx1.{domain}"), reports
    ).ok
    assert not _judge(ReportFailure(check="report-failure", result_type="certificate-expired", count=2), reports).ok
    assert not _judge(ReportFailure(check="report-failure", result_type="validation-failure"), reports).ok
    no_reason = ReportFailure(check="report-failure", result_type="certificate-expired", with_reason=True)
    assert "without a failure-reason-code" in _judge(no_reason, reports).detail
    absent = ReportFailure(check="report-failure", result_type="starttls-not-supported", absent=True)
    assert _judge(absent, reports).ok
    assert _judge(absent, reports, final=False) is None
    present = ReportFailure(check="report-failure", result_type="certificate-expired", absent=True)
    assert not _judge(present, reports, final=False).ok
    # Absence needs a report to be absent from.
    assert not _judge(absent, []).ok


def test_collect_reports_reads_posts_and_report_mail_only() -> None:
    log = ObservationLog()
    body = gzip.compress(b'{"policies": []}')
    log.add(ReportPost("/tlsrpt", "application/tlsrpt+gzip", body, None, "c", 0.0, host="tlsrpt.d.test", status=503))
    bounce = b'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n--b--\r\n'
    log.add(DeliveredMessage("mailbox", "", (), ("a@d.test",), bounce, True, None, None, 0.0))
    reports = collect_reports(log, None)
    assert [(r.via, r.accepted, r.status) for r in reports] == [("https", False, 503)]
    assert reports[0].validation.form == "gzip"
    assert not is_report_mail(bounce)
    assert is_report_mail(b'Content-Type: multipart/report; report-type="tlsrpt"\r\n\r\n')
