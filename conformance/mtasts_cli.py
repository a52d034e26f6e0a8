"""``mailtls mta-sts``: operator checks of an MTA-STS deployment (RFC 8461).

``check-record TXT``, ``check-policy FILE`` and ``check-domain DOMAIN`` name every rule broken
with its RFC section. Exit status: 0 no error (warnings allowed), 1 at least one error,
2 bad usage or an unreadable file. They share the reference implementation's parsers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from conformance.drivers.domain_check import DomainCheckConfig, check_domain
from conformance.errors import UsageError
from reference_impl.mtasts.errors import Finding
from reference_impl.mtasts.lint import lint_policy, lint_record

EXIT_OK, EXIT_FINDINGS = 0, 1


def add_parser(sub: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    """Register ``mailtls mta-sts`` on the main parser's subcommands."""
    p_sts = sub.add_parser("mta-sts", help="check an MTA-STS TXT record, policy file or whole domain")
    sts: Any = p_sts.add_subparsers(dest="sts_command", required=True, parser_class=parser_class)
    p_record = sts.add_parser("check-record", help="check one _mta-sts TXT record text (RFC 8461 3.1)")
    p_record.add_argument("text", help='the record, e.g. "v=STSv1; id=20260101"')
    p_record.add_argument("--json", action="store_true")
    p_policy = sts.add_parser("check-policy", help="check a policy file (RFC 8461 3.2)")
    p_policy.add_argument("file", type=Path, help="the policy file; - for standard input")
    p_policy.add_argument("--json", action="store_true")
    p_domain = sts.add_parser("check-domain", help="check a domain's whole deployment: TXT, policy host, MX hosts")
    p_domain.add_argument("domain")
    p_domain.add_argument("--resolver", metavar="ADDR[:PORT]", help="DNS server to ask (default: the system's)")
    p_domain.add_argument("--https-port", type=int, default=443, help="policy host port (default 443)")
    p_domain.add_argument("--smtp-port", type=int, default=25, help="MX port (default 25)")
    p_domain.add_argument("--ca-file", type=Path, help="trust anchors (default: the system store)")
    p_domain.add_argument("--no-mx", action="store_true", help="skip connecting to the MX hosts")
    p_domain.add_argument("--timeout", type=float, default=15.0, help="per network step, seconds")
    p_domain.add_argument("--json", action="store_true")


def _resolver(text: str | None) -> tuple[str, int] | None:
    if text is None:
        return None
    host, sep, port = text.rpartition(":") if text.count(":") == 1 else (text, "", "")
    if sep and not port.isdigit():
        raise UsageError(f"--resolver {text!r}: not ADDR or ADDR:PORT")
    return (host if sep else text).strip("[]"), int(port) if sep else 53


def _print(findings: Sequence[Finding], as_json: bool, extra: dict[str, object] | None = None) -> int:
    errors = [f for f in findings if f.severity == "error"]
    if as_json:
        rows = [
            {"rule": f.rule, "section": f.section, "severity": f.severity, "message": f.message, "line": f.line}
            for f in findings
        ]
        print(json.dumps({"ok": not errors, "findings": rows} | (extra or {}), indent=2))
    else:
        for finding in findings:
            print(finding)
        print(f"{len(errors)} error(s), {len(findings) - len(errors)} warning(s)")
    return EXIT_FINDINGS if errors else EXIT_OK


def run(args: argparse.Namespace) -> int:
    if args.sts_command == "check-record":
        return _print(lint_record(args.text), args.json)
    if args.sts_command == "check-policy":
        try:
            body = args.file.read_bytes() if str(args.file) != "-" else sys.stdin.buffer.read()
        except OSError as exc:
            raise UsageError(f"{args.file}: cannot read: {exc.strerror}") from exc
        return _print(lint_policy(body), args.json)
    config = DomainCheckConfig(
        resolver=_resolver(args.resolver),
        https_port=args.https_port,
        smtp_port=args.smtp_port,
        ca_file=args.ca_file,
        timeout_s=args.timeout,
        check_mx=not args.no_mx,
    )
    report = asyncio.run(check_domain(args.domain, config))
    if not args.json:
        for line in report.evidence:
            print(f"  {line}")
    return _print(report.findings, args.json, {"domain": report.domain, "evidence": report.evidence})
