"""results.json: its schema (package data) holds for real runs, and the loader names the file
and the JSON path of whatever is wrong."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from conformance.cli import main
from conformance.errors import DataFileError
from conformance.report.results import SCHEMA_VERSION, load_results, results_schema, validate_results

from .builders import sample_document


def _write(path: Path, document: Any) -> Path:
    path.write_text(json.dumps(document))
    return path


def test_the_schema_is_valid_draft_2020_12() -> None:
    schema = results_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)


def test_a_real_runs_results_validate(tmp_path: Path) -> None:
    report = tmp_path / "run"
    status = main(
        ["run", "-q", "--select", "smtp/send/uses-starttls", "--select", "smtp/receive/*", "--report", str(report)]
    )
    assert status == 0
    document = load_results(report / "results.json")
    assert document["schema_version"] == SCHEMA_VERSION
    assert {"run", "summary", "results", "requirements", "rfcs"} <= document.keys()
    sending = next(r for r in document["results"] if r["id"] == "smtp/send/uses-starttls")
    assert "MX 10 mx1.{domain}: STARTTLS offered, certificate valid" in sending["setup"]
    assert sending["expected_behaviour"] == ["delivered host=mx1.{domain} tls=true"]
    # The TLS state of the delivery is in the evidence: version and cipher.
    (delivered,) = sending["checks"]
    assert re.search(r"over TLSv1\.[23] \(TLS_\w+\)", delivered["detail"]), delivered["detail"]
    for line in (line for r in document["results"] for line in r["evidence"] if line.startswith("session ")):
        assert "tls=none" in line or "cipher=" in line, line
    rfcs = {r["rfc"] for r in document["results"]}
    assert {r["rfc"] for r in document["rfcs"]} == rfcs
    assert {r["rfc"] for r in document["requirements"]} == rfcs
    tested = {s for r in document["requirements"] for s in r["scenarios"]}
    assert tested == {r["id"] for r in document["results"]}


def test_the_writers_document_validates() -> None:
    validate_results(sample_document(), Path("results.json"))


@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        (lambda d: d["results"][1].update(verdict="MAYBE"), "$.results[1].verdict", "'MAYBE' is not one of"),
        (lambda d: d["results"][0].pop("setup"), "$.results[0]", "'setup' is a required property"),
        (lambda d: d["requirements"][2].update(observable="yes"), "$.requirements[2].observable", "not of type"),
        (lambda d: d.update(schema_version=2), "$.schema_version", "unknown schema_version 2"),
        (lambda d: d.pop("schema_version"), "$.schema_version", "missing"),
        (lambda d: d["summary"].update(PASS=-1), "$.summary.PASS", "less than the minimum"),
    ],
)
def test_a_malformed_document_names_file_and_path(tmp_path: Path, change: Any, field: str, problem: str) -> None:
    document = sample_document()
    change(document)
    path = _write(tmp_path / "results.json", document)
    with pytest.raises(DataFileError) as caught:
        load_results(path)
    assert caught.value.path == path and caught.value.field == field
    assert problem in caught.value.problem
    assert str(caught.value).startswith(f"{path}: {field}: ")


def test_not_json_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text('{\n  "schema_version": 1,\n  "run": {oops}\n}\n')
    with pytest.raises(DataFileError) as caught:
        load_results(path)
    assert caught.value.line == 3 and "not JSON" in str(caught.value)


def test_not_an_object_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match=r"a JSON object is expected"):
        load_results(_write(tmp_path / "list.json", [1, 2]))
    with pytest.raises(DataFileError, match=r"missing\.json: file: cannot read"):
        load_results(tmp_path / "missing.json")
