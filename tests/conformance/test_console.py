"""What ``mailtls run`` prints: plain lines off a terminal, rich progress on one; -q and -v; noise."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest
from rich.console import Console

from conformance.cli import _EofReceivedNoise, main
from conformance.console import PlainDisplay, RichDisplay, make_display, printable, summary_table_text
from conformance.verdict import CheckOutcome, ScenarioResult, Verdict


def result(verdict: Verdict, scenario_id: str, rfc: int = 8461, reason: str = "") -> ScenarioResult:
    detail = "policy fetched over [bold]HTTP[/bold]"
    return ScenarioResult(
        id=scenario_id, title="t", rfc=rfc, section="3.3", level="MUST", role="sending-mta", requirements=("r",),
        verdict=verdict, duration_s=0.25, reason=reason,
        outcomes=(CheckOutcome("fact", "rfc8461-3.3-x", "MUST", verdict, detail, ("S: 220 \x1b[2J banner",)),),
    )  # fmt: skip


RESULTS = [
    result(Verdict.PASS, "a/pass"),
    result(Verdict.FAIL, "a/fail", reason="the SUT delivered \x1b]0;owned\x07"),
    result(Verdict.WARN, "b/warn", rfc=8460),
    result(Verdict.NA, "b/na", rfc=8460, reason="role not played"),
]


def plain(quiet: bool = False, verbose: bool = False) -> str:
    out = io.StringIO()
    display = PlainDisplay(out, quiet=quiet, verbose=verbose)
    display.start(len(RESULTS))
    for r in RESULTS:
        display.result(r)
    display.stop()
    display.summary(RESULTS, 1.5)
    return out.getvalue()


def test_plain_lines_table_and_summary() -> None:
    lines = plain().splitlines()
    assert lines[:4] == [
        "PASS  a/pass [0.25s]",
        "FAIL  a/fail [0.25s]  (the SUT delivered \\x1b]0;owned\\x07)",
        "WARN  b/warn [0.25s]",
        "N/A   b/na [0.25s]  (role not played)",
    ]
    assert lines[4:] == [
        "RFC      PASS   FAIL   WARN    N/A  ERROR  total",
        "8460        0      0      1      1      0      2",
        "8461        1      1      0      0      0      2",
        "total       1      1      1      1      0      4",
        "4 scenarios in 1.50s: 1 PASS, 1 FAIL, 1 WARN, 1 N/A",
    ]


def test_quiet_keeps_only_the_summary_line() -> None:
    assert plain(quiet=True) == "4 scenarios in 1.50s: 1 PASS, 1 FAIL, 1 WARN, 1 N/A\n"


def test_verbose_adds_reason_checks_and_evidence_of_non_pass() -> None:
    out = plain(verbose=True)
    assert "      reason: the SUT delivered \\x1b]0;owned\\x07" in out
    assert "      [FAIL] rfc8461-3.3-x (fact): policy fetched over [bold]HTTP[/bold]" in out
    assert "          S: 220 \\x1b[2J banner" in out
    assert "[PASS]" not in out  # a PASSing scenario gets no details
    assert "\x1b" not in out


def test_rich_display_on_a_terminal() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, color_system=None, width=120)
    display = RichDisplay(console, verbose=True)
    display.start(len(RESULTS))
    for r in RESULTS:
        display.result(r)
    display.stop()
    display.summary(RESULTS, 1.5)
    text = out.getvalue()
    assert "FAIL  a/fail [0.25s]" in text
    assert "4/4" in text and "PASS 1 FAIL 1 WARN 1 N/A 1 ERROR 0" in text  # the bar's counts
    assert "verdicts per RFC" in text and "│ 8460" in text and "│ total" in text
    # SUT text stays text: no markup interpreted, no control character passed through
    assert "[bold]HTTP[/bold]" in text
    assert "\x1b]0;owned" not in text and "\\x1b]0;owned\\x07" in text
    assert text.rstrip().endswith("4 scenarios in 1.50s: 1 PASS, 1 FAIL, 1 WARN, 1 N/A")


def test_the_display_follows_the_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    assert isinstance(make_display(io.StringIO()), PlainDisplay)

    class FakeTty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert isinstance(make_display(FakeTty()), RichDisplay)


def test_printable_escapes_control_characters_only() -> None:
    assert printable("a\tb \x00\x1b[31m\x7fé") == "a\tb \\x00\\x1b[31m\\x7fé"


def test_an_empty_run_has_no_table() -> None:
    out = io.StringIO()
    PlainDisplay(out).summary([], 0.0)
    assert out.getvalue() == "0 scenarios in 0.00s: nothing run\n"
    assert summary_table_text([]).splitlines()[-1].split() == ["total", "0", "0", "0", "0", "0", "0"]


def test_cli_run_prints_plain_lines_and_table_in_a_pipe(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--select", "smtp/receive/starttls-offered", "--report", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("PASS  smtp/receive/starttls-offered [")
    assert lines[1].split() == ["RFC", "PASS", "FAIL", "WARN", "N/A", "ERROR", "total"]
    assert lines[-2].startswith("1 scenarios in ") and lines[-2].endswith(": 1 PASS")
    assert lines[-1].startswith("report: ")


def test_only_the_eof_received_message_is_filtered() -> None:
    main(["targets"])  # installs the filter
    logger = logging.getLogger("asyncio")
    assert sum(isinstance(f, _EofReceivedNoise) for f in logger.filters) == 1
    main(["targets"])  # not twice
    assert sum(isinstance(f, _EofReceivedNoise) for f in logger.filters) == 1

    def record(message: str) -> logging.LogRecord:
        return logger.makeRecord("asyncio", logging.WARNING, __file__, 1, message, (), None)

    assert not logger.filter(record("returning true from eof_received() has no effect when using ssl"))
    assert logger.filter(record("Task exception was never retrieved"))
