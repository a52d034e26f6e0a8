"""CI gates: --strict, --expect (a baseline) and --write-expect (starting one)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from conformance.cli import main
from conformance.errors import DataFileError
from conformance.expectations import PLACEHOLDER_REASON, expectations_yaml, load_expectations
from conformance.verdict import ScenarioResult, Verdict

# A SHOULD that the mutant breaks: the reference PASSes it, the mutant gives WARN.
WARN_TARGET = "mutant:sts-any-content-type"
WARN_ID = "mta-sts/send/fetch/content-type-html-rejected"
FAIL_TARGET = "mutant:keeps-pipelined-plaintext"
FAIL_ID = "smtp/receive/starttls-injection-discarded"


def run(tmp_path: Path, *argv: str) -> int:
    return main(["run", "-q", *argv, "--report", str(tmp_path / "r")])


def test_a_warn_passes_the_run_unless_strict(tmp_path: Path) -> None:
    assert run(tmp_path, "--target", WARN_TARGET, "--select", WARN_ID) == 0
    assert run(tmp_path, "--strict", "--target", WARN_TARGET, "--select", WARN_ID) == 1
    document = json.loads((tmp_path / "r" / "results.json").read_text())
    assert [r["verdict"] for r in document["results"]] == ["WARN"]
    assert document["run"]["strict"] is True
    failure = ET.parse(tmp_path / "r" / "junit.xml").getroot().find(".//testcase/failure")
    assert failure is not None and failure.get("type") == "WARN"


def test_strict_changes_nothing_under_expect(tmp_path: Path) -> None:
    expected = tmp_path / "expected.yaml"
    expected.write_text(
        f'target: t\nexpectations:\n  - {{id: {WARN_ID}, verdict: WARN, reason: "serves policies as text/html"}}\n',
        encoding="utf-8",
    )
    argv = ("--strict", "--target", WARN_TARGET, "--select", WARN_ID, "--expect", str(expected))
    assert run(tmp_path, *argv) == 0
    assert ET.parse(tmp_path / "r" / "junit.xml").getroot().find(".//failure") is None


def test_an_unexpected_pass_fails_the_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A listed deviation the target no longer shows is a difference too: the file went stale."""
    expected = tmp_path / "expected.yaml"
    expected.write_text(
        f'target: reference\nexpectations:\n  - {{id: {FAIL_ID}, verdict: FAIL, reason: "known CVE-2011-0411"}}\n',
        encoding="utf-8",
    )
    assert run(tmp_path, "--select", FAIL_ID, "--expect", str(expected)) == 1
    out = capsys.readouterr().out
    assert f"UNEXPECTED {FAIL_ID}: expected FAIL, got PASS" in out
    # and the same file matches the target that does fail: exit 0
    assert run(tmp_path, "--target", FAIL_TARGET, "--select", FAIL_ID, "--expect", str(expected)) == 0


def test_write_expect_then_fill_in_the_reasons(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    baseline = tmp_path / "expected.yaml"
    argv = ("--target", FAIL_TARGET, "--select", "smtp/receive/*", "--write-expect", str(baseline))
    assert run(tmp_path, *argv) == 1  # the run's own status is unchanged: it FAILed
    assert f"expected results: {baseline} (1 reason(s) to fill in)" in capsys.readouterr().out
    text = baseline.read_text(encoding="utf-8")
    assert text.startswith("# Expected results for mutant:keeps-pipelined-plaintext")
    data = yaml.safe_load(text)
    assert data == {
        "target": FAIL_TARGET,
        "expectations": [{"id": FAIL_ID, "verdict": "FAIL", "reason": PLACEHOLDER_REASON}],
    }

    # Adopting the file as it is: refused, naming file, line and what to do.
    assert run(tmp_path, "--target", FAIL_TARGET, "--select", "smtp/receive/*", "--expect", str(baseline)) == 2
    err = capsys.readouterr().err
    line = next(n for n, row in enumerate(text.splitlines(), 1) if "reason:" in row)
    assert f"{baseline}:{line}: expectations[0].reason:" in err and "is a placeholder: write why" in err

    baseline.write_text(text.replace(PLACEHOLDER_REASON, "pipelined commands survive STARTTLS"), encoding="utf-8")
    assert run(tmp_path, "--target", FAIL_TARGET, "--select", "smtp/receive/*", "--expect", str(baseline)) == 0

    # Written again from a run under --expect: the real reason is kept, nothing to fill in.
    again = tmp_path / "again.yaml"
    argv = ("--target", FAIL_TARGET, "--select", "smtp/receive/*", "--expect", str(baseline))
    assert run(tmp_path, *argv, "--write-expect", str(again)) == 0
    assert yaml.safe_load(again.read_text())["expectations"][0]["reason"] == "pipelined commands survive STARTTLS"


def test_write_expect_into_a_missing_directory_is_usage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tmp_path, "--select", FAIL_ID, "--write-expect", str(tmp_path / "no" / "such.yaml")) == 2
    assert "--write-expect" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def _result(verdict: Verdict, scenario_id: str, *, not_claimed: bool = False) -> ScenarioResult:
    return ScenarioResult(
        id=scenario_id, title="t", rfc=8461, section="1", level="MUST", role="sending-mta", requirements=(),
        verdict=verdict, duration_s=0.1, not_claimed=not_claimed,
    )  # fmt: skip


def test_the_written_file_lists_deviations_only(tmp_path: Path) -> None:
    results = [
        _result(Verdict.PASS, "a/pass"),
        _result(Verdict.NA, "a/not-claimed", not_claimed=True),  # a fact about the target file
        _result(Verdict.NA, "a/na"),
        _result(Verdict.ERROR, "a/error"),
        _result(Verdict.WARN, "a/warn"),
    ]
    data = yaml.safe_load(expectations_yaml("t", results, header="line one\n\nline three"))
    assert [(e["id"], e["verdict"]) for e in data["expectations"]] == [
        ("a/na", "N/A"),
        ("a/error", "ERROR"),
        ("a/warn", "WARN"),
    ]
    assert expectations_yaml("t", [], header="x").startswith("# x\ntarget: t\nexpectations: []\n")


@pytest.mark.parametrize("reason", ["TODO: say why", "todo later", "  TODO"])
def test_the_loader_refuses_todo_reasons(tmp_path: Path, reason: str) -> None:
    path = tmp_path / "expected.yaml"
    path.write_text(
        f"target: t\nexpectations:\n  - id: {FAIL_ID}\n    verdict: FAIL\n    reason: {json.dumps(reason)}\n",
        encoding="utf-8",
    )
    with pytest.raises(DataFileError, match=rf"{re.escape(str(path))}:5: expectations\[0\]\.reason: .*placeholder"):
        load_expectations(path, {FAIL_ID})
