"""``mailtls report``: render results files as HTML, one run or several side by side.

One ``results.json`` gives the same report ``mailtls run`` wrote beside it; several give one
comparison page, scenarios by targets (each cell a verdict that opens on that target's checks
and evidence), with a summary per target. The page is a pure function of the files: rendering
them again gives the same bytes. Exit status: 0 written; 2 a file is missing, is not JSON, or
does not follow the results schema (the message names the file and the JSON path).
"""

from __future__ import annotations

import argparse
import os
import secrets
from pathlib import Path
from typing import Any

from conformance.errors import UsageError
from conformance.report.html import render
from conformance.report.model import comparison_from_documents, report_from_document
from conformance.report.results import load_results

EXIT_OK = 0

_EXAMPLES = """examples:
  mailtls report reports/results.json -o report.html
  mailtls run --target mutant:requiretls-param-dropped --report reports/mutant
  mailtls report reports/results.json reports/mutant/results.json -o compare.html
"""


def add_parser(sub: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    """Register ``mailtls report`` on the main parser's subcommands."""
    p_report = sub.add_parser(
        "report",
        help="render results.json files as one HTML report, or several side by side",
        description=(__doc__ or "").split("\n\n")[1].replace("\n", " "),
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p_report.add_argument(
        "results", nargs="+", type=Path, metavar="RESULTS.json", help="results files, in column order"
    )
    p_report.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("report.html"),
        metavar="FILE",
        help="the HTML file to write (default: report.html)",
    )


def _write(path: Path, text: str) -> None:
    """Write beside the destination, then move into place: never a half-written page."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        with staging.open("xb") as handle:  # the usual mode (umask), unlike mkstemp's 0600
            handle.write(text.encode())
        os.replace(staging, path)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise


def run(args: argparse.Namespace) -> int:
    if args.output.is_dir():
        raise UsageError(f"-o {args.output}: is a folder; name the HTML file to write")
    documents = [load_results(path) for path in args.results]
    if len(documents) == 1:
        html = render(report_from_document(documents[0]))
    else:
        html = render(comparison_from_documents(documents))
    try:
        _write(args.output, html)
    except OSError as exc:
        raise UsageError(f"-o {args.output}: cannot write: {exc.strerror or exc}") from exc
    print(f"report: {args.output}")
    return EXIT_OK
