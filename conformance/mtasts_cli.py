"""``mailtls mta-sts``: operator checks of an MTA-STS deployment (RFC 8461).

``check-record TXT``, ``check-policy FILE`` and ``check-domain DOMAIN`` name every rule broken
with its RFC section. Exit status: 0 no error (warnings allowed), 1 at least one error,
2 bad usage or an unreadable file. They share the reference implementation's parsers.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from conformance.drivers.domain_check import DomainCheckConfig, check_domain
from conformance.errors import UsageError
from conformance.lint_cli import parse_resolver, print_domain_check, print_findings
from reference_impl.mtasts.lint import lint_policy, lint_record

_EXIT = "exit status: 0 no error (warnings allowed); 1 at least one error; 2 bad usage or an unreadable file."


def _examples(*lines: str) -> str:
    return "examples:\n" + "\n".join(f"  {line}" for line in lines) + "\n\n" + _EXIT


def add_parser(sub: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    """Register ``mailtls mta-sts`` on the main parser's subcommands."""
    p_sts = sub.add_parser(
        "mta-sts",
        help="check an MTA-STS TXT record, policy file or whole domain",
        description="Operator checks of an MTA-STS deployment (RFC 8461): every rule broken is named with "
        "its section. They use the reference implementation's parsers.",
        epilog=_examples(
            'mailtls mta-sts check-record "v=STSv1; id=20260101"',
            "mailtls mta-sts check-policy mta-sts.txt",
            "mailtls mta-sts check-domain example.com",
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sts: Any = p_sts.add_subparsers(dest="sts_command", required=True, parser_class=parser_class)
    p_record = sts.add_parser(
        "check-record",
        help="check one _mta-sts TXT record text (RFC 8461 3.1)",
        description="Check the text of one _mta-sts TXT record against RFC 8461 section 3.1.",
        epilog=_examples(
            'mailtls mta-sts check-record "v=STSv1; id=20260101"',
            'mailtls mta-sts check-record --json "$(dig +short TXT _mta-sts.example.com)"',
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p_record.add_argument("text", help='the record, e.g. "v=STSv1; id=20260101"')
    p_record.add_argument("--json", action="store_true", help="machine-readable output")
    p_policy = sts.add_parser(
        "check-policy",
        help="check a policy file (RFC 8461 3.2)",
        description="Check an MTA-STS policy file against RFC 8461 section 3.2; findings carry line numbers.",
        epilog=_examples(
            "mailtls mta-sts check-policy mta-sts.txt",
            "curl -s https://mta-sts.example.com/.well-known/mta-sts.txt | mailtls mta-sts check-policy -",
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p_policy.add_argument("file", type=Path, help="the policy file; - for standard input")
    p_policy.add_argument("--json", action="store_true", help="machine-readable output")
    p_domain = sts.add_parser(
        "check-domain",
        help="check a domain's whole deployment: TXT, policy host, MX hosts",
        description="Check a domain's whole MTA-STS deployment: the _mta-sts TXT record, the policy host "
        "(HTTPS, certificate, status, content type), the policy, and each MX host (STARTTLS, "
        "certificate, TLS version) against the policy.",
        epilog=_examples(
            "mailtls mta-sts check-domain example.com",
            "mailtls mta-sts check-domain example.com --resolver 127.0.0.1:5353 --ca-file ca.pem --no-mx",
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p_domain.add_argument("domain", help="the policy domain, e.g. example.com")
    p_domain.add_argument("--resolver", metavar="ADDR[:PORT]", help="DNS server to ask (default: the system's)")
    p_domain.add_argument("--https-port", type=int, default=443, help="policy host port (default 443)")
    p_domain.add_argument("--smtp-port", type=int, default=25, help="MX port (default 25)")
    p_domain.add_argument("--ca-file", type=Path, help="trust anchors (default: the system store)")
    p_domain.add_argument("--no-mx", action="store_true", help="skip connecting to the MX hosts")
    p_domain.add_argument("--timeout", type=float, default=15.0, help="per network step, seconds")
    p_domain.add_argument("--json", action="store_true", help="machine-readable output")


def run(args: argparse.Namespace) -> int:
    if args.sts_command == "check-record":
        return print_findings(lint_record(args.text), args.json)
    if args.sts_command == "check-policy":
        try:
            body = args.file.read_bytes() if str(args.file) != "-" else sys.stdin.buffer.read()
        except OSError as exc:
            raise UsageError(f"{args.file}: cannot read: {exc.strerror}") from exc
        return print_findings(lint_policy(body), args.json)
    config = DomainCheckConfig(
        resolver=parse_resolver(args.resolver),
        https_port=args.https_port,
        smtp_port=args.smtp_port,
        ca_file=args.ca_file,
        timeout_s=args.timeout,
        check_mx=not args.no_mx,
    )
    return print_domain_check(asyncio.run(check_domain(args.domain, config)), args.json)
