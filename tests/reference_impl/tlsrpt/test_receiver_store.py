"""The receiver's durable store (RFC 8460 sections 5.3, 5.4, 5.6)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from reference_impl.tlsrpt.errors import Finding
from reference_impl.tlsrpt.receiver_store import (
    UNKNOWN_DOMAIN,
    ReportStore,
    directory_name,
    finding_from_json,
    finding_to_json,
    report_key,
    report_policy_domain,
)

from .receiver_support import POLICY_DOMAIN, report_gzip, sample_report

NOW = datetime(2016, 4, 2, 6, 0, tzinfo=UTC)


def store(tmp_path: Path) -> ReportStore:
    return ReportStore(tmp_path / "store", clock=lambda: NOW)


def test_saved_report_is_on_disk_with_its_metadata(tmp_path: Path) -> None:
    reports = store(tmp_path)
    finding = Finding("mx-host-string", "4.4", "warning", "a string", where="/policies/0/policy/mx-host")
    stored, duplicate = reports.save(
        sample_report(), transport="https", body=report_gzip(), findings=[finding], content_type="application/x"
    )
    assert not duplicate
    folder = tmp_path / "store" / "reports" / POLICY_DOMAIN
    assert json.loads((folder / f"{stored.key}.json").read_bytes()) == sample_report()
    meta = json.loads((folder / f"{stored.key}.meta.json").read_bytes())
    assert meta["transport"] == "https"
    assert meta["received_at"] == NOW.isoformat()
    assert meta["report_id"] == sample_report()["report-id"]
    assert meta["findings"][0]["rule"] == "mx-host-string"
    assert meta["body_bytes"] == len(report_gzip())


def test_received_reads_back_from_disk_in_a_new_store(tmp_path: Path) -> None:
    first = store(tmp_path)
    stored, _ = first.save(sample_report(), transport="mail", body=b"", filename="a!b!1!2.json", notes=["n"])
    again = store(tmp_path).received()
    assert again == [stored]


def test_same_sender_and_report_id_is_a_duplicate(tmp_path: Path) -> None:
    reports = store(tmp_path)
    first, _ = reports.save(sample_report(), transport="https", body=b"1")
    second, duplicate = reports.save(sample_report(organization="changed"), transport="mail", body=b"2")
    assert duplicate and second == first
    assert len(reports.received()) == 1
    assert [entry.outcome for entry in reports.log()] == ["stored", "duplicate"]


def test_same_report_id_from_another_sender_is_another_report(tmp_path: Path) -> None:
    reports = store(tmp_path)
    reports.save(sample_report(), transport="https", body=b"")
    _, duplicate = reports.save(sample_report(contact="tlsrpt@other.example"), transport="https", body=b"")
    assert not duplicate
    assert len(reports.received()) == 2


def test_policy_domain_override_and_unusable_names(tmp_path: Path) -> None:
    reports = store(tmp_path)
    stored, _ = reports.save(sample_report(), transport="mail", body=b"", policy_domain="Other.Example.")
    assert stored.policy_domain == "other.example"
    odd, _ = reports.save(sample_report(report_id="2"), transport="mail", body=b"", policy_domain="../etc")
    assert odd.policy_domain == UNKNOWN_DOMAIN
    assert (tmp_path / "store" / "reports" / UNKNOWN_DOMAIN / f"{odd.key}.json").exists()


def test_record_logs_decisions_that_store_nothing(tmp_path: Path) -> None:
    reports = store(tmp_path)
    reports.record("mail", "ignored", "no valid DKIM signature", rules=["x"], policy_domain="a.example")
    (entry,) = reports.log()
    assert (entry.transport, entry.outcome, entry.reason, entry.rules) == (
        "mail",
        "ignored",
        "no valid DKIM signature",
        ("x",),
    )
    assert reports.received() == []


def test_damaged_files_do_not_stop_the_others(tmp_path: Path) -> None:
    reports = store(tmp_path)
    reports.save(sample_report(), transport="https", body=b"")
    junk = tmp_path / "store" / "reports" / "junk.example"
    junk.mkdir()
    (junk / "abc.meta.json").write_text("{not json")
    with (tmp_path / "store" / "log.jsonl").open("a") as log:
        log.write('{"torn": \n')
    assert len(reports.received()) == 1
    assert len(reports.log()) == 1


def test_lone_surrogates_survive_the_round_trip(tmp_path: Path) -> None:
    report = sample_report(organization="\ud800 odd")
    reports = store(tmp_path)
    reports.save(report, transport="https", body=b"")
    assert reports.received()[0].report == report


def test_finding_json_round_trip() -> None:
    finding = Finding("r", "4.4", "error", "m", line=3, where="/a")
    assert finding_from_json(finding_to_json(finding)) == finding
    assert finding_from_json({"severity": "fatal"}).severity == "info"


def test_report_policy_domain() -> None:
    assert report_policy_domain(sample_report()) == POLICY_DOMAIN
    assert report_policy_domain({"policies": [1, {"policy": {"policy-domain": "b.example"}}]}) == "b.example"
    assert report_policy_domain({"policies": {}}) is None


@given(st.dictionaries(st.sampled_from(["report-id", "contact-info", "x"]), st.text() | st.integers()), st.binary())
def test_report_key_is_total_and_hex(report: dict[str, object], body: bytes) -> None:
    key = report_key(report, body)
    assert len(key) == 64 and int(key, 16) >= 0


@given(st.text() | st.none())
def test_directory_name_is_always_one_safe_component(domain: str | None) -> None:
    name = directory_name(domain)
    assert name and "/" not in name and name not in (".", "..") and "\\" not in name
