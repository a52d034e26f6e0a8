"""What the ``mailtls`` subcommand modules share: exit codes, argument types, help layout, loading.

``conformance.cli`` builds the parser and dispatches; the modules of single commands (such as
``conformance.run_cli``) take their subcommand helpers from here rather than from ``cli``, which
imports them.
"""

from __future__ import annotations

import argparse
import ipaddress
from typing import Any

from conformance.catalog.loader import Catalog, load_catalog
from conformance.catalog.requirements import Inventory, load_inventory

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def network(text: str) -> ipaddress.IPv4Network:
    """``--network CIDR``: an IPv4 network with no host bits set."""
    try:
        return ipaddress.IPv4Network(text, strict=True)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not an IPv4 network in CIDR form: {exc}") from exc


def examples(*lines: str) -> str:
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def command(sub: Any, name: str, summary: str, description: str, *example_lines: str) -> argparse.ArgumentParser:
    """A subcommand with its description and an epilog of examples, formatted as written."""
    parser: argparse.ArgumentParser = sub.add_parser(
        name,
        help=summary,
        description=description,
        epilog=examples(*example_lines),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


def load(args: argparse.Namespace) -> tuple[Inventory, Catalog]:
    """The requirement inventory and the catalog, from ``--inventory`` and ``--catalog`` or installed."""
    inventory = load_inventory(args.inventory)
    return inventory, load_catalog(inventory, args.catalog)
