"""results.json, junit.xml and report.html: contents, escaping, and all-or-nothing writing."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conformance.report import writers
from conformance.report.writers import RunInfo, write_report
from conformance.verdict import CheckOutcome, ScenarioResult, Verdict

RUN = RunInfo(
    target="reference", target_description="", target_version="0.1", started_at="2026-11-29T00:00:00Z", duration_s=1.5
)


def result(verdict: Verdict, *, evidence: tuple[str, ...] = (), scenario_id: str = "smtp/x/y") -> ScenarioResult:
    return ScenarioResult(
        id=scenario_id,
        title="A title",
        rfc=3207,
        section="4.2",
        level="MUST",
        role="receiving-mta",
        requirements=("rfc3207-4.2-x",),
        verdict=verdict,
        duration_s=0.01,
        outcomes=(CheckOutcome("fact", "rfc3207-4.2-x", "MUST", verdict, "detail <b>"),),
        evidence=evidence,
    )


def test_three_files_with_the_contract_fields(tmp_path: Path) -> None:
    results = [result(Verdict.PASS, scenario_id="a/b/c"), result(Verdict.FAIL, scenario_id="a/b/d")]
    paths = write_report(tmp_path, RUN, results)
    assert sorted(p.name for p in paths) == ["junit.xml", "report.html", "results.json"]
    document = json.loads((tmp_path / "results.json").read_text())
    assert document["summary"]["PASS"] == 1 and document["summary"]["FAIL"] == 1
    assert document["run"]["target"] == "reference"
    suite = ET.parse(tmp_path / "junit.xml").getroot()
    assert suite.get("tests") == "2" and suite.get("failures") == "1"
    assert [c.get("name") for c in suite.iter("testcase")] == ["a/b/c", "a/b/d"]


def test_untrusted_text_is_escaped_in_html(tmp_path: Path) -> None:
    hostile = "S: 220 <script>alert(1)</script> ESMTP"
    write_report(tmp_path, RUN, [result(Verdict.FAIL, evidence=(hostile,))])
    html = (tmp_path / "report.html").read_text()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_na_is_skipped_and_error_is_an_error_in_junit(tmp_path: Path) -> None:
    write_report(tmp_path, RUN, [result(Verdict.NA, scenario_id="a/na"), result(Verdict.ERROR, scenario_id="a/err")])
    root = ET.parse(tmp_path / "junit.xml").getroot()
    suite = root.find("testsuite")  # one per RFC; <testsuites> itself has no skipped count in the schema
    assert suite is not None and suite.get("skipped") == "1" and suite.get("errors") == "1"
    assert root.get("errors") == "1"


def test_a_failed_render_leaves_no_half_written_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_report(tmp_path, RUN, [result(Verdict.PASS)])
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def broken(*args: object) -> str:
        raise RuntimeError("template exploded")

    monkeypatch.setattr(writers, "render", broken)
    with pytest.raises(RuntimeError):
        write_report(tmp_path, RUN, [result(Verdict.FAIL)])
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
