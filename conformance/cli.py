"""``mailtls``: list the catalog, run it against a target, show coverage, start the world.

Exit status: 0 nothing failed; 1 a scenario FAILed or ERRORed; 2 bad usage or bad input
(the message names the file, line and field); 130 interrupted (what was decided is written).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import ipaddress
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from conformance import __version__, mtasts_cli, tlsrpt_cli
from conformance.catalog.loader import Catalog, CatalogEntry, load_catalog
from conformance.catalog.requirements import Inventory, load_inventory
from conformance.errors import ConformanceError, DataFileError, UsageError
from conformance.expectations import Expectations, load_expectations
from conformance.report.writers import RunInfo, write_report
from conformance.runner import run_all
from conformance.targets.registry import MUTANTS, resolve_target
from conformance.verdict import ScenarioResult, Verdict
from conformance.world.world import Ports, World

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse exits 2 too; keep one format for usage errors
        raise UsageError(message)


def _network(text: str) -> ipaddress.IPv4Network:
    try:
        return ipaddress.IPv4Network(text, strict=True)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not an IPv4 network in CIDR form: {exc}") from exc


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mailtls", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--version", action="version", version=f"mailtls-conformance {__version__}")
    parser.add_argument("--catalog", type=Path, help="scenario folder (default: the installed catalog)")
    parser.add_argument("--inventory", type=Path, help="requirement inventory folder (default: installed)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p_list = sub.add_parser("list", help="list the scenarios of the catalog")
    p_list.add_argument("--json", action="store_true", help="machine-readable output")
    p_list.add_argument("--select", action="append", default=[], metavar="GLOB", help="only ids matching GLOB")

    p_run = sub.add_parser("run", help="run scenarios against a target and write the report")
    p_run.add_argument(
        "--target",
        default="reference",
        help="reference (default), mutant:NAME, or the path of a target TOML file",
    )
    p_run.add_argument(
        "--select",
        action="append",
        default=[],
        metavar="GLOB",
        help="only scenarios whose id matches GLOB (repeatable)",
    )
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
    p_run.add_argument("-q", "--quiet", action="store_true", help="no line per scenario")
    p_run.add_argument(
        "--network",
        type=_network,
        metavar="CIDR",
        help="bind the world to these addresses (configured on this machine) instead of a "
        "loopback /16, e.g. for a SUT on another host",
    )
    p_run.add_argument(
        "--expect",
        type=Path,
        metavar="FILE",
        help="expected-results file: fail only where a verdict differs from it, in either direction",
    )
    p_run.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="S",
        help="cap every scenario's deadline at S seconds (default: each scenario's own)",
    )

    p_req = sub.add_parser("requirements", help="requirement coverage per RFC")
    p_req.add_argument("--json", action="store_true")
    p_req.add_argument("--rfc", type=int, action="append", default=[], help="only this RFC (repeatable)")
    p_req.add_argument("--uncovered", action="store_true", help="list observable requirements no scenario covers")

    sub.add_parser("targets", help="list the built-in targets and mutants")

    mtasts_cli.add_parser(sub, _Parser)
    tlsrpt_cli.add_parser(sub, _Parser)

    p_world = sub.add_parser("world", help="start the world alone and print how to point a SUT at it")
    p_world.add_argument("--privileged", action="store_true", help="ports 53/443/25 (needs root)")
    p_world.add_argument(
        "--network", type=_network, metavar="CIDR", help="bind the world to these addresses instead of a loopback /16"
    )
    p_world.add_argument("--seconds", type=float, default=0, help="stop after this long (default: until Ctrl-C)")
    return parser


def _load(args: argparse.Namespace) -> tuple[Inventory, Catalog]:
    inventory = load_inventory(args.inventory)
    return inventory, load_catalog(inventory, args.catalog)


def _entry_json(entry: CatalogEntry) -> dict[str, Any]:
    s = entry.scenario
    return {
        "id": s.id,
        "title": s.title,
        "rfc": entry.rfc,
        "section": entry.section,
        "level": entry.level.value,
        "role": s.role.value,
        "requirements": list(s.requirements),
        "needs": list(s.needs),
        "mutants": [m.name for m in s.mutants],
        "file": str(entry.path),
        "line": entry.line,
    }


def cmd_list(args: argparse.Namespace) -> int:
    _, catalog = _load(args)
    entries = catalog.select(args.select)
    if args.json:
        print(json.dumps([_entry_json(e) for e in entries], indent=2))
    else:
        for e in entries:
            print(
                f"{e.id:55} RFC {e.rfc} {e.section:6} {e.level.value:10} {e.scenario.role.value:14} {e.scenario.title}"
            )
        print(f"{len(entries)} scenarios")
    return EXIT_OK


def coverage(inventory: Inventory, catalog: Catalog) -> list[dict[str, Any]]:
    covered: dict[str, list[str]] = {}
    for entry in catalog.entries:
        checks = [*entry.scenario.expect, *(c for phase in entry.scenario.then for c in phase.expect)]
        cited = set(entry.scenario.requirements) | {c.requirement for c in checks if c.requirement}
        for req in cited:
            covered.setdefault(req, []).append(entry.id)
    rows = []
    for rfc in inventory.rfcs:
        reqs = inventory.for_rfc(rfc)
        observable = [r for r in reqs if r.observable]
        hit = [r for r in observable if r.id in covered]
        rows.append(
            {
                "rfc": rfc,
                "title": inventory.titles[rfc],
                "requirements": len(reqs),
                "observable": len(observable),
                "covered": len(hit),
                "coverage": round(len(hit) / len(observable), 3) if observable else None,
                "uncovered": [
                    {"id": r.id, "level": r.level.value, "summary": r.summary, "gap": r.gap}
                    for r in observable
                    if r.id not in covered
                ],
                "not_observable": [{"id": r.id, "reason": r.reason} for r in reqs if not r.observable],
                "scenarios": {r.id: covered[r.id] for r in reqs if r.id in covered},
            }
        )
    return rows


def cmd_requirements(args: argparse.Namespace) -> int:
    inventory, catalog = _load(args)
    rows = [r for r in coverage(inventory, catalog) if not args.rfc or r["rfc"] in args.rfc]
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    print(f"{'RFC':>6}  {'reqs':>5}  {'observable':>10}  {'covered':>7}  {'coverage':>8}  title")
    for r in rows:
        pct = f"{100 * r['coverage']:.0f}%" if r["coverage"] is not None else "-"
        print(
            f"{r['rfc']:>6}  {r['requirements']:>5}  {r['observable']:>10}  {r['covered']:>7}  {pct:>8}  {r['title']}"
        )
        if args.uncovered:
            for u in r["uncovered"]:
                print(f"          uncovered {u['id']} ({u['level']}): {u['summary']}")
                if u["gap"]:
                    print(f"            why: {u['gap']}")
    return EXIT_OK


def cmd_targets(args: argparse.Namespace) -> int:
    print("reference            the embedded reference implementation (default)")
    for mutant in MUTANTS.values():
        print(f"mutant:{mutant.name:20} {mutant.description}")
    print("PATH.toml            an external SUT described by a target file (see README)")
    return EXIT_OK


def _progress(result: ScenarioResult) -> None:
    note = f"  ({result.reason})" if result.reason else ""
    print(f"{result.verdict.value:5} {result.id} [{result.duration_s:.2f}s]{note}", flush=True)


async def _run(
    args: argparse.Namespace, inventory: Inventory, entries: list[CatalogEntry], expectations: Expectations | None
) -> int:
    target = resolve_target(args.target)
    ports = Ports.privileged() if args.privileged else Ports.unprivileged()
    started_wall = dt.datetime.now(dt.UTC).replace(microsecond=0)
    started = time.monotonic()
    decided: list[ScenarioResult] = []

    def collect(result: ScenarioResult) -> None:
        decided.append(result)
        if not args.quiet:
            _progress(result)

    interrupted = False
    world = World(ports=ports, network=args.network)
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
        selection=tuple(args.select),
        interrupted=interrupted,
        world=world_text,
    )
    paths = write_report(args.report, run, results)
    counts = {v: sum(1 for r in results if r.verdict is v) for v in Verdict}
    summary = ", ".join(f"{n} {v.value}" for v, n in counts.items() if n)
    print(f"{len(results)} scenarios in {run.duration_s:.2f}s: {summary or 'nothing run'}")
    print("report: " + ", ".join(str(p) for p in paths))
    if interrupted:
        return EXIT_INTERRUPTED
    if expectations is not None:
        surprises = [r for r in results if r.unexpected]
        for r in surprises:
            assert r.expected is not None
            print(f"UNEXPECTED {r.id}: expected {r.expected.value}, got {r.verdict.value}")
        print(f"{len(surprises)} unexpected verdicts against {expectations.path}")
        return EXIT_FAILED if surprises else EXIT_OK
    return EXIT_FAILED if any(r.verdict.bad for r in results) else EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    if args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    if args.timeout is not None and args.timeout <= 0:
        raise UsageError("--timeout must be positive")
    inventory, catalog = _load(args)
    entries = catalog.select(args.select)
    if not entries:
        raise UsageError(f"no scenario matches {args.select}")
    resolve_target(args.target)  # bad target: exit 2 before anything starts
    expectations = load_expectations(args.expect, {e.id for e in catalog.entries}) if args.expect else None
    try:
        return asyncio.run(_run(args, inventory, entries, expectations))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


async def _world(args: argparse.Namespace) -> None:
    ports = Ports.privileged() if args.privileged else Ports.unprivileged()
    async with World(ports=ports, network=args.network) as world:
        info = world.info
        print(f"world network      {info.network} (run tag {info.tag})")
        print(f"resolver (DNS)     {info.resolver[0]} port {info.resolver[1]} (UDP and TCP)")
        print(f"trust this CA      {info.trust_bundle}")
        print(f"MX hosts listen on port {info.smtp_port}; policy hosts on {info.https[0]} port {info.https[1]}")
        print(f"mailbox (bounces)  {info.mailbox[0]}:{info.mailbox[1]}")
        print("Scenario domains are <name>-<n>." + info.tag + ".test; stop with Ctrl-C.", flush=True)
        if args.seconds > 0:
            await asyncio.sleep(args.seconds)
        else:
            await asyncio.Event().wait()


def cmd_world(args: argparse.Namespace) -> int:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_world(args))
    return EXIT_OK


COMMANDS = {
    "mta-sts": mtasts_cli.run,
    "tlsrpt": tlsrpt_cli.run,
    "list": cmd_list,
    "run": cmd_run,
    "requirements": cmd_requirements,
    "targets": cmd_targets,
    "world": cmd_world,
}


def _quiet_reference_logs() -> None:
    """The embedded reference MTA logs what an MTA operator would want to see (a failed policy
    refresh, a deferred message); in a suite run that is the scenarios' business, and it shows
    in their evidence, so keep it off the terminal."""
    logger = logging.getLogger("reference_impl")
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
        logger.propagate = False


def main(argv: Sequence[str] | None = None) -> int:
    _quiet_reference_logs()
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except UsageError as exc:
        print(f"mailtls: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except DataFileError as exc:
        print(f"mailtls: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ConformanceError as exc:
        print(f"mailtls: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
