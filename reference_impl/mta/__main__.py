"""Run the reference MTA as a stand-alone process: ``python -m reference_impl.mta --help``.

This is how the reference is tested as an *external* SUT (through a target file, like any
other MTA), and how a user can try it by hand. It runs until SIGTERM or SIGINT.

TLSRPT (RFC 8460) is on when ``--tlsrpt-org`` is given: the previous UTC day is reported
every day ``--tlsrpt-daily-delay`` seconds after 00:00 UTC (section 4.1), and SIGUSR1 sends
today's reports at once (so a harness can trigger a run by PID).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import logging
import signal
import sys
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from reference_impl.mta.mta import MtaConfig, ReferenceMta
from reference_impl.mta.reporting import TlsRptConfig, next_daily_run

log = logging.getLogger("reference_impl.mta")


def _hostport(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT")
    return host.strip("[]"), int(port)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m reference_impl.mta", description=__doc__.splitlines()[0])
    parser.add_argument("--hostname", required=True, help="EHLO name and Reporting-MTA")
    parser.add_argument("--state-dir", type=Path, required=True, help="queue and records live here")
    parser.add_argument("--resolver", type=_hostport, required=True, help="the only DNS server asked (HOST:PORT)")
    parser.add_argument("--mx-port", type=int, default=25, help="port of MX hosts (default 25)")
    parser.add_argument("--sts-port", type=int, default=443, help="port of MTA-STS policy hosts (default 443)")
    parser.add_argument("--ca-file", type=Path, help="trust anchors for MX certificates")
    parser.add_argument("--submission", type=_hostport, required=True, help="submission listener HOST:PORT")
    parser.add_argument("--inbound", type=_hostport, help="inbound SMTP listener HOST:PORT")
    parser.add_argument("--cert", type=Path, help="certificate (PEM) for STARTTLS on the listeners")
    parser.add_argument("--key", type=Path, help="private key (PEM) for --cert")
    parser.add_argument("--ready-file", type=Path, help="written once the listeners accept connections")
    parser.add_argument(
        "--dane-required",
        action="append",
        default=[],
        metavar="DOMAIN",
        help="recipient domain whose MX hosts need DNSSEC-validated TLSA records (RFC 7672 6); repeatable",
    )
    tlsrpt = parser.add_argument_group("TLSRPT (RFC 8460)", "reporting is on when --tlsrpt-org is given")
    tlsrpt.add_argument("--tlsrpt-org", help="organization-name of the reports")
    tlsrpt.add_argument("--tlsrpt-contact", help="contact-info, an address; its domain is the submitter")
    tlsrpt.add_argument("--tlsrpt-domain", help="reporting domain: report-ids, DKIM d=, report mail sender")
    tlsrpt.add_argument("--tlsrpt-dkim-selector", default="tlsrpt", help="DKIM selector (default tlsrpt)")
    tlsrpt.add_argument("--tlsrpt-dkim-key", type=Path, help="DKIM private key (PEM); without it no report mail")
    tlsrpt.add_argument("--tlsrpt-https-port", type=int, help="port for https: rua URIs without one (default 443)")
    tlsrpt.add_argument("--tlsrpt-post-timeout", type=float, default=60.0, help="seconds per POST (default 60)")
    tlsrpt.add_argument(
        "--tlsrpt-daily-delay", type=float, default=300.0, help="daily run, seconds after 00:00 UTC (default 300)"
    )
    return parser


def tlsrpt_config(args: argparse.Namespace, parser: argparse.ArgumentParser) -> TlsRptConfig | None:
    if args.tlsrpt_org is None:
        return None
    if not args.tlsrpt_contact or not args.tlsrpt_domain:
        parser.error("--tlsrpt-org needs --tlsrpt-contact and --tlsrpt-domain")
    return TlsRptConfig(
        organization_name=args.tlsrpt_org,
        contact_info=args.tlsrpt_contact,
        reporting_domain=args.tlsrpt_domain,
        dkim_selector=args.tlsrpt_dkim_selector,
        dkim_key_file=args.tlsrpt_dkim_key,
        https_port=args.tlsrpt_https_port,
        post_timeout_s=args.tlsrpt_post_timeout,
    )


async def _report_run(mta: ReferenceMta, day: datetime.date | None) -> None:
    """One report run; a failure is logged, never fatal (the next run comes tomorrow)."""
    try:
        outcomes = await mta.send_reports(day=day)
    except Exception:
        log.exception("TLSRPT report run failed")
        return
    for outcome in outcomes:
        deliveries = ", ".join(f"{d.uri}: {d.status.value}" for d in outcome.deliveries)
        log.info("TLSRPT %s: %s %s", outcome.policy_domain, outcome.record.value, deliveries or outcome.detail)


async def _daily_reports(mta: ReferenceMta, delay_s: float) -> None:
    """RFC 8460 section 4.1: each UTC day is reported shortly after it ended."""
    while True:
        at, day = next_daily_run(time.time(), delay_s)
        await asyncio.sleep(max(at - time.time(), 0.0))
        await _report_run(mta, day)


async def serve(args: argparse.Namespace, tlsrpt: TlsRptConfig | None = None) -> None:
    config = MtaConfig(
        hostname=args.hostname,
        state_dir=args.state_dir,
        resolver=args.resolver,
        mx_port=args.mx_port,
        sts_port=args.sts_port,
        ca_file=args.ca_file,
        submission_listen=args.submission,
        inbound_listen=args.inbound,
        inbound_cert_file=args.cert,
        inbound_key_file=args.key,
        dane_required_domains=frozenset(args.dane_required),
        tlsrpt=tlsrpt,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    background: set[asyncio.Task[None]] = set()

    def spawn(work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        background.add(task)
        task.add_done_callback(background.discard)

    async with ReferenceMta(config) as mta:
        if tlsrpt is not None:
            # SIGUSR1: "send today's reports now", for a harness that knows only the PID.
            loop.add_signal_handler(signal.SIGUSR1, lambda: spawn(_report_run(mta, None)))
            spawn(_daily_reports(mta, args.tlsrpt_daily_delay))
        if args.ready_file is not None:
            host, port = mta.submission_address
            args.ready_file.write_text(f"{host}:{port}\n", encoding="utf-8")
        await stop.wait()
        for task in list(background):
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    tlsrpt = tlsrpt_config(args, parser)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args, tlsrpt))
    return 0


if __name__ == "__main__":
    sys.exit(main())
