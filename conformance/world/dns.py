"""The world's DNS server: authoritative for every scenario's zone, over UDP and TCP.

It never forwards or recurses: a question outside every world zone is REFUSED. How a
question is answered from a zone lives in ``conformance.world.dns_zone``; the wire format
in ``conformance.world._dnslib``. This module is the server:
- RFC 1035 Section 4.2.1 (UDP) and 4.2.2 / RFC 7766 Sections 6.2.1, 8 (TCP: two-octet
  length prefix, several queries per connection, idle timeout);
- RFC 1035 Section 4.1.1 (FORMERR for a query it cannot read, NOTIMP for other opcodes);
- the AD bit for zones staged with ``dnssec: true``, as a validating resolver sets it
  (RFC 4035 Section 3.2.3), and scripted faults (SERVFAIL, NXDOMAIN, silence).

Every question is reported as a ``DnsQuery`` to the sink of the zone that owns it; refused
ones go to the ``unrouted_sink``, and so do unreadable ones (FORMERR, NOTIMP) with an empty
qname and qtype. Datagrams too short for a header, and responses, are dropped unlogged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Literal, cast

from conformance.world import _dnslib as wire
from conformance.world.dns_zone import (
    DnsError,
    DnsSpecError,
    DnsZoneError,
    Rcode,
    Resolution,
    TxtData,
    ZoneTable,
    compile_zone,
)
from conformance.world.observe import DnsQuery, ObservationSink
from conformance.world.spec import DnsSpec

__all__ = ["DnsError", "DnsSpecError", "DnsZoneError", "WorldDns"]

log = logging.getLogger(__name__)

Transport = Literal["udp", "tcp"]
_BIND_ATTEMPTS = 20
_CLASS_IN, _CLASS_ANY = 1, 255


class WorldDns:
    """Serve the world's zones on one address, UDP and TCP on the same port."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        unrouted_sink: ObservationSink | None = None,
        tcp_idle_timeout: float = 10.0,
        max_tcp_connections: int = 128,
    ) -> None:
        self._host = host
        self._port = port
        self._unrouted = unrouted_sink
        self._idle = tcp_idle_timeout
        self._max_tcp = max_tcp_connections
        self._zones = ZoneTable()
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._address: tuple[str, int] | None = None
        self._connections: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self._errors: list[BaseException] = []

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port), the same port for UDP and TCP."""
        if self._address is None:
            raise DnsError("the DNS server is not started")
        return self._address

    @property
    def errors(self) -> tuple[BaseException, ...]:
        """Bugs caught while answering (the server keeps serving); tests assert it is empty."""
        return tuple(self._errors)

    async def start(self) -> None:
        if self._address is not None:
            raise DnsError("the DNS server is already started")
        loop = asyncio.get_running_loop()
        attempts = _BIND_ATTEMPTS if self._port == 0 else 1
        for attempt in range(attempts):
            udp, _ = await loop.create_datagram_endpoint(
                lambda: _UdpProtocol(self), local_addr=(self._host, self._port)
            )
            port = udp.get_extra_info("sockname")[1]
            try:
                self._tcp = await asyncio.start_server(self._serve_tcp, self._host, port)
            except OSError:
                udp.close()
                # Port 0: the kernel's free UDP port may be taken for TCP; pick another.
                if attempt + 1 == attempts:
                    raise
                continue
            self._udp = udp
            self._address = (self._host, port)
            return

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._tcp is not None:
            self._tcp.close()
            # Abort rather than cancel the connection tasks: their reads then fail and
            # they end normally (asyncio's stream callback logs cancelled handler tasks).
            for writer in self._connections.values():
                writer.transport.abort()
            if self._connections:
                await asyncio.wait(set(self._connections), timeout=self._idle)
            await self._tcp.wait_closed()
            self._tcp = None
        self._address = None

    async def __aenter__(self) -> WorldDns:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- zones -----------------------------------------------------------------------------

    def add_zone(self, apex: str, spec: DnsSpec, sink: ObservationSink) -> None:
        """Serve ``spec`` at ``apex``; DnsSpecError names the first bad record or fault,
        DnsZoneError a bad or already-served apex."""
        self._zones.add(compile_zone(apex, spec, sink))

    def remove_zone(self, apex: str) -> None:
        self._zones.remove(apex)

    def txt(self, name: str) -> list[bytes] | None:
        """The TXT records at ``name`` as the world serves them (each record's strings joined),
        without a query on the wire or an observation; None when the name has none. For the
        suite's own lookups (a DKIM key while judging a report), which must not block the loop
        the server runs on."""
        resolution = self._zones.resolve(name.lower().rstrip("."), "TXT")
        records = [r.rdata for r in resolution.answers if isinstance(r.rdata, TxtData)]
        return [b"".join(data.strings) for data in records] or None

    # -- answering -------------------------------------------------------------------------

    def handle_packet(self, data: bytes, client: str, transport: Transport) -> bytes | None:
        """The answer to one DNS message, or None to stay silent. Never raises."""
        try:
            return self._answer(data, client, transport)
        except Exception as exc:  # a bug here must not take the world's DNS down
            log.exception("world DNS failed on a packet from %s", client)
            self._errors.append(exc)
            header = wire.peek_header(data)
            return wire.build_error(header, Rcode.SERVFAIL) if header is not None else None

    def _answer(self, data: bytes, client: str, transport: Transport) -> bytes | None:
        header = wire.peek_header(data)
        if header is None or header.qr:
            # Too short to answer, or a response: answering responses invites loops.
            return None
        if header.opcode != 0:  # RFC 1035 4.1.1: only QUERY is implemented
            self._log_unrouted(client, transport, Rcode.NOTIMP)
            return wire.build_error(header, Rcode.NOTIMP)
        try:
            query = wire.parse_query(data)
        except wire.DnsWireError:
            self._log_unrouted(client, transport, Rcode.FORMERR)
            return wire.build_error(header, Rcode.FORMERR)
        qtype = wire.qtype_name(query.qtype)
        if query.qclass not in (_CLASS_IN, _CLASS_ANY):
            resolution = Resolution(Rcode.REFUSED, aa=False)
        else:
            resolution = self._zones.resolve(query.qname, qtype)
        sink = resolution.zone.sink if resolution.zone is not None else self._unrouted
        if resolution.silent:
            self._emit(
                sink,
                DnsQuery(query.qname, qtype, client, transport, "TIMEOUT", 0, False, time.monotonic()),
            )
            return None
        reply = wire.build_response(
            query,
            rcode=resolution.rcode,
            aa=resolution.aa,
            # The world plays the SUT's resolver (it points its stub at us and trusts our
            # AD bit), so a recursion-desired query gets RA like a resolver would give.
            # No query is ever recursed: names outside the world are REFUSED.
            ra=query.header.rd,
            ad=resolution.ad,
            answers=resolution.answers,
            authority=resolution.authority,
            limit=wire.udp_limit(query) if transport == "udp" else wire.TCP_LIMIT,
        )
        self._emit(
            sink,
            DnsQuery(
                qname=query.qname,
                qtype=qtype,
                client=client,
                transport=transport,
                rcode=resolution.rcode.value,
                answers=len(resolution.answers),
                ad=resolution.ad,
                at=time.monotonic(),
            ),
        )
        return reply

    def _log_unrouted(self, client: str, transport: Transport, rcode: Rcode) -> None:
        self._emit(
            self._unrouted,
            DnsQuery("", "", client, transport, rcode.value, 0, False, time.monotonic()),
        )

    def _emit(self, sink: ObservationSink | None, event: DnsQuery) -> None:
        if sink is None:
            return
        try:
            sink(event)
        except Exception as exc:  # a broken sink is a bug to report, not a reason to crash
            log.exception("observation sink failed")
            self._errors.append(exc)

    # -- transports ------------------------------------------------------------------------

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        client = _client_text(writer.get_extra_info("peername"))
        if task is None or len(self._connections) >= self._max_tcp:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), self._idle)
            return
        self._connections[task] = writer
        try:
            while True:
                try:
                    # RFC 7766 6.2.1.1: a server closes idle connections after a timeout.
                    prefix = await asyncio.wait_for(reader.readexactly(2), self._idle)
                    # The two-octet prefix bounds every read at 65535 octets.
                    size = int.from_bytes(prefix, "big")
                    message = await asyncio.wait_for(reader.readexactly(size), self._idle)
                except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
                    return
                reply = self.handle_packet(message, client, "tcp")
                if reply is None:
                    continue  # a timeout fault or a dropped message: the client waits
                writer.write(len(reply).to_bytes(2, "big") + reply)
                try:
                    await asyncio.wait_for(writer.drain(), self._idle)
                except (TimeoutError, ConnectionError):
                    return
        finally:
            self._connections.pop(task, None)
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), self._idle)


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: WorldDns) -> None:
        self._server = server
        self._transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # create_datagram_endpoint hands a datagram transport, though not always an
        # instance of asyncio.DatagramTransport (the selector one is not, in 3.11).
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        reply = self._server.handle_packet(data, _client_text(addr), "udp")
        if reply is not None and self._transport is not None:
            self._transport.sendto(reply, addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable from a client that went away: nothing to do.
        log.debug("world DNS UDP error: %s", exc)


def _client_text(addr: object) -> str:
    if isinstance(addr, tuple) and len(addr) >= 2:
        host, port = addr[0], addr[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(addr)
