"""Each TLSRPT mutant (reference_impl.mta.tlsrpt_mutants) changes one part, and that part differs."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, date, datetime
from typing import Any

import pytest

from reference_impl.mta import mutants
from reference_impl.mta import tlsrpt_mutants as mut
from reference_impl.mta.config import MtaVariant
from reference_impl.mta.records import TlsResultType
from reference_impl.mta.sender import no_transient_record
from reference_impl.mta.tlsrpt_parts import TlsRptParts, every_uri, standard_filename, utc_day
from reference_impl.tlsrpt import compose
from reference_impl.tlsrpt.compose import DkimSigner, MailShape
from reference_impl.tlsrpt.model import FailureDetail, PolicyReport, PolicyType, Report, ResultType, day_window
from reference_impl.tlsrpt.record import ReportUri, select_record

DAY = date(2026, 11, 28)
START, END = day_window(DAY)
REPORT = Report(
    organization_name="Reporter",
    start=START,
    end=END,
    contact_info="tlsrpt@reporter.test",
    report_id="2026-11-28.xn--bcher-kva.test.ab@reporter.test",
    policies=(
        PolicyReport(
            PolicyType.STS,
            "xn--bcher-kva.test",
            ("version: STSv1", "mode: enforce", "mx: mx1.xn--bcher-kva.test", "max_age: 86400"),
            ("mx1.xn--bcher-kva.test", "mx2.xn--bcher-kva.test"),
            successful=5,
            failed=3,
            failures=(
                FailureDetail(
                    ResultType.CERTIFICATE_NOT_TRUSTED,
                    2,
                    sending_mta_ip="198.51.100.7",
                    receiving_mx_hostname="mx1.xn--bcher-kva.test",
                    receiving_ip="192.0.2.1",
                    failure_reason_code="unable to get local issuer certificate",
                    additional_information="https://reporter.test/info",
                ),
                FailureDetail(ResultType.STS_POLICY_FETCH_ERROR, 1, failure_reason_code="refused"),
            ),
        ),
        PolicyReport(PolicyType.NO_POLICY_FOUND, "xn--bcher-kva.test", successful=1),
    ),
)


def document() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(REPORT.to_bytes())
    return loaded


def variant(name: str) -> MtaVariant:
    [found] = [v for v in mut.TLSRPT_MUTANTS if v.name == name]
    return found


# -- the registry --------------------------------------------------------------------------------


def test_every_mutant_swaps_exactly_one_tlsrpt_part_and_has_a_description() -> None:
    reference = TlsRptParts()
    names = [v.name for v in mut.TLSRPT_MUTANTS]
    assert len(names) == len(set(names)) == 28
    assert set(names) == set(mut.TLSRPT_DESCRIPTIONS)
    assert all(d and "RFC 8460" in d for d in mut.TLSRPT_DESCRIPTIONS.values())
    for v in mut.TLSRPT_MUTANTS:
        assert dataclasses.replace(v, tlsrpt=reference) == MtaVariant(name=v.name), v.name  # nothing else changed
        changed = [
            f.name for f in dataclasses.fields(TlsRptParts) if getattr(v.tlsrpt, f.name) != getattr(reference, f.name)
        ]
        assert len(changed) == 1, (v.name, changed)
    # Exported with the DANE mutants (reference_impl.mta.dane_mutants) after them.
    assert mutants.TLSRPT_MUTANTS[: len(mut.TLSRPT_MUTANTS)] == mut.TLSRPT_MUTANTS
    assert mut.TLSRPT_DESCRIPTIONS.items() <= mutants.TLSRPT_DESCRIPTIONS.items()


# -- the report's content --------------------------------------------------------------------------


def test_totals_off() -> None:
    changed = variant("tlsrpt-totals-off").tlsrpt.report_hook(REPORT)
    assert [p.failed for p in REPORT.policies] == [3, 0]
    assert [p.failed for p in changed.policies] == [2, 0]
    assert changed.policies[0].failed != sum(d.failed_session_count for d in changed.policies[0].failures)


def test_success_not_counted() -> None:
    changed = variant("tlsrpt-success-not-counted").tlsrpt.report_hook(REPORT)
    assert [p.successful for p in changed.policies] == [0, 0]


def test_generic_result_type() -> None:
    changed = variant("tlsrpt-generic-result-type").tlsrpt.report_hook(REPORT)
    assert {d.result_type for d in changed.policies[0].failures} == {ResultType.VALIDATION_FAILURE}
    assert {d.result_type for d in REPORT.policies[0].failures} != {ResultType.VALIDATION_FAILURE}


def test_no_failure_reason() -> None:
    changed = variant("tlsrpt-no-failure-reason").tlsrpt.report_hook(REPORT)
    assert [d.failure_reason_code for d in changed.policies[0].failures] == [None, None]


def test_no_policy_string_and_policy_type_none() -> None:
    without = variant("tlsrpt-no-policy-string").tlsrpt.report_hook(REPORT)
    assert without.policies[0].policy_strings == () and REPORT.policies[0].policy_strings
    as_none = variant("tlsrpt-policy-type-none").tlsrpt.report_hook(REPORT)
    assert [p.policy_type for p in as_none.policies] == [PolicyType.NO_POLICY_FOUND] * 2


def test_json_hooks() -> None:
    assert mut.mx_host_string(document())["policies"][0]["policy"]["mx-host"] == (
        "mx1.xn--bcher-kva.test,mx2.xn--bcher-kva.test"
    )
    assert mut.local_time(document())["date-range"] == {
        "start-datetime": "2026-11-28T00:00:00",
        "end-datetime": "2026-11-29T00:00:00",
    }
    assert "contact-info" not in mut.no_contact(document())
    assert mut.policy_domain_ulabels(document())["policies"][0]["policy"]["policy-domain"] == "bücher.test"
    drafted = mut.draft_keys(document())["policies"][0]
    assert set(drafted["policy"]) == {"policy-type", "policy-string", "domain", "mx-host-pattern"}
    detail = drafted["failure-details"][0]
    assert "ip-address" in detail and "additional-info-uri" in detail and "sending-mta-ip" not in detail
    for name in ("tlsrpt-mx-host-string", "tlsrpt-local-time", "tlsrpt-no-contact", "tlsrpt-ulabel-domain"):
        assert variant(name).tlsrpt.json_hook(document()) != document(), name


def test_the_window_is_not_the_utc_day() -> None:
    now = datetime(2026, 11, 29, 0, 5, 30, tzinfo=UTC).timestamp()
    assert utc_day(DAY, now) == (START, END)
    start, end = variant("tlsrpt-not-utc-day").tlsrpt.window(DAY, now)
    assert (start, end) == (datetime(2026, 11, 28, 0, 5, 30, tzinfo=UTC), datetime(2026, 11, 29, 0, 5, 30, tzinfo=UTC))


# -- delivery -------------------------------------------------------------------------------------


def test_media_types_and_compression() -> None:
    assert (compose.media_type(True), compose.media_type(False)) == (
        "application/tlsrpt+gzip",
        "application/tlsrpt+json",
    )
    assert variant("tlsrpt-wrong-media-type").tlsrpt.media_type(True) == "application/json"
    labelled = variant("tlsrpt-gzip-labelled-json").tlsrpt
    assert labelled.gzip and labelled.media_type(labelled.gzip) == "application/tlsrpt+json"
    plain = variant("tlsrpt-no-gzip").tlsrpt
    assert not plain.gzip and plain.media_type(plain.gzip) == "application/tlsrpt+json"


def test_bad_filename() -> None:
    good = standard_filename("reporter.test", "d.test", START, END, "ab12", True)
    bad = variant("tlsrpt-bad-filename").tlsrpt.filename("reporter.test", "d.test", START, END, "ab12", True)
    assert good.endswith("!ab12.json.gz") and bad == good.removesuffix(".json.gz") + ".txt"


def test_first_rua_only_and_two_records() -> None:
    uris = (ReportUri("https://a.test/r", "https"), ReportUri("mailto:r@b.test", "mailto"))
    assert every_uri(uris) == uris
    assert variant("tlsrpt-first-rua-only").tlsrpt.rua_choice(uris) == uris[:1]
    records = ["v=TLSRPTv1; rua=https://a.test/r", "v=TLSRPTv1; rua=mailto:r@b.test", "v=spf1 -all"]
    assert select_record(records) is None  # section 3: two records, no TLSRPT
    chosen = variant("tlsrpt-accepts-two-records").tlsrpt.record_selector(records)
    assert chosen is not None and [u.uri for u in chosen.rua] == ["https://a.test/r"]


def test_dkim_mutants() -> None:
    signer = DkimSigner("reporter.test", "tlsrpt", b"key")
    assert TlsRptParts().dkim(signer) is signer
    assert variant("tlsrpt-mail-unsigned").tlsrpt.dkim(signer) is None
    with_l = variant("tlsrpt-dkim-l-tag").tlsrpt.dkim(signer)
    assert with_l is not None and with_l.body_length_tag and not signer.body_length_tag


def test_mail_shape_mutants() -> None:
    assert TlsRptParts().mail_shape == MailShape()
    assert not variant("tlsrpt-mail-no-report-headers").tlsrpt.mail_shape.report_headers
    assert variant("tlsrpt-mail-not-multipart-report").tlsrpt.mail_shape.content_type == "multipart/mixed"


@pytest.mark.parametrize(
    ("name", "field", "reference", "mutant"),
    [
        ("tlsrpt-no-reports", "sends_reports", True, False),
        ("tlsrpt-strict-https", "strict_https", False, True),
        ("tlsrpt-mail-enforces-sts", "mail_exempt_from_tls_policy", True, False),
        ("tlsrpt-counts-own-session", "records_report_sessions", False, True),
    ],
)
def test_flags(name: str, field: str, reference: bool, mutant: bool) -> None:
    assert getattr(TlsRptParts(), field) is reference
    assert getattr(variant(name).tlsrpt, field) is mutant


def test_no_retry_and_transient_failures() -> None:
    t0 = 1_700_000_000.0
    assert TlsRptParts().backoff.next_attempt_at(t0, 1, t0) == t0 + 60
    assert variant("tlsrpt-no-retry").tlsrpt.backoff.next_attempt_at(t0, 1, t0) is None
    assert no_transient_record("connect failed: refused") is None
    assert (
        variant("tlsrpt-transient-as-failure").tlsrpt.transient_result("connect failed: refused")
        is TlsResultType.STARTTLS_NOT_SUPPORTED
    )
