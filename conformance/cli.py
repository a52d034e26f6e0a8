"""``mailtls``: list the catalog, run it against a target, show coverage, start the world.

Exit status: 0 nothing failed; 1 a scenario FAILed or ERRORed (with ``--strict`` also a WARN;
with ``--expect`` any verdict other than the file's; for ``compare``, a regression); 2 bad
usage or bad input (the message names the file, line and field); 130 interrupted (what was
decided is written).

This module holds the entry point (``main``), the top-level parser with the command table, and
the small commands ``list``, ``requirements``, ``targets``, ``compare`` and ``world``. The larger
commands live in their own modules, each with ``add_parser`` and ``run``: ``run_cli`` (``run``),
``mtasts_cli``, ``tlsrpt_cli`` and ``report_cli``; what they share is in ``cli_common``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from conformance import __version__, mtasts_cli, report_cli, run_cli, tlsrpt_cli
from conformance.catalog.loader import Catalog, CatalogEntry
from conformance.catalog.requirements import Inventory
from conformance.cli_common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, command, examples, load, network
from conformance.compare import compare, read_results
from conformance.errors import ConformanceError, DataFileError, UsageError
from conformance.selection import Selection, add_selection_arguments
from conformance.targets.registry import MUTANTS
from conformance.world.world import Ports, World


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse exits 2 too; keep one format for usage errors
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mailtls",
        description="Conformance tests for the transport-security RFCs of mail (MTA-STS, TLSRPT, REQUIRETLS, "
        "RFC 8314, RFC 7817) and XMPP (RFC 7590), against a simulated world on loopback addresses.",
        epilog=examples(
            "mailtls list --rfc 8461",
            "mailtls run --select 'mta-sts/*' --report out",
            "mailtls run --target my-mta.toml --privileged --expect expected.yaml",
            "mailtls compare old/results.json new/results.json",
            "mailtls COMMAND --help     (every command has its own examples)",
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"mailtls-conformance {__version__}")
    parser.add_argument("--catalog", type=Path, help="scenario folder (default: the installed catalog)")
    parser.add_argument("--inventory", type=Path, help="requirement inventory folder (default: installed)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p_list = command(
        sub,
        "list",
        "list the scenarios of the catalog",
        "List the scenarios of the catalog (id, RFC, section, level, SUT role, title), or the ones the "
        "selection options pick: the same options as `mailtls run`, so a selection can be checked first.",
        "mailtls list",
        "mailtls list --rfc 8461 --level must --role sending-mta",
        "mailtls list --select 'requiretls/*' --exclude '*/relay/*' --json",
    )
    p_list.add_argument("--json", action="store_true", help="machine-readable output")
    add_selection_arguments(p_list)

    run_cli.add_parser(sub, _Parser)

    p_req = command(
        sub,
        "requirements",
        "requirement coverage per RFC",
        "Requirement coverage per RFC: how many normative statements the inventory holds, how many "
        "can be observed from outside the SUT, and how many of those a scenario checks.",
        "mailtls requirements",
        "mailtls requirements --rfc 8689 --uncovered",
        "mailtls requirements --json",
    )
    p_req.add_argument("--json", action="store_true", help="machine-readable output")
    p_req.add_argument("--rfc", type=int, action="append", default=[], help="only this RFC (repeatable)")
    p_req.add_argument("--uncovered", action="store_true", help="list observable requirements no scenario covers")

    command(
        sub,
        "targets",
        "list the built-in targets and mutants",
        "The built-in targets: the reference implementation and its mutants (deliberately broken "
        "variants every scenario must catch). An external SUT is the path of a TOML file instead.",
        "mailtls targets",
        "mailtls run --target mutant:keeps-pipelined-plaintext --select 'smtp/receive/*'",
    )

    p_cmp = command(
        sub,
        "compare",
        "compare two results.json files: regressions, fixes, other changes",
        "Compare two runs' results.json files scenario by scenario. Severity tiers: PASS and N/A < WARN "
        "< FAIL and ERROR; a move to a higher tier is a regression, to a lower one a fix, within a tier "
        "another change (PASS <-> N/A, FAIL <-> ERROR). Scenarios only in one file are listed as new or "
        "removed.\n\nexit status: 0 no regression; 1 at least one regression; 2 a file is unreadable or "
        "not a results file (the message names it and what is wrong).",
        "mailtls compare baseline/results.json reports/results.json",
        "mailtls compare --json old.json new.json > changes.json",
    )
    p_cmp.add_argument("old", type=Path, metavar="OLD.json", help="the earlier run's results.json")
    p_cmp.add_argument("new", type=Path, metavar="NEW.json", help="the later run's results.json")
    p_cmp.add_argument("--json", action="store_true", help="machine-readable output")

    mtasts_cli.add_parser(sub, _Parser)
    tlsrpt_cli.add_parser(sub, _Parser)
    report_cli.add_parser(sub, _Parser)

    p_world = command(
        sub,
        "world",
        "start the world alone and print how to point a SUT at it",
        "Start the simulated world (DNS, CA, policy hosts, MX hosts, mailbox) without running "
        "scenarios, and print what an external SUT must be configured with: the resolver, the CA "
        "file to trust, the ports.",
        "mailtls world",
        "sudo mailtls world --privileged --seconds 600",
    )
    p_world.add_argument("--privileged", action="store_true", help="ports 53/443/25 (needs root)")
    p_world.add_argument(
        "--network", type=network, metavar="CIDR", help="bind the world to these addresses instead of a loopback /16"
    )
    p_world.add_argument("--seconds", type=float, default=0, help="stop after this long (default: until Ctrl-C)")
    return parser


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
    _, catalog = load(args)
    entries = Selection.from_args(args).apply(catalog)
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
    covered = catalog.scenarios_by_requirement()
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
    inventory, catalog = load(args)
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


def cmd_compare(args: argparse.Namespace) -> int:
    comparison = compare(read_results(args.old), read_results(args.new))
    print(json.dumps(comparison.as_json(), indent=2) if args.json else comparison.text())
    return EXIT_FAILED if comparison.regressions else EXIT_OK


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
    "report": report_cli.run,
    "list": cmd_list,
    "run": run_cli.run,
    "requirements": cmd_requirements,
    "targets": cmd_targets,
    "compare": cmd_compare,
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


class _EofReceivedNoise(logging.Filter):
    """Drops asyncio's "returning true from eof_received() has no effect when using ssl".

    asyncio logs it about once a run, after a client-side ``StreamWriter.start_tls`` when the
    peer closes the TLS session before ``start_tls`` has returned: until then CPython's
    StreamReaderProtocol still believes its transport is plain TCP and answers eof_received()
    as for a plain socket. Nothing is lost, the stream is closed either way; it is cosmetic noise
    in the middle of the scenario lines. Only that message is dropped; every other asyncio
    record passes.
    """

    MESSAGE = "returning true from eof_received() has no effect when using ssl"

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != self.MESSAGE


def _quiet_asyncio_eof_noise() -> None:
    logger = logging.getLogger("asyncio")
    if not any(isinstance(f, _EofReceivedNoise) for f in logger.filters):
        logger.addFilter(_EofReceivedNoise())


def main(argv: Sequence[str] | None = None) -> int:
    _quiet_reference_logs()
    _quiet_asyncio_eof_noise()
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
