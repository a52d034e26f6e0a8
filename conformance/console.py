"""What ``mailtls run`` prints while it runs and when it is done.

On a terminal: a progress bar with the running count of each verdict, a line per scenario
above it, and a summary table (one row per RFC, a column per verdict) at the end, in colour
(rich). Anywhere else (CI logs, pipes, files): the same information as plain lines, one per
scenario as ``VERDICT id [0.12s]  (reason)``, and the same table as plain text, so logs stay
greppable and diffable. ``quiet`` drops the line per scenario and the table; ``verbose`` adds,
under each scenario that did not PASS, its reason and the checks that did not pass with the
evidence that decided them.

Text from a SUT (reasons, details, evidence) is shown as text: never as rich markup, and with
control characters escaped, so a hostile banner cannot restyle or rewrite the terminal.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Protocol, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from conformance.verdict import ScenarioResult, Verdict

STYLE = {
    Verdict.PASS: "green",
    Verdict.FAIL: "bold red",
    Verdict.WARN: "yellow",
    Verdict.NA: "cyan",
    Verdict.ERROR: "bold magenta",
}
_CONTROL = {c: f"\\x{c:02x}" for c in [*range(0x20), 0x7F] if c not in (0x09,)}


def printable(text: str) -> str:
    """Untrusted text with control characters (ESC, CR, ...) shown as ``\\xNN``."""
    return text.translate(_CONTROL)


def scenario_line(result: ScenarioResult) -> str:
    note = f"  ({printable(result.reason)})" if result.reason else ""
    return f"{result.verdict.value:5} {result.id} [{result.duration_s:.2f}s]{note}"


def detail_lines(result: ScenarioResult) -> list[str]:
    """``--verbose``: why a scenario did not PASS."""
    if result.verdict is Verdict.PASS:
        return []
    lines = [f"      reason: {printable(result.reason)}"] if result.reason else []
    for outcome in result.outcomes:
        if outcome.verdict is Verdict.PASS:
            continue
        lines.append(
            f"      [{outcome.verdict.value}] {outcome.requirement} ({outcome.check}): {printable(outcome.detail)}"
        )
        lines.extend(f"          {printable(line)}" for line in outcome.evidence)
    return lines


def summary_line(results: Sequence[ScenarioResult], duration_s: float) -> str:
    counts = Counter(r.verdict for r in results)
    summary = ", ".join(f"{counts[v]} {v.value}" for v in Verdict if counts[v])
    return f"{len(results)} scenarios in {duration_s:.2f}s: {summary or 'nothing run'}"


def summary_rows(results: Sequence[ScenarioResult]) -> list[tuple[str, Counter[Verdict]]]:
    """One row per RFC (ascending), then the total."""
    by_rfc: dict[int, Counter[Verdict]] = {}
    for result in results:
        by_rfc.setdefault(result.rfc, Counter())[result.verdict] += 1
    rows = [(str(rfc), by_rfc[rfc]) for rfc in sorted(by_rfc)]
    return [*rows, ("total", Counter(r.verdict for r in results))]


def summary_table_text(results: Sequence[ScenarioResult]) -> str:
    head = f"{'RFC':<6}" + "".join(f"{v.value:>7}" for v in Verdict) + f"{'total':>7}"
    lines = [head]
    for name, counts in summary_rows(results):
        lines.append(f"{name:<6}" + "".join(f"{counts[v]:>7}" for v in Verdict) + f"{counts.total():>7}")
    return "\n".join(lines)


class RunDisplay(Protocol):
    def start(self, total: int) -> None: ...
    def result(self, result: ScenarioResult) -> None: ...
    def stop(self) -> None: ...
    def summary(self, results: Sequence[ScenarioResult], duration_s: float) -> None: ...


class PlainDisplay:
    """CI logs and pipes: plain lines, flushed as they come."""

    def __init__(self, out: TextIO, *, quiet: bool = False, verbose: bool = False) -> None:
        self.out, self.quiet, self.verbose = out, quiet, verbose

    def _print(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def start(self, total: int) -> None:
        pass

    def result(self, result: ScenarioResult) -> None:
        if self.quiet:
            return
        self._print(scenario_line(result))
        if self.verbose:
            for line in detail_lines(result):
                self._print(line)

    def stop(self) -> None:
        pass

    def summary(self, results: Sequence[ScenarioResult], duration_s: float) -> None:
        if not self.quiet and results:
            self._print(summary_table_text(results))
        self._print(summary_line(results, duration_s))


class _CountsColumn(ProgressColumn):
    def __init__(self, counts: Counter[Verdict]) -> None:
        super().__init__()
        self.counts = counts

    def render(self, task: Task) -> Text:
        parts: list[tuple[str, str] | str] = []
        for verdict in Verdict:
            if parts:
                parts.append(" ")
            parts.append((f"{verdict.value} {self.counts[verdict]}", STYLE[verdict] if self.counts[verdict] else "dim"))
        return Text.assemble(*parts)


class RichDisplay:
    """A terminal: a live progress bar with the verdict counts, and a coloured table."""

    def __init__(self, console: Console, *, quiet: bool = False, verbose: bool = False) -> None:
        self.console, self.quiet, self.verbose = console, quiet, verbose
        self.counts: Counter[Verdict] = Counter()
        self.progress = Progress(
            BarColumn(),
            MofNCompleteColumn(),
            _CountsColumn(self.counts),
            TimeElapsedColumn(),
            console=console,
            transient=True,  # the bar is for watching; the table below is what stays
        )
        self.task = self.progress.add_task("scenarios", total=None)

    def start(self, total: int) -> None:
        self.progress.update(self.task, total=total)
        self.progress.start()

    def result(self, result: ScenarioResult) -> None:
        self.counts[result.verdict] += 1
        self.progress.advance(self.task)
        if self.quiet:
            return
        verdict = Text(f"{result.verdict.value:5}", style=STYLE[result.verdict])
        line = Text.assemble(verdict, f" {result.id} ", (f"[{result.duration_s:.2f}s]", "dim"))
        if result.reason:
            line.append(f"  ({printable(result.reason)})")
        self.console.print(line, highlight=False)
        if self.verbose:
            for detail in detail_lines(result):
                self.console.print(Text(detail), highlight=False)

    def stop(self) -> None:
        self.progress.stop()

    def summary(self, results: Sequence[ScenarioResult], duration_s: float) -> None:
        if not self.quiet and results:
            table = Table(title="verdicts per RFC", title_justify="left")
            table.add_column("RFC")
            for verdict in Verdict:
                table.add_column(verdict.value, justify="right", style=STYLE[verdict])
            table.add_column("total", justify="right")
            rows = summary_rows(results)
            for index, (name, counts) in enumerate(rows):
                table.add_row(
                    name,
                    *(str(counts[v]) if counts[v] else "·" for v in Verdict),
                    str(counts.total()),
                    end_section=index == len(rows) - 2,
                )
            self.console.print(table)
        self.console.print(Text(summary_line(results, duration_s)), highlight=False)


def make_display(out: TextIO, *, quiet: bool = False, verbose: bool = False) -> RunDisplay:
    """The rich display on a terminal, plain lines anywhere else."""
    console = Console(file=out)
    # isatty() too: rich treats FORCE_COLOR as a terminal, and a live bar in a CI log is noise.
    if console.is_terminal and not console.is_dumb_terminal and out.isatty():
        return RichDisplay(console, quiet=quiet, verbose=verbose)
    return PlainDisplay(out, quiet=quiet, verbose=verbose)
