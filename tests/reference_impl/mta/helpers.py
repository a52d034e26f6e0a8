"""Loopback test peers for the reference MTA: a tiny authoritative DNS and scripted MX hosts.

Both bind 127.0.0.0/8 only, on ephemeral ports, and are closed by their ``close()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from dnslib import AAAA, MX, QTYPE, RCODE, RR, TLSA, A, DNSRecord

from reference_impl.mta.queue import RetryPolicy

if TYPE_CHECKING:
    from conformance.world.world import World

MAX_LINE = 2048
MAX_DATA = 1_000_000


def parse_mail(data: bytes) -> Any:
    """A message parsed by the stdlib, typed Any: ``get_payload()`` returns a union that
    every test step would otherwise have to narrow; a wrong shape still fails the test."""
    return email.message_from_bytes(data)


class FakeDns(asyncio.DatagramProtocol):
    """Authoritative-looking UDP DNS: ``records[(name, qtype)] = [rdata, ...]``.

    ``rcodes[name]`` forces "NXDOMAIN"/"SERVFAIL"; ``silent`` names get no answer (timeout);
    a name in neither but below a known name answers NOERROR with no records (NODATA).
    """

    def __init__(self) -> None:
        self.records: dict[tuple[str, str], list[Any]] = {}
        self.rcodes: dict[str, str] = {}
        self.silent: set[str] = set()
        self.ad = False
        self.queries: list[tuple[str, str]] = []
        self.transport: asyncio.DatagramTransport | None = None

    @classmethod
    async def start(cls) -> FakeDns:
        loop = asyncio.get_running_loop()
        dns = cls()
        await loop.create_datagram_endpoint(lambda: dns, local_addr=("127.0.0.1", 0))
        return dns

    @property
    def address(self) -> tuple[str, int]:
        assert self.transport is not None
        host, port = self.transport.get_extra_info("sockname")[:2]
        return str(host), int(port)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def add_mx(self, domain: str, preference: int, host: str) -> None:
        self.records.setdefault((domain, "MX"), []).append(MX(host, preference))

    def add_a(self, name: str, address: str) -> None:
        self.records.setdefault((name, "A"), []).append(A(address))

    def add_aaaa(self, name: str, address: str) -> None:
        self.records.setdefault((name, "AAAA"), []).append(AAAA(address))

    def add_tlsa(self, name: str, usage: int, selector: int, matching_type: int, data: bytes) -> None:
        self.records.setdefault((name, "TLSA"), []).append(TLSA(usage, selector, matching_type, data))

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        request = DNSRecord.parse(data[:4096])
        qname = str(request.q.qname).rstrip(".").lower()
        qtype = QTYPE[request.q.qtype]
        self.queries.append((qname, qtype))
        if qname in self.silent:
            return
        reply = request.reply()
        reply.header.ad = 1 if self.ad else 0
        rcode = self.rcodes.get(qname)
        if rcode is not None:
            reply.header.rcode = getattr(RCODE, rcode)
        else:
            for rdata in self.records.get((qname, qtype), []):
                reply.add_answer(RR(qname + ".", getattr(QTYPE, qtype), rdata=rdata, ttl=60))
            if not any(name == qname for name, _ in self.records):
                reply.header.rcode = RCODE.NXDOMAIN
        assert self.transport is not None
        self.transport.sendto(reply.pack(), addr)


@dataclass
class Delivered:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    tls: bool
    mail_line: str


@dataclass
class MxScript:
    """What a fake MX answers; the defaults accept everything."""

    greeting: str = "220 mx ESMTP ready"
    mail_reply: str = "250 2.1.0 ok"
    rcpt_replies: dict[str, str] = field(default_factory=dict)  # address -> reply line
    data_reply: str = "250 2.0.0 accepted"
    starttls_reply: str = "220 2.0.0 go ahead"


class FakeMx:
    """A scripted SMTP server on one loopback address (plain line protocol, bounded reads)."""

    def __init__(self, host: str, tls_context: ssl.SSLContext | None, script: MxScript) -> None:
        self.host = host
        self.tls_context = tls_context
        self.script = script
        self.delivered: list[Delivered] = []
        self.sessions = 0
        self.starttls_count = 0
        self.handshake_failures = 0
        self.server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @classmethod
    async def start(
        cls,
        host: str,
        port: int,
        *,
        tls: ssl.SSLContext | None = None,
        script: MxScript | None = None,
    ) -> FakeMx:
        mx = cls(host, tls, script or MxScript())
        mx.server = await asyncio.start_server(mx._serve, host, port)
        return mx

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            for writer in list(self._writers):
                writer.close()
            await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.sessions += 1
        self._writers.add(writer)
        try:
            async with asyncio.timeout(10):
                await self._session(reader, writer)
        except (
            TimeoutError,
            ConnectionError,
            ssl.SSLError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ValueError,
        ):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        script = self.script

        async def send(line: str) -> None:
            writer.write(line.encode() + b"\r\n")
            await writer.drain()

        await send(script.greeting)
        if not script.greeting.startswith("220"):
            return
        tls = False
        mail_from, mail_line, rcpts = "", "", list[str]()
        while True:
            raw = await reader.readuntil(b"\n")
            line = raw[:MAX_LINE].decode("utf-8", "replace").rstrip("\r\n")
            verb = line.split(" ", 1)[0].upper()
            if verb == "EHLO":
                ext = ["250-mx", "250-8BITMIME"]
                if self.tls_context is not None and not tls:
                    ext.append("250-STARTTLS")
                for item in ext:
                    await send(item)
                await send("250 SIZE 10000000")
            elif verb == "STARTTLS" and self.tls_context is not None:
                self.starttls_count += 1
                await send(script.starttls_reply)
                if script.starttls_reply.startswith("220"):
                    try:
                        await writer.start_tls(self.tls_context)
                    except (ssl.SSLError, ConnectionError):
                        self.handshake_failures += 1
                        raise
                    tls = True
            elif verb == "MAIL":
                mail_line = line
                mail_from = line.split("<", 1)[1].split(">", 1)[0]
                rcpts = []
                await send(script.mail_reply)
            elif verb == "RCPT":
                address = line.split("<", 1)[1].split(">", 1)[0]
                reply = script.rcpt_replies.get(address, "250 2.1.5 ok")
                if reply.startswith("2"):
                    rcpts.append(address)
                await send(reply)
            elif verb == "DATA":
                await send("354 go")
                body = bytearray()
                while True:
                    chunk = await reader.readuntil(b"\n")
                    if chunk in (b".\r\n", b".\n"):
                        break
                    body += chunk[1:] if chunk.startswith(b"..") else chunk
                    if len(body) > MAX_DATA:
                        raise ValueError("message too large")
                if script.data_reply.startswith("2"):
                    self.delivered.append(Delivered(mail_from, rcpts, bytes(body), tls, mail_line))
                await send(script.data_reply)
            elif verb == "QUIT":
                await send("221 bye")
                return
            else:
                await send("250 ok")


async def start_mx_group(
    hosts: list[str],
    *,
    tls: dict[str, ssl.SSLContext] | None = None,
    scripts: dict[str, MxScript] | None = None,
    skip: frozenset[str] = frozenset(),
) -> tuple[int, dict[str, FakeMx]]:
    """Start a fake MX on each loopback address, all on one shared port (the MTA has one MX
    port); addresses in ``skip`` get nothing (connection refused)."""
    tls, scripts = tls or {}, scripts or {}
    for _ in range(20):
        probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = int(probe.sockets[0].getsockname()[1])
        probe.close()
        await probe.wait_closed()
        started: dict[str, FakeMx] = {}
        try:
            for host in hosts:
                if host not in skip:
                    started[host] = await FakeMx.start(host, port, tls=tls.get(host), script=scripts.get(host))
        except OSError:
            for mx in started.values():
                await mx.close()
            continue
        return port, started
    raise RuntimeError("no common free port for the fake MX hosts")


def world_mta_settings(world: World, state_dir: Path) -> dict[str, Any]:
    """MtaConfig keywords for a reference MTA run against the conformance world in a test: the
    world's resolver, MX port, CA and policy-host port; no listeners; short timeouts; one retry
    ten minutes later (tests see the first attempt only)."""
    info = world.info
    return {
        "hostname": "mta.reference.test",
        "state_dir": state_dir,
        "resolver": info.resolver,
        "mx_port": info.smtp_port,
        "ca_file": info.trust_bundle,
        "submission_listen": None,
        "inbound_listen": None,
        "dns_timeout_s": 2.0,
        "smtp_timeout_s": 5.0,
        "session_timeout_s": 10.0,
        "retry": RetryPolicy(schedule=(600.0,), max_lifetime_s=86400.0),
        "poll_interval_s": 0.1,
        "sts_port": info.https[1],
        "sts_fetch_timeout_s": 5.0,
    }
