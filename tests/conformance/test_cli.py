"""The command line contract: outputs, exit statuses, and clear errors for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conformance.cli import main


def test_list_json_has_the_contract_fields(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) >= 12
    for row in rows:
        assert {"id", "title", "rfc", "section", "level", "role", "mutants"} <= row.keys()
        assert row["mutants"]


def test_requirements_shows_every_rfc(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["requirements", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {8461, 8460, 8689, 8314, 7817, 7590} <= {r["rfc"] for r in rows}
    for row in rows:
        assert row["covered"] <= row["observable"] <= row["requirements"]


def test_targets_lists_reference_and_mutants(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["targets"]) == 0
    out = capsys.readouterr().out
    assert "reference" in out and "mutant:keeps-pipelined-plaintext" in out


def test_run_writes_the_three_files(tmp_path: Path) -> None:
    report = tmp_path / "out"
    status = main(["run", "-q", "--select", "smtp/receive/*", "--report", str(report)])
    assert status == 0
    document = json.loads((report / "results.json").read_text())
    assert document["run"]["target"] == "reference"
    assert document["run"]["suite_version"]
    assert document["summary"]["PASS"] == document["summary"]["total"] > 0
    for result in document["results"]:
        assert {"id", "rfc", "section", "level", "role", "verdict", "duration_s", "evidence"} <= result.keys()
    assert (report / "junit.xml").read_bytes().startswith(b"<?xml")
    assert b"smtp/receive/starttls-offered" in (report / "report.html").read_bytes()


def test_run_against_a_mutant_exits_1(tmp_path: Path) -> None:
    status = main(
        [
            "run",
            "-q",
            "--target",
            "mutant:keeps-pipelined-plaintext",
            "--select",
            "smtp/receive/starttls-injection-discarded",
            "--report",
            str(tmp_path),
        ]
    )
    assert status == 1
    document = json.loads((tmp_path / "results.json").read_text())
    assert [r["verdict"] for r in document["results"]] == ["FAIL"]


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "--target", "mutant:no-such-thing"],
        ["run", "--target", "nowhere.toml"],
        ["run", "--select", "no/such/*"],
        ["run", "-j", "0"],
        ["frobnicate"],
    ],
)
def test_bad_usage_exits_2_and_writes_nothing(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "report"
    assert main([*argv, "--report", str(report)] if argv[0] == "run" else argv) == 2
    assert "mailtls: error:" in capsys.readouterr().err
    assert not report.exists()


def test_a_malformed_scenario_names_file_line_and_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    (catalog / "bad.yaml").write_text(
        'scenarios:\n  - id: x/y\n    title: "A broken one"\n'
        "    requirements: [rfc3207-6-server-opportunistic-option]\n"
        "    role: receiving-mta\n    stimulus: {kind: probe, probe: ehlo}\n    expect: []\n    mutants: [x]\n",
        encoding="utf-8",
    )
    assert main(["--catalog", str(catalog), "run", "--report", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert f"{catalog / 'bad.yaml'}:7: scenarios[0].expect:" in err
    assert not (tmp_path / "r").exists()


def test_a_malformed_target_file_names_its_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "sut.toml"
    path.write_text('name = "x"\nroles = ["sending-mta"]\n[sending]\nsubmission = "no-port"\n', encoding="utf-8")
    assert main(["run", "--target", str(path), "--report", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert f"{path}:4: sending.submission:" in err


def test_run_on_a_given_network(tmp_path: Path) -> None:
    """--network binds the world to the user's addresses (a loopback /24 here)."""
    status = main(
        [
            "run",
            "-q",
            "--network",
            "127.77.6.0/24",
            "--select",
            "smtp/send/prefers-lowest-mx",
            "--report",
            str(tmp_path),
        ]
    )
    assert status == 0
    document = json.loads((tmp_path / "results.json").read_text())
    assert document["run"]["world"].startswith("127.77.6.0/24 dns=127.77.6.1:")


def test_a_network_too_small_is_usage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--network", "127.77.7.0/30", "--report", str(tmp_path / "r")]) == 2
    assert "at least 8 usable addresses" in capsys.readouterr().err
