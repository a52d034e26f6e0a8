"""External SUTs through target files (with lifecycle commands), and expected-results files."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from conformance.cli import main

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_the_reference_as_an_external_process(tmp_path: Path) -> None:
    """The path a real MTA takes: lifecycle start/stop, submission endpoint, world DNS and CA."""
    port = free_port()
    scripts = REPO / "interop" / "reference"
    target = tmp_path / "target.toml"
    target.write_text(
        f"""name = "reference-external"
roles = ["sending-mta"]
[sending]
submission = "127.0.0.1:{port}"
report_command = ["{{python}}", "{scripts / "report.py"}"]
report_wait_s = 10
[lifecycle]
start = ["{{python}}", "{scripts / "start.py"}", "127.0.0.1:{port}"]
stop = ["{{python}}", "{scripts / "stop.py"}"]
""",
        encoding="utf-8",
    )
    # TLSRPT through the report command (SIGUSR1 to the standalone MTA): a report about the
    # scenario's failure reaches the world's collector.
    selected = ["--select", "smtp/send/*", "--select", "tlsrpt/generator/result/certificate-expired"]
    status = main(["run", "-q", "--target", str(target), *selected, "--report", str(tmp_path / "r")])
    document = json.loads((tmp_path / "r" / "results.json").read_text())
    verdicts = {r["id"]: r["verdict"] for r in document["results"]}
    assert status == 0, verdicts
    assert verdicts["smtp/send/prefers-lowest-mx"] == "PASS"
    assert verdicts["tlsrpt/generator/result/certificate-expired"] == "PASS"
    # Scenarios that need the SUT's own TLS records are N/A for a target that does not claim them.
    assert verdicts["smtp/send/starttls-stripped-recorded"] == "N/A"
    with socket.socket() as sock:  # the stop command stopped the process: nothing listens there now
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT of closed sessions is fine
        sock.bind(("127.0.0.1", port))


def test_a_failing_lifecycle_start_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "target.toml"
    target.write_text(
        'name = "broken"\nroles = ["sending-mta"]\n[sending]\nsubmission = "127.0.0.1:9"\n'
        '[lifecycle]\nstart = ["{python}", "-c", "import sys; print(\'no config\'); sys.exit(3)"]\n',
        encoding="utf-8",
    )
    assert main(["run", "--target", str(target), "--report", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "lifecycle start command exited 3" in err and "no config" in err
    assert not (tmp_path / "r").exists()


def expect_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "expected.yaml"
    path.write_text("target: test\nexpectations:\n" + body, encoding="utf-8")
    return path


INJECTION = "smtp/receive/starttls-injection-discarded"


def run_mutant(tmp_path: Path, expected: Path) -> int:
    return main(
        [
            "run",
            "-q",
            "--target",
            "mutant:keeps-pipelined-plaintext",
            "--select",
            "smtp/receive/*",
            "--expect",
            str(expected),
            "--report",
            str(tmp_path / "r"),
        ]
    )


def test_a_known_deviation_does_not_fail_the_run(tmp_path: Path) -> None:
    expected = expect_file(tmp_path, f'  - {{id: {INJECTION}, verdict: FAIL, reason: "known CVE-2011-0411 bug"}}\n')
    assert run_mutant(tmp_path, expected) == 0
    document = json.loads((tmp_path / "r" / "results.json").read_text())
    row = next(r for r in document["results"] if r["id"] == INJECTION)
    assert row["verdict"] == "FAIL" and row["expected"] == "FAIL" and row["unexpected"] is False
    assert document["summary"]["unexpected"] == 0


def test_an_unlisted_failure_fails_the_run(tmp_path: Path) -> None:
    expected = expect_file(tmp_path, '  - {id: smtp/receive/tls10-refused, verdict: FAIL, reason: "stale entry"}\n')
    # Two surprises: the injection FAIL is not listed, and the listed FAIL now PASSes.
    assert run_mutant(tmp_path, expected) == 1
    document = json.loads((tmp_path / "r" / "results.json").read_text())
    assert document["summary"]["unexpected"] == 2


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        ('  - {id: no/such/scenario, verdict: FAIL, reason: "whatever"}\n', 3, "no scenario"),
        (f'  - {{id: {INJECTION}, verdict: PASS, reason: "pointless"}}\n', 3, "list only deviations"),
        (f'  - {{id: {INJECTION}, verdict: BROKEN, reason: "whatever"}}\n', 3, "verdict"),
    ],
)
def test_a_malformed_expectations_file_names_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str, line: int, message: str
) -> None:
    expected = expect_file(tmp_path, body)
    assert run_mutant(tmp_path, expected) == 2
    err = capsys.readouterr().err
    assert f"{expected}:{line}:" in err and message in err


def test_not_claimed_na_need_not_be_listed(tmp_path: Path) -> None:
    """N/A because the target file does not play a role is a fact about the target, not a deviation."""
    port = free_port()
    target = tmp_path / "target.toml"
    target.write_text(
        f'name = "t"\nroles = ["sending-mta"]\n[sending]\nsubmission = "127.0.0.1:{port}"\n', encoding="utf-8"
    )
    expected = tmp_path / "expected.yaml"
    expected.write_text("target: t\nexpectations: []\n", encoding="utf-8")
    status = main(
        [
            "run",
            "-q",
            "--target",
            str(target),
            "--select",
            "smtp/receive/*",
            "--expect",
            str(expected),
            "--report",
            str(tmp_path / "r"),
        ]
    )
    document = json.loads((tmp_path / "r" / "results.json").read_text())
    assert {r["verdict"] for r in document["results"]} == {"N/A"}
    assert status == 0
