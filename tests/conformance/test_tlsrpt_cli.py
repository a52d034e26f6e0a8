"""`mailtls tlsrpt check-record / validate`: rules named with RFC 8460 sections, exit 0/1/2."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from conformance.cli import main

APPENDIX_B = Path(__file__).resolve().parents[2] / "fixtures" / "tlsrpt" / "appendix-b.json"


def test_check_record_ok_and_broken(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tlsrpt", "check-record", "v=TLSRPTv1; rua=mailto:tlsrpt@example.com"]) == 0
    assert main(["tlsrpt", "check-record", "v=TLSRPTv1;"]) == 1
    out = capsys.readouterr().out
    assert "record-rua-missing" in out and "section 3" in out


def test_validate_appendix_b_has_warnings_but_no_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tlsrpt", "validate", str(APPENDIX_B)]) == 0
    out = capsys.readouterr().out
    assert "mx-host-string" in out  # Appendix B's string form: flagged, not failed


def test_validate_names_rule_and_pointer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = json.loads(APPENDIX_B.read_text())
    report["policies"][0]["summary"]["total-failure-session-count"] = "many"
    broken = tmp_path / "sender.example!example.com!1!2.json.gz"
    broken.write_bytes(gzip.compress(json.dumps(report).encode()))
    assert main(["tlsrpt", "validate", "--json", str(broken)]) == 1
    result = json.loads(capsys.readouterr().out)
    rules = {f["rule"] for f in result["files"][0]["findings"] if f["severity"] == "error"}
    assert "report-schema" in rules
    assert any("/policies/0/summary" in (f["where"] or "") for f in result["files"][0]["findings"])


def test_validate_unreadable_file_is_usage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tlsrpt", "validate", str(tmp_path / "missing.json")]) == 2
    assert "missing.json" in capsys.readouterr().err


def test_validate_gzip_bomb_is_refused_not_exhausting_memory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bomb = tmp_path / "bomb.json.gz"
    with gzip.open(bomb, "wb", compresslevel=9) as out:
        block = b"\0" * (1 << 20)
        for _ in range(256):  # 256 MiB of zeros, about 256 KiB compressed
            out.write(block)
    assert main(["tlsrpt", "validate", str(bomb)]) == 1
    assert "report-too-large" in capsys.readouterr().out
