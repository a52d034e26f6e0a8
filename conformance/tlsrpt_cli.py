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
from conformance.mtasts_cli import _resolver
from reference_impl.tlsrpt.errors import Finding, ReportError
from reference_impl.tlsrpt.lint import lint_record
from reference_impl.tlsrpt.validate import TxtLookup, Validation, validate_file

EXIT_OK, EXIT_FINDINGS = 0, 1

_EXAMPLES = """examples:
  mailtls tlsrpt check-record "v=TLSRPTv1; rua=mailto:tlsrpt@example.com"
  mailtls tlsrpt check-domain example.com --resolver 127.0.0.1:53
  mailtls tlsrpt validate report.json.gz
  mailtls tlsrpt validate --resolver 9.9.9.9 received-report.eml
"""


def add_parser(sub: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    """Register ``mailtls tlsrpt`` on the main parser's subcommands."""
    p_rpt = sub.add_parser(
        "tlsrpt",
        help="check a TLSRPT record or validate reports (RFC 8460)",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rpt: Any = p_rpt.add_subparsers(dest="tlsrpt_command", required=True, parser_class=parser_class)
    p_record = rpt.add_parser("check-record", help="check one _smtp._tls TXT record text (RFC 8460 3)")
    p_record.add_argument("text", help='the record, e.g. "v=TLSRPTv1; rua=mailto:tlsrpt@example.com"')
    p_record.add_argument("--json", action="store_true")
    p_domain = rpt.add_parser("check-domain", help="look up and check a domain's _smtp._tls record")
    p_domain.add_argument("domain")
    p_domain.add_argument("--resolver", metavar="ADDR[:PORT]", help="DNS server to ask (default: the system's)")
    p_domain.add_argument("--timeout", type=float, default=10.0)
    p_domain.add_argument("--json", action="store_true")
    p_val = rpt.add_parser("validate", help="validate report files: JSON, gzip, or a whole report mail")
    p_val.add_argument("files", nargs="+", type=Path, metavar="FILE")
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
    p_val.add_argument("--json", action="store_true")


def _finding_row(finding: Finding) -> dict[str, Any]:
    return {
        "rule": finding.rule,
        "section": finding.section,
        "severity": finding.severity,
        "message": finding.message,
        "where": finding.where,
        "line": finding.line,
    }


def _counts(findings: Sequence[Finding]) -> tuple[int, int]:
    errors = sum(1 for f in findings if f.severity == "error")
    warnings = sum(1 for f in findings if f.severity == "warning")
    return errors, warnings


def _print_findings(findings: Sequence[Finding], as_json: bool, extra: dict[str, Any] | None = None) -> int:
    errors, warnings = _counts(findings)
    if as_json:
        print(json.dumps({"ok": not errors, "findings": [_finding_row(f) for f in findings]} | (extra or {}), indent=2))
    else:
        for finding in findings:
            print(finding)
        print(f"{errors} error(s), {warnings} warning(s)")
    return EXIT_FINDINGS if errors else EXIT_OK


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
    resolver = _resolver(args.resolver)
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
        errors, warnings = _counts(validation.findings)
        worst = max(worst, EXIT_FINDINGS if errors else EXIT_OK)
        if args.json:
            rows.append(
                {
                    "file": str(path),
                    "form": validation.form,
                    "ok": validation.ok,
                    "dkim": validation.dkim,
                    "findings": [_finding_row(f) for f in validation.findings],
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
        return _print_findings(lint_record(args.text), args.json)
    if args.tlsrpt_command == "check-domain":
        config = TlsRptCheckConfig(resolver=_resolver(args.resolver), timeout_s=args.timeout)
        report = asyncio.run(check_tlsrpt_domain(args.domain, config))
        if not args.json:
            for line in report.evidence:
                print(f"  {line}")
        return _print_findings(report.findings, args.json, {"domain": report.domain, "evidence": report.evidence})
    return _validate(args)
