"""Run the reference MTA as a stand-alone process: ``python -m reference_impl.mta --help``.

This is how the reference is tested as an *external* SUT (through a target file, like any
other MTA), and how a user can try it by hand. It runs until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path

from reference_impl.mta.mta import MtaConfig, ReferenceMta


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
    parser.add_argument("--ca-file", type=Path, help="trust anchors for MX certificates")
    parser.add_argument("--submission", type=_hostport, required=True, help="submission listener HOST:PORT")
    parser.add_argument("--inbound", type=_hostport, help="inbound SMTP listener HOST:PORT")
    parser.add_argument("--cert", type=Path, help="certificate (PEM) for STARTTLS on the listeners")
    parser.add_argument("--key", type=Path, help="private key (PEM) for --cert")
    parser.add_argument("--ready-file", type=Path, help="written once the listeners accept connections")
    return parser


async def serve(args: argparse.Namespace) -> None:
    config = MtaConfig(
        hostname=args.hostname,
        state_dir=args.state_dir,
        resolver=args.resolver,
        mx_port=args.mx_port,
        ca_file=args.ca_file,
        submission_listen=args.submission,
        inbound_listen=args.inbound,
        inbound_cert_file=args.cert,
        inbound_key_file=args.key,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with ReferenceMta(config) as mta:
        if args.ready_file is not None:
            host, port = mta.submission_address
            args.ready_file.write_text(f"{host}:{port}\n", encoding="utf-8")
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
