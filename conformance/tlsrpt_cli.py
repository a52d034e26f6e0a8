"""``mailtls tlsrpt``: operator checks of TLSRPT records and reports (RFC 8460).

``check-record TXT`` lints one ``_smtp._tls`` record (section 3); ``check-domain DOMAIN`` looks
the record up; ``validate FILE...`` judges reports as received: a JSON file, a gzip file, or
a whole report mail (with its DKIM signature checked when ``--resolver`` or ``--dkim-key``
says where the key is). Every rule broken is named with its section. Exit status: 0 no
error (warnings allowed), 1 at least one error, 2 bad usage or an unreadable file. A report
from the wild is judged fairly: optional fields may be missing, forms the RFC contradicts
itself about are warnings, and nothing the file contains can crash the command.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dns.exception
import dns.resolver

from conformance.drivers.tlsrpt_domain_check import TlsRptCheckConfig, check_tlsrpt_domain
from conformance.errors import UsageError
from conformance.lint_cli import (
    EXIT_FINDINGS,
    EXIT_OK,
    counts,
    finding_row,
    parse_resolver,
    print_domain_check,
    print_findings,
)
from reference_impl.tlsrpt.errors import ReportError
from reference_impl.tlsrpt.lint import lint_record
from reference_impl.tlsrpt.validate import TxtLookup, Validation, validate_file

_EXAMPLES = """examples:
  mailtls tlsrpt check-record "v=TLSRPTv1; rua=mailto:tlsrpt@example.com"
  mailtls tlsrpt check-domain example.com --resolver 127.0.0.1:53
  mailtls tlsrpt validate report.json.gz
  mailtls tlsrpt validate --resolver 9.9.9.9 received-report.eml

exit status: 0 no error (warnings allowed); 1 at least one error; 2 bad usage or an unreadable file.
"""


def _examples(*lines: str) -> str:
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def add_parser(sub: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    """Register ``mailtls tlsrpt`` on the main parser's subcommands."""
    p_rpt = sub.add_parser(
        "tlsrpt",
        help="check a TLSRPT record or validate reports (RFC 8460)",
        description="Operator checks of SMTP TLS Reporting (RFC 8460): lint a _smtp._tls record, look one "
        "up, or validate reports as received. Every rule broken is named with its section.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rpt: Any = p_rpt.add_subparsers(dest="tlsrpt_command", required=True, parser_class=parser_class)
    p_record = rpt.add_parser(
        "check-record",
        help="check one _smtp._tls TXT record text (RFC 8460 3)",
        description="Check the text of one _smtp._tls TXT record against RFC 8460 section 3.",
        epilog=_examples('mailtls tlsrpt check-record "v=TLSRPTv1; rua=mailto:tlsrpt@example.com"'),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p_record.add_argument("text", help='the record, e.g. "v=TLSRPTv1; rua=mailto:tlsrpt@example.com"')
    p_record.add_argument("--json", action="store_true", help="machine-readable output")
    p_domain = rpt.add_parser(
        "check-domain",
        help="look up and check a domain's _smtp._tls record",
        description="Look up the _smtp._tls TXT record of a domain and check it (RFC 8460 section 3).",
        epilog=_examples(
            "mailtls tlsrpt check-domain example.com",
            "mailtls tlsrpt check-domain example.com --resolver 127.0.0.1:5353 --json",
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p_domain.add_argument("domain", help="the policy domain, e.g. example.com")
    p_domain.add_argument("--resolver", metavar="ADDR[:PORT]", help="DNS server to ask (default: the system's)")
    p_domain.add_argument("--timeout", type=float, default=10.0, help="seconds for the lookup (default 10)")
    p_domain.add_argument("--json", action="store_true", help="machine-readable output")
    p_val = rpt.add_parser(
        "validate",
        help="validate report files: JSON, gzip, or a whole report mail",
        description="Validate TLSRPT reports as received (RFC 8460 sections 3, 4, 5): a JSON file, a gzip "
        "file, or a whole report mail, whose DKIM signature is checked when --resolver or --dkim-key "
        "says where the key is. Size limits refuse gzip bombs.",
        epilog=_examples(
            "mailtls tlsrpt validate report.json.gz",
            "mailtls tlsrpt validate --dkim-key sel._domainkey.example.com=key.txt received-report.eml",
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p_val.add_argument("files", nargs="+", type=Path, metavar="FILE", help="report files (.json, .gz, .eml)")
    p_val.add_argument(
        "--resolver", metavar="ADDR[:PORT]", help="DNS server for DKIM keys of report mail (default: not checked)"
    )
    p_val.add_argument(
        "--dkim-key",
        action="append",
        default=[],
        metavar="NAME=FILE",
        help="a DKIM key record for NAME (e.g. sel._domainkey.example.com) from FILE, instead of DNS",
    )
    p_val.add_argument("--json", action="store_true", help="machine-readable output")


def _dns_lookup(resolver: tuple[str, int]) -> TxtLookup:
    """A blocking TXT lookup through one server, for dkimpy's key fetch."""
    client = dns.resolver.Resolver(configure=False)
    client.nameservers = [resolver[0]]
    client.port = resolver[1]
    client.lifetime = 10.0

    def lookup(name: str) -> list[bytes] | None:
        try:
            answer = client.resolve(name, "TXT")
        except dns.exception.DNSException:
            return None
        return [b"".join(rr.strings) for rr in answer]

    return lookup


def _file_lookup(pairs: Sequence[str], fallback: TxtLookup | None) -> TxtLookup | None:
    if not pairs:
        return fallback
    keys: dict[str, bytes] = {}
    for pair in pairs:
        name, sep, file = pair.partition("=")
        if not sep or not name or not file:
            raise UsageError(f"--dkim-key {pair!r}: expected NAME=FILE")
        try:
            keys[name.lower().rstrip(".")] = b"".join(Path(file).read_bytes().split())
        except OSError as exc:
            raise UsageError(f"--dkim-key {pair!r}: cannot read {file}: {exc.strerror}") from exc

    def lookup(name: str) -> list[bytes] | None:
        found = keys.get(name.lower().rstrip("."))
        if found is not None:
            return [found]
        return fallback(name) if fallback is not None else None

    return lookup


def _validate(args: argparse.Namespace) -> int:
    resolver = parse_resolver(args.resolver)
    lookup = _file_lookup(args.dkim_key, _dns_lookup(resolver) if resolver else None)
    results: list[tuple[Path, Validation]] = []
    for path in args.files:
        try:
            results.append((path, validate_file(path, txt_lookup=lookup)))
        except ReportError as exc:
            raise UsageError(f"{path}: {exc.detail}") from exc
    worst = EXIT_OK
    rows = []
    for path, validation in results:
        errors, warnings = counts(validation.findings)
        worst = max(worst, EXIT_FINDINGS if errors else EXIT_OK)
        if args.json:
            rows.append(
                {
                    "file": str(path),
                    "form": validation.form,
                    "ok": validation.ok,
                    "dkim": validation.dkim,
                    "findings": [finding_row(f) for f in validation.findings],
                }
            )
            continue
        print(f"{path}: {validation.form}, {errors} error(s), {warnings} warning(s)")
        for finding in validation.findings:
            print(f"  {finding}")
    if args.json:
        print(json.dumps({"ok": worst == EXIT_OK, "files": rows}, indent=2))
    return worst


def run(args: argparse.Namespace) -> int:
    if args.tlsrpt_command == "check-record":
        return print_findings(lint_record(args.text), args.json)
    if args.tlsrpt_command == "check-domain":
        config = TlsRptCheckConfig(resolver=parse_resolver(args.resolver), timeout_s=args.timeout)
        return print_domain_check(asyncio.run(check_tlsrpt_domain(args.domain, config)), args.json)
    return _validate(args)
