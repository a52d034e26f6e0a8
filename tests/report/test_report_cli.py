"""``mailtls report``: one results file gives the run's report, several give a comparison;
a missing or malformed file is a usage error (exit 2) naming the file."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from conformance.cli import main
from conformance.report.writers import write_report
from conformance.verdict import Verdict

from .builders import RUN, inventory, sample_document, sample_results


def _results(tmp_path: Path, name: str, target: str = "reference", flip: bool = False) -> Path:
    results = sample_results()
    if flip:
        results = [dataclasses.replace(r, verdict=Verdict.PASS) if r.id == "x/fail" else r for r in results]
    write_report(tmp_path / name, dataclasses.replace(RUN, target=target), results, inventory())
    return tmp_path / name / "results.json"


def test_one_file_renders_the_runs_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = _results(tmp_path, "run")
    out = tmp_path / "out" / "page.html"
    assert main(["report", str(results), "-o", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"report: {out}"
    assert out.read_bytes() == (results.parent / "report.html").read_bytes()


def test_two_files_render_a_matrix(tmp_path: Path) -> None:
    first = _results(tmp_path, "a")
    second = _results(tmp_path, "b", target="mutant:broken", flip=True)
    out = tmp_path / "compare.html"
    assert main(["report", str(first), str(second), "-o", str(out)]) == 0
    html = out.read_text()
    assert "2 runs compared" in html
    assert html.index("#1 reference") < html.index("#2 mutant:broken")
    assert 'id="row-x-fail"' in html and 'data-verdict="FAIL|PASS"' in html and 'data-differs="true"' in html
    assert 'id="filter-differ"' in html
    # Rendering again gives the same bytes.
    again = tmp_path / "again.html"
    assert main(["report", str(first), str(second), "-o", str(again)]) == 0
    assert again.read_bytes() == out.read_bytes()


def test_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.json"
    assert main(["report", str(missing), "-o", str(tmp_path / "x.html")]) == 2
    err = capsys.readouterr().err
    assert f"{missing}: file: cannot read" in err
    assert not (tmp_path / "x.html").exists()


def test_malformed_file_exits_2_naming_file_and_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = _results(tmp_path, "a")
    document = sample_document()
    document["results"][2]["checks"] = "none"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(document))
    assert main(["report", str(good), str(bad), "-o", str(tmp_path / "x.html")]) == 2
    assert f"{bad}: $.results[2].checks: 'none' is not of type 'array'" in capsys.readouterr().err
    bad.write_text("not json")
    assert main(["report", str(bad)]) == 2
    assert f"{bad}:1: $: not JSON" in capsys.readouterr().err


def test_output_folder_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(_results(tmp_path, "a")), "-o", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err


def test_help_shows_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["report", "--help"])
    assert caught.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and "mailtls report reports/results.json reports/mutant/results.json" in out
