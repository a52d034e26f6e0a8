"""``mailtls run``: run scenarios against a target, show progress, and write the report.

The subcommand's parser (``add_parser``) and its command (``run``): check the options, select
the scenarios, start the world and the target, run the scenarios with a progress display, then
write results.json, junit.xml and report.html, print the summary per RFC, and optionally write
an expected-results file (``--write-expect``) or judge the run against one (``--expect``).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
import time
from pathlib import Path
from typing import Any

from conformance.catalog.loader import CatalogEntry
from conformance.catalog.requirements import Inventory
from conformance.cli_common import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, command, load, network
from conformance.console import make_display
from conformance.errors import UsageError
from conformance.expectations import PLACEHOLDER_REASON, Expectations, expectations_yaml, load_expectations
from conformance.report.writers import RunInfo, write_report
from conformance.runner import run_all
from conformance.selection import Selection, add_selection_arguments
from conformance.targets.registry import resolve_target
from conformance.verdict import ScenarioResult, Verdict
from conformance.world.world import Ports, World

_EXIT_RUN = """exit status: 0 nothing failed; 1 a scenario gave FAIL or ERROR (with --strict also WARN;
with --expect: any verdict other than the file's, in either direction); 2 bad usage or a
malformed scenario, target or expected-results file; 130 interrupted (the report is written)."""


def add_parser(sub: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    """Register ``mailtls run`` on the main parser's subcommands."""
    p_run = command(
        sub,
        "run",
        "run scenarios against a target and write the report",
        "Run scenarios against a target (the reference implementation, a mutant, or an external SUT "
        "described by a TOML file) and write DIR/results.json, DIR/junit.xml and DIR/report.html.\n"
        "On a terminal it shows a progress bar with the verdict counts; elsewhere (CI logs, pipes) one "
        "plain line per scenario. Both end with a table of verdicts per RFC.\n\n" + _EXIT_RUN,
        "mailtls run                                        # the whole catalog against the reference",
        "mailtls run --target mutant:requiretls-param-dropped --select 'requiretls/*'",
        "mailtls run --target my-mta.toml --privileged --rfc 8461 --level must --report out",
        "mailtls run --target my-mta.toml --expect expected.yaml      # CI: fail only on a change",
        "mailtls run --target my-mta.toml --write-expect expected.yaml  # start a baseline",
        "mailtls run --strict -j 4 --exclude 'xmpp/*' -v",
    )
    p_run.add_argument(
        "--target",
        default="reference",
        help="reference (default), mutant:NAME (see `mailtls targets`), or the path of a target TOML file",
    )
    add_selection_arguments(p_run)
    p_run.add_argument(
        "--report",
        type=Path,
        default=Path("reports"),
        metavar="DIR",
        help="where results.json, junit.xml and report.html go (default: reports)",
    )
    p_run.add_argument("-j", "--jobs", type=int, default=1, metavar="N", help="scenarios run at once")
    p_run.add_argument(
        "--privileged",
        action="store_true",
        help="serve DNS/HTTPS/SMTP on ports 53/443/25 (for external SUTs; needs root)",
    )
    loudness = p_run.add_mutually_exclusive_group()
    loudness.add_argument(
        "-q", "--quiet", action="store_true", help="no line per scenario and no table: only the summary line"
    )
    loudness.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="under each scenario that did not PASS: its reason, and each check that did not pass with its evidence",
    )
    p_run.add_argument(
        "--network",
        type=network,
        metavar="CIDR",
        help="bind the world to these addresses (configured on this machine) instead of a "
        "loopback /16, e.g. for a SUT on another host",
    )
    p_run.add_argument(
        "--strict",
        action="store_true",
        help="a WARN (a SHOULD not followed) fails the run too: exit 1, and a <failure> in junit.xml "
        "(no effect with --expect, where a WARN not in the file already fails)",
    )
    p_run.add_argument(
        "--expect",
        type=Path,
        metavar="FILE",
        help="expected-results file: fail only where a verdict differs from it, in either direction",
    )
    p_run.add_argument(
        "--write-expect",
        type=Path,
        metavar="FILE",
        help=f"write an expected-results file from this run's verdicts other than PASS, each with the reason "
        f"{PLACEHOLDER_REASON!r} to replace (--expect refuses the file until every reason is real)",
    )
    p_run.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="S",
        help="cap every scenario's deadline at S seconds (default: each scenario's own)",
    )


async def _run(
    args: argparse.Namespace,
    inventory: Inventory,
    entries: list[CatalogEntry],
    expectations: Expectations | None,
    selection: Selection,
    in_catalog: dict[str, int],  # requirement id -> scenarios of the whole catalog that test it
) -> int:
    target = resolve_target(args.target)
    ports = Ports.privileged() if args.privileged else Ports.unprivileged()
    started_wall = dt.datetime.now(dt.UTC).replace(microsecond=0)
    started = time.monotonic()
    decided: list[ScenarioResult] = []
    display = make_display(sys.stdout, quiet=args.quiet, verbose=args.verbose)

    def collect(result: ScenarioResult) -> None:
        decided.append(result)
        display.result(result)

    interrupted = False
    world = World(ports=ports, network=args.network)
    display.start(len(entries))
    try:
        try:
            await world.start()
            world_text = f"{world.info.network} dns={world.info.resolver[0]}:{world.info.resolver[1]}"
            await target.start(world)
            try:
                await run_all(
                    entries, world, target, inventory, jobs=args.jobs, on_result=collect, timeout_cap_s=args.timeout
                )
            except asyncio.CancelledError:
                interrupted = True
            finally:
                await target.stop()
        finally:
            await world.stop()
    finally:
        display.stop()
    order = {e.id: i for i, e in enumerate(entries)}
    results = sorted(decided, key=lambda r: order[r.id])
    if expectations is not None:
        results = [expectations.annotate(r) for r in results]
    run = RunInfo(
        target=args.target if not args.target.endswith(".toml") else target.name,
        target_description=target.description,
        target_version=target.version,
        started_at=started_wall.isoformat().replace("+00:00", "Z"),
        duration_s=round(time.monotonic() - started, 3),
        jobs=args.jobs,
        selection=selection.describe(),
        interrupted=interrupted,
        world=world_text,
        strict=args.strict,
    )
    paths = write_report(args.report, run, results, inventory, in_catalog)
    display.summary(results, run.duration_s)
    print("report: " + ", ".join(str(p) for p in paths))
    if args.write_expect is not None:
        _write_expect(args.write_expect, run, results, selection)
    if interrupted:
        return EXIT_INTERRUPTED
    if expectations is not None:
        surprises = [r for r in results if r.unexpected]
        for r in surprises:
            assert r.expected is not None
            print(f"UNEXPECTED {r.id}: expected {r.expected.value}, got {r.verdict.value}")
        print(f"{len(surprises)} unexpected verdicts against {expectations.path}")
        return EXIT_FAILED if surprises else EXIT_OK
    failed = [r for r in results if r.verdict.bad or (args.strict and r.verdict is Verdict.WARN)]
    return EXIT_FAILED if failed else EXIT_OK


def _write_expect(path: Path, run: RunInfo, results: list[ScenarioResult], selection: Selection) -> None:
    if run.interrupted:
        print(f"mailtls: {path} not written: the run was interrupted, its verdicts are incomplete", file=sys.stderr)
        return
    header = (
        f"Expected results for {run.target}, written by `mailtls run --write-expect` from the run of\n"
        f"{run.started_at} ({selection}).\n"
        f"Replace every {PLACEHOLDER_REASON!r} with why the target gives that verdict:\n"
        "`mailtls run --expect` refuses this file until each reason is real."
    )
    text = expectations_yaml(run.target, results, header=header)
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--write-expect {path}: cannot write: {exc.strerror or exc}") from exc
    listed = text.count(f"reason: '{PLACEHOLDER_REASON}'")
    print(f"expected results: {path} ({listed} reason(s) to fill in)")


def run(args: argparse.Namespace) -> int:
    if args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    if args.timeout is not None and args.timeout <= 0:
        raise UsageError("--timeout must be positive")
    if args.write_expect is not None and not args.write_expect.parent.is_dir():
        raise UsageError(f"--write-expect {args.write_expect}: no directory {args.write_expect.parent}")
    inventory, catalog = load(args)
    selection = Selection.from_args(args)
    entries = selection.apply(catalog)
    if not entries:
        raise UsageError(
            f"no scenario matches {selection}; check the selection with `mailtls list` and the same options"
        )
    resolve_target(args.target)  # bad target: exit 2 before anything starts
    expectations = load_expectations(args.expect, {e.id for e in catalog.entries}) if args.expect else None
    try:
        in_catalog = {req: len(ids) for req, ids in catalog.scenarios_by_requirement().items()}
        return asyncio.run(_run(args, inventory, entries, expectations, selection, in_catalog))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
