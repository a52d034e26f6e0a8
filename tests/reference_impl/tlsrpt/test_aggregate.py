"""RFC 8460 sections 4.1-4.4: session records of one UTC day become one report per Policy Domain."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from reference_impl.mta.records import (
    POLICY_TYPE_NONE,
    POLICY_TYPE_STS,
    POLICY_TYPE_TLSA,
    TlsResultType,
    TlsSessionRecord,
)
from reference_impl.tlsrpt.aggregate import (
    Reporter,
    a_label,
    build_report,
    build_reports,
    new_report_id,
    policy_domains,
)
from reference_impl.tlsrpt.model import FailureDetail, PolicyType, ResultType, day_window
from reference_impl.tlsrpt.validate_json import validate_report_json

DAY = date(2026, 11, 28)
WINDOW = day_window(DAY)
NOON = datetime(2026, 11, 28, 12, tzinfo=UTC).timestamp()
REPORTER = Reporter("Example Reporter", "tlsrpt@reporter.test", "reporter.test")
POLICY = ("version: STSv1", "mode: enforce", "mx: mx1.d.test", "max_age: 86400")


def rec(result: TlsResultType = TlsResultType.SUCCESS, **changes: object) -> TlsSessionRecord:
    base = TlsSessionRecord(
        policy_domain="d.test",
        mx_host="mx1.d.test",
        ip="192.0.2.1",
        result_type=result,
        tls_version="TLSv1.3",
        cipher="TLS_AES_256_GCM_SHA384",
        at=NOON,
        mx_helo="mx1.d.test",
        policy_type=POLICY_TYPE_STS,
        policy_strings=POLICY,
        mx_patterns=("mx1.d.test",),
        sending_ip="198.51.100.7",
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def report_of(records: list[TlsSessionRecord], domain: str = "d.test") -> dict[str, Any]:
    report = build_report(
        records, policy_domain=domain, window=WINDOW, reporter=REPORTER, report_id="r-1@reporter.test"
    )
    assert report is not None
    return report.to_json()


def test_successes_and_failures_are_counted_and_failures_grouped() -> None:
    expired = dict(failure_reason="certificate has expired")
    records = [
        rec(),
        rec(),
        rec(TlsResultType.CERTIFICATE_EXPIRED, **expired),
        rec(TlsResultType.CERTIFICATE_EXPIRED, **expired),
        rec(TlsResultType.CERTIFICATE_EXPIRED, ip="192.0.2.2", **expired),
    ]
    document = report_of(records)
    [policy] = document["policies"]
    assert policy["policy"] == {
        "policy-type": "sts",
        "policy-string": list(POLICY),
        "policy-domain": "d.test",
        "mx-host": ["mx1.d.test"],
    }
    assert policy["summary"] == {"total-successful-session-count": 2, "total-failure-session-count": 3}
    details = policy["failure-details"]
    assert [(d["receiving-ip"], d["failed-session-count"]) for d in details] == [("192.0.2.1", 2), ("192.0.2.2", 1)]
    assert details[0] == {
        "result-type": "certificate-expired",
        "sending-mta-ip": "198.51.100.7",
        "receiving-mx-hostname": "mx1.d.test",
        "receiving-mx-helo": "mx1.d.test",
        "receiving-ip": "192.0.2.1",
        "failed-session-count": 2,
        "failure-reason-code": "certificate has expired",
    }


def test_policy_failure_without_a_session_has_no_mx_fields() -> None:
    fetch_error = rec(
        TlsResultType.STS_POLICY_FETCH_ERROR,
        mx_host="",
        ip="",
        mx_helo=None,
        sending_ip="",
        failure_reason="connection refused",
        policy_strings=(),
        mx_patterns=(),
    )
    [policy] = report_of([fetch_error])["policies"]
    assert policy["policy"] == {"policy-type": "sts", "policy-domain": "d.test"}
    assert policy["failure-details"] == [
        {
            "result-type": "sts-policy-fetch-error",
            "failed-session-count": 1,
            "failure-reason-code": "connection refused",
        }
    ]


def test_mx_mismatch_keeps_the_host_but_no_ips() -> None:
    mismatch = rec(
        TlsResultType.VALIDATION_FAILURE, mx_host="evil.test", ip="", sending_ip="", failure_reason="mx-mismatch"
    )
    [policy] = report_of([mismatch])["policies"]
    [detail] = policy["failure-details"]
    assert detail["receiving-mx-hostname"] == "evil.test"
    assert "receiving-ip" not in detail and "sending-mta-ip" not in detail


def test_each_applied_policy_is_its_own_entry() -> None:
    other = ("version: STSv1", "mode: testing", "mx: mx1.d.test", "max_age: 86400")
    records = [rec(), rec(policy_strings=other), rec(policy_type=POLICY_TYPE_NONE, policy_strings=(), mx_patterns=())]
    policies = report_of(records)["policies"]
    assert len(policies) == 3
    assert sorted(p["policy"]["policy-type"] for p in policies) == ["no-policy-found", "sts", "sts"]


TLSA = ("3 1 1 " + "ab" * 32, "2 0 1 " + "cd" * 32)


def tlsa(result: TlsResultType = TlsResultType.SUCCESS, **changes: object) -> TlsSessionRecord:
    """A record made under DANE (RFC 8460 4.4, 4.5): policy-type tlsa, the RRset as policy strings."""
    settings: dict[str, object] = {"policy_type": POLICY_TYPE_TLSA, "policy_strings": TLSA, "mx_patterns": ()}
    return rec(result, **{**settings, **changes})


def test_a_tlsa_policy_lists_its_records_and_no_mx_host() -> None:
    records = [tlsa(), tlsa(), tlsa(TlsResultType.TLSA_INVALID, failure_reason="no TLSA record matches")]
    report = build_report(
        records, policy_domain="d.test", window=WINDOW, reporter=REPORTER, report_id="r@reporter.test"
    )
    assert report is not None
    [policy] = report.to_json()["policies"]
    assert policy["policy"] == {"policy-type": "tlsa", "policy-string": list(TLSA), "policy-domain": "d.test"}
    assert policy["summary"] == {"total-successful-session-count": 2, "total-failure-session-count": 1}
    [detail] = policy["failure-details"]
    assert (detail["result-type"], detail["receiving-mx-hostname"]) == ("tlsa-invalid", "mx1.d.test")
    # The reference's own validator finds nothing to say about it (4.5 tlsa-policy-string-format).
    assert validate_report_json(report.to_bytes()).findings == []


def test_mx_patterns_are_written_for_sts_policies_only() -> None:
    # 4.4: "mx-host" is the MTA-STS policy's; a tlsa record that carried patterns writes none.
    [policy] = report_of([tlsa(mx_patterns=("mx1.d.test",))])["policies"]
    assert "mx-host" not in policy["policy"]


def test_dane_failures_without_a_session() -> None:
    # 4.3.2.1: dnssec-invalid and dane-required name the MX but have no IPs and no policy strings.
    common = dict(ip="", sending_ip="", mx_helo=None, tls_version=None, cipher=None, policy_strings=())
    records = [
        tlsa(TlsResultType.DNSSEC_INVALID, failure_reason="TLSA lookup failed: SERVFAIL", **common),
        tlsa(TlsResultType.DANE_REQUIRED, mx_host="mx2.d.test", failure_reason="DANE required", **common),
    ]
    [policy] = report_of(records)["policies"]
    assert policy["policy"] == {"policy-type": "tlsa", "policy-domain": "d.test"}
    assert [(d["result-type"], d["receiving-mx-hostname"]) for d in policy["failure-details"]] == [
        ("dane-required", "mx2.d.test"),
        ("dnssec-invalid", "mx1.d.test"),
    ]
    assert all("receiving-ip" not in d and "sending-mta-ip" not in d for d in policy["failure-details"])


def test_dane_and_sts_hosts_of_one_domain_are_separate_policies() -> None:
    # 4: "Reporters may report multiple applied policies (for example, an MTA-STS Policy and a DANE TLSA record".
    policies = report_of([rec(mx_host="mx2.d.test"), tlsa()])["policies"]
    assert sorted(p["policy"]["policy-type"] for p in policies) == ["sts", "tlsa"]
    assert all(p["summary"]["total-successful-session-count"] == 1 for p in policies)


def test_only_the_utc_day_counts() -> None:
    start, end = (t.timestamp() for t in WINDOW)
    records = [rec(at=start - 1), rec(at=start), rec(at=end - 0.001), rec(at=end)]
    [policy] = report_of(records)["policies"]
    assert policy["summary"]["total-successful-session-count"] == 2
    document = report_of(records)
    assert document["date-range"] == {"start-datetime": "2026-11-28T00:00:00Z", "end-datetime": "2026-11-29T00:00:00Z"}


def test_idn_domains_are_written_in_a_labels() -> None:
    records = [rec(policy_domain="bücher.test", mx_patterns=("*.bücher.test",))]
    document = report_of(records, "bücher.test")
    [policy] = document["policies"]
    assert policy["policy"]["policy-domain"] == "xn--bcher-kva.test"
    assert policy["policy"]["mx-host"] == ["*.xn--bcher-kva.test"]
    assert policy_domains(records, WINDOW) == ["xn--bcher-kva.test"]
    assert a_label("XN--BCHER-KVA.test.") == "xn--bcher-kva.test"


def test_build_reports_one_per_domain_with_unique_ids_and_filter() -> None:
    records = [rec(), rec(policy_domain="e.test"), rec(policy_domain="f.test", at=NOON - 86400)]
    reports = build_reports(records, day=DAY, reporter=REPORTER)
    assert [r.policies[0].policy_domain for r in reports] == ["d.test", "e.test"]
    assert len({r.report_id for r in reports}) == 2
    assert all(r.report_id.startswith("2026-11-28.") and r.report_id.endswith("@reporter.test") for r in reports)
    assert [
        r.policies[0].policy_domain for r in build_reports(records, day=DAY, reporter=REPORTER, domains=["E.test"])
    ] == ["e.test"]
    assert build_reports(records, day=DAY + timedelta(days=3), reporter=REPORTER) == []


def test_report_id_shape() -> None:
    assert new_report_id(DAY, "d.test", "reporter.test", "ab12") == "2026-11-28.d.test.ab12@reporter.test"


@dataclasses.dataclass(frozen=True)
class FutureResult:
    value: str = "something-new"


@dataclasses.dataclass(frozen=True)
class FutureRecord:
    """A record with a result type and policy type the MTA does not know (yet)."""

    policy_domain: str = "d.test"
    mx_host: str = "mx1.d.test"
    ip: str = "192.0.2.1"
    result_type: FutureResult = FutureResult()
    at: float = NOON
    failure_reason: str | None = None
    mx_helo: str | None = None
    policy_type: str = "dane?"
    policy_strings: tuple[str, ...] = ()
    mx_patterns: tuple[str, ...] = ()
    sending_ip: str = ""


def test_unknown_values_fall_back_to_the_catch_alls() -> None:
    report = build_report([FutureRecord()], policy_domain="d.test", window=WINDOW, reporter=REPORTER, report_id="x@y")
    assert report is not None
    assert report.policies[0].policy_type is PolicyType.NO_POLICY_FOUND
    assert report.policies[0].failures == (
        FailureDetail(ResultType.VALIDATION_FAILURE, 1, receiving_mx_hostname="mx1.d.test", receiving_ip="192.0.2.1"),
    )


# -- properties --------------------------------------------------------------------------------

results = st.sampled_from(list(TlsResultType))
domains = st.one_of(st.sampled_from(["d.test", "D.TEST.", "bücher.test", "e.test"]), st.text(max_size=20))
records = st.builds(
    rec,
    result=results,
    policy_domain=domains,
    mx_host=st.sampled_from(["", "mx1.d.test", "mx2.d.test"]),
    ip=st.sampled_from(["", "192.0.2.1"]),
    at=st.floats(NOON - 2 * 86400, NOON + 2 * 86400),
    failure_reason=st.one_of(st.none(), st.text(max_size=10)),
    mx_helo=st.one_of(st.none(), st.text(max_size=10)),
    policy_type=st.sampled_from([POLICY_TYPE_STS, POLICY_TYPE_NONE]),
    policy_strings=st.sampled_from([(), POLICY]),
    sending_ip=st.sampled_from(["", "198.51.100.7"]),
)


@given(st.lists(records, max_size=30))
def test_reports_are_consistent_for_any_records(items: list[TlsSessionRecord]) -> None:
    reports = build_reports(items, day=DAY, reporter=REPORTER)
    start, end = (t.timestamp() for t in WINDOW)
    for report in reports:
        domain = report.policies[0].policy_domain
        assert domain.isascii() and domain == domain.lower()
        mine = [r for r in items if start <= r.at < end and a_label(r.policy_domain) == domain]
        assert sum(p.successful + p.failed for p in report.policies) == len(mine)
        for policy in report.policies:
            assert policy.policy_domain == domain
            assert policy.failed == sum(d.failed_session_count for d in policy.failures)  # 4.2.2
            assert all(d.failed_session_count >= 1 for d in policy.failures)
        json.loads(report.to_bytes())  # I-JSON text
    reported = {r.policies[0].policy_domain for r in reports}
    assert reported == set(policy_domains(items, WINDOW))
