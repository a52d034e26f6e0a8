"""``mailtls compare``: regressions, fixes, other changes, new and removed scenarios; bad files."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conformance.cli import main
from conformance.compare import compare, read_results
from conformance.errors import DataFileError
from conformance.verdict import Verdict
from tests.report.builders import result, sample_document


def document(verdicts: dict[str, str]) -> dict[str, Any]:
    """A schema-valid results document (the real writer's) with these ids and verdicts."""
    return sample_document(results=[result(i, Verdict(v)) for i, v in verdicts.items()])


def results_file(path: Path, verdicts: dict[str, str]) -> Path:
    path.write_text(json.dumps(document(verdicts)), encoding="utf-8")
    return path


OLD = {
    "a/pass-fail": "PASS",
    "a/na-fail": "N/A",
    "a/warn-fail": "WARN",
    "a/pass-warn": "PASS",
    "a/fail-pass": "FAIL",
    "a/error-warn": "ERROR",
    "a/pass-na": "PASS",
    "a/fail-error": "FAIL",
    "a/same": "WARN",
    "a/gone": "PASS",
}
NEW = {
    "a/pass-fail": "FAIL",
    "a/na-fail": "FAIL",
    "a/warn-fail": "FAIL",
    "a/pass-warn": "WARN",
    "a/fail-pass": "PASS",
    "a/error-warn": "WARN",
    "a/pass-na": "N/A",
    "a/fail-error": "ERROR",
    "a/same": "WARN",
    "a/added": "FAIL",
}


def test_the_buckets(tmp_path: Path) -> None:
    old = read_results(results_file(tmp_path / "old.json", OLD))
    new = read_results(results_file(tmp_path / "new.json", NEW))
    assert (old.target, old.started_at) == ("reference", "2026-11-29T00:00:00Z")
    comparison = compare(old, new)
    assert [c.id for c in comparison.regressions] == ["a/pass-fail", "a/na-fail", "a/warn-fail", "a/pass-warn"]
    assert [c.id for c in comparison.fixes] == ["a/fail-pass", "a/error-warn"]
    assert [(c.id, c.old, c.new) for c in comparison.changed] == [
        ("a/pass-na", Verdict.PASS, Verdict.NA),
        ("a/fail-error", Verdict.FAIL, Verdict.ERROR),
    ]
    assert [(c.id, c.new) for c in comparison.added] == [("a/added", Verdict.FAIL)]
    assert [(c.id, c.old) for c in comparison.removed] == [("a/gone", Verdict.PASS)]
    assert comparison.unchanged == 1


def test_cli_text_and_exit_1_on_a_regression(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old, new = results_file(tmp_path / "old.json", OLD), results_file(tmp_path / "new.json", NEW)
    assert main(["compare", str(old), str(new)]) == 1
    out = capsys.readouterr().out
    assert f"old: {old} (reference, 2026-11-29T00:00:00Z)" in out
    assert "regressions (4):" in out and "fixes (2):" in out and "other changes (2):" in out
    assert "new scenarios (1):" in out and "removed scenarios (1):" in out
    assert "a/pass-fail" in out and "PASS -> FAIL" in out
    assert out.rstrip().endswith("4 regression(s), 2 fix(es), 2 other change(s), 1 new, 1 removed, 1 unchanged")


def test_cli_json_and_exit_0_without_regression(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = results_file(tmp_path / "old.json", {"a/x": "FAIL", "a/y": "PASS"})
    new = results_file(tmp_path / "new.json", {"a/x": "PASS", "a/y": "N/A", "a/z": "FAIL"})
    assert main(["compare", "--json", str(old), str(new)]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["regressions"] == []
    assert document["fixes"] == [{"id": "a/x", "old": "FAIL", "new": "PASS"}]
    assert document["changed"] == [{"id": "a/y", "old": "PASS", "new": "N/A"}]
    assert document["new_scenarios"] == [{"id": "a/z", "old": None, "new": "FAIL"}]
    assert document["removed_scenarios"] == [] and document["unchanged"] == 0


def test_a_real_results_file_compares_with_itself(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "-q", "--select", "smtp/receive/starttls-offered", "--report", str(tmp_path)]) == 0
    capsys.readouterr()
    results = str(tmp_path / "results.json")
    assert main(["compare", results, results]) == 0
    assert "0 regression(s)" in capsys.readouterr().out


def _row(d: dict[str, Any], **fields: Any) -> None:
    d["results"][0].update(fields)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "$: not JSON: Expecting property name"),
        ("[1, 2]", "$: not a results document"),
        (lambda d: d.pop("schema_version"), "$.schema_version: missing"),
        (lambda d: d.update(schema_version=2), "$.schema_version: unknown schema_version 2"),
        (lambda d: d.pop("results"), "$: 'results' is a required property"),
        (lambda d: d["results"][0].pop("id"), "$.results[0]: 'id' is a required property"),
        (lambda d: _row(d, verdict="MAYBE"), "$.results[0].verdict: 'MAYBE' is not one of"),
        (lambda d: _row(d, verdict=["PASS"]), "$.results[0].verdict: ['PASS'] is not one of"),
        (lambda d: d["results"].append(dict(d["results"][0])), "$.results[1].id: 'a/b' appears twice"),
    ],
)
def test_a_malformed_file_is_exit_2_naming_file_and_problem(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: str | Callable[[dict[str, Any]], object],
    message: str,
) -> None:
    good = results_file(tmp_path / "good.json", {"a/b": "PASS"})
    bad = tmp_path / "bad.json"
    if isinstance(content, str):
        bad.write_text(content, encoding="utf-8")
    else:
        broken = document({"a/b": "PASS"})
        content(broken)
        bad.write_text(json.dumps(broken), encoding="utf-8")
    assert main(["compare", str(good), str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and message in err


def test_a_missing_file_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = results_file(tmp_path / "good.json", {"a/b": "PASS"})
    assert main(["compare", str(tmp_path / "nowhere.json"), str(good)]) == 2
    assert f"{tmp_path / 'nowhere.json'}: file: cannot read" in capsys.readouterr().err


def test_json_errors_carry_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{\n  "schema_version": 1,\n  "results": [{"id": "a" "verdict": "PASS"}]\n}\n', encoding="utf-8")
    with pytest.raises(DataFileError) as caught:
        read_results(bad)
    assert caught.value.line == 3
