"""The world's HTTPS server: MTA-STS policy hosts and the TLSRPT report collector.

One listener serves every staged host. The TLS server name (SNI) picks the host, and so the
certificate it presents, good or bad as its ``CertSpec`` says; a missing or unknown name
gets the default host's certificate and the request is then routed by its Host header.

RFC 8461 section 3.3 (HTTPS policy fetching): a policy host answers ``GET`` of its path with
the scripted status, media type (section 3.2) and body, optionally padded past the 64 KiB
size a sender MAY enforce, or with a scripted fault: a 301 redirect (which senders MUST NOT
follow), a body trickled slower than the sender's timeout, or a TCP reset.

RFC 8460 section 5.4 (HTTPS transport of reports, the ``https:`` form of ``rua`` in section
3): the collector accepts a ``POST`` of any media type (whether the sender used
``application/tlsrpt+json`` or ``+gzip`` is judged from the observation), refuses bodies
above the "commonly observed receiver limit" of ten megabytes (section 5.2) with 413, and
answers with a scripted status (5.4 expects 200 or 201 from a working receiver).

Everything the server sees goes to the owning scenario's sink as ``TlsHandshake``,
``HttpRequest`` and ``ReportPost`` records; traffic for no staged host goes to the
``unrouted_sink``. Every connection has a deadline for the handshake and the request, every
write a timeout, and every read a size cap, so a hostile or hung client costs one bounded
task and never hangs or crashes the world.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from conformance.errors import WorldError
from conformance.world.http_exchange import ClientGone, Exchange, RequestHead, RequestRejected
from conformance.world.https_routing import (
    HttpsStagingError,
    Reply,
    ReportEndpoint,
    Route,
    StagedHost,
    check_headers,
    decide,
    error_reply,
    host_header_name,
    normalize_name,
    pad_policy,
    target_matches,
)
from conformance.world.observe import (
    HttpRequest,
    Observation,
    ObservationSink,
    ReportPost,
    TlsHandshake,
)
from conformance.world.spec import CertSpec, HttpFault, PolicyHost

REPORT_BODY_LIMIT = 10 * 1024 * 1024
"""RFC 8460 section 5.2: "a commonly observed receiver limit is ten megabytes"."""

OTHER_BODY_LIMIT = 64 * 1024
"""Request bodies anywhere else (a policy GET has none) are capped far lower."""

MAX_CONNECTIONS = 256
"""Connections served at once; more are dropped at accept so a flood stays bounded."""

ContextFactory = Callable[[str, CertSpec], ssl.SSLContext]
"""``context_for(host, cert_spec)``: a new server context holding that host's certificate."""

__all__ = [
    "MAX_CONNECTIONS",
    "OTHER_BODY_LIMIT",
    "REPORT_BODY_LIMIT",
    "ContextFactory",
    "HttpsStagingError",
    "WorldHttps",
    "host_header_name",
    "pad_policy",
]


@dataclass(slots=True)
class _Peer:
    """What one connection learnt so far (filled in by the SNI callback)."""

    client: str
    sni: str | None = None
    host: StagedHost | None = None


class WorldHttps:
    """The HTTPS listener shared by every staged policy host and report endpoint."""

    def __init__(
        self,
        context_for: ContextFactory,
        *,
        default_host: str = "world.invalid",
        unrouted_sink: ObservationSink | None = None,
        request_timeout_s: float = 10.0,
    ) -> None:
        if request_timeout_s <= 0:
            raise WorldError("request_timeout_s must be positive")
        self._context_for = context_for
        self._default_host = normalize_name(default_host)
        self._default_context = context_for(self._default_host, CertSpec())
        self._unrouted_sink = unrouted_sink
        self._request_timeout_s = request_timeout_s
        self._hosts: dict[str, StagedHost] = {}
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False
        self._errors: list[BaseException] = []

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self, address: str, port: int) -> None:
        if self._server is not None:
            raise WorldError("the HTTPS server is already started")
        self._closing = False
        # An OSError (address in use, not available) propagates as is: the world retries or
        # wraps it, knowing which address it asked for.
        self._server = await asyncio.start_server(self._accept, address, port)

    async def stop(self) -> None:
        """Stop listening, drop every open connection and wait until they are gone."""
        self._closing = True
        server, self._server = self._server, None
        if server is not None:
            server.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if server is not None:
            await server.wait_closed()

    @property
    def address(self) -> tuple[str, int]:
        if self._server is None or not self._server.sockets:
            raise WorldError("the HTTPS server is not started")
        host, port = self._server.sockets[0].getsockname()[:2]
        return str(host), int(port)

    def check_errors(self) -> None:
        """Re-raise (as WorldError) the first unexpected failure inside the server, if any:
        client misbehaviour is observed and answered, so anything here is a bug."""
        if self._errors:
            first = self._errors[0]
            raise WorldError(f"HTTPS server failed: {first!r}") from first

    # -- staging -------------------------------------------------------------------------

    def add_policy_host(self, spec: PolicyHost, sink: ObservationSink) -> None:
        if spec.fault is HttpFault.REFUSE:
            return  # nothing listens for this host: the caller publishes no reachable address
        name = self._checked_name(spec.name)
        if not spec.path.startswith("/"):
            raise HttpsStagingError(f"{name}: path {spec.path!r} does not start with '/'")
        if spec.fault is HttpFault.REDIRECT and not spec.redirect_to:
            raise HttpsStagingError(f"{name}: the redirect fault needs redirect_to")
        headers = spec.extra_headers
        if spec.content_type is not None:
            headers = (("content-type", spec.content_type), *headers)
        check_headers(name, headers)
        body = pad_policy(spec.body.encode("utf-8"), spec.pad_to_bytes)
        host = self._hosts.get(name) or self._new_host(name, spec.cert, sink)
        if host.policy is not None:
            raise HttpsStagingError(f"{name}: a policy host of that name is already staged")
        if host.cert != spec.cert:
            raise HttpsStagingError(f"{name}: already staged with another certificate")
        self._hosts[name] = replace(host, policy=spec, policy_sink=sink, policy_body=body)

    def add_report_endpoint(
        self,
        name: str,
        path: str,
        sink: ObservationSink,
        *,
        status: int = 200,
        cert: CertSpec = CertSpec(),  # noqa: B008 - CertSpec is frozen, sharing it is safe
        fail_first: int = 0,
        fail_status: int = 503,
    ) -> None:
        name = self._checked_name(name)
        if not path.startswith("/"):
            raise HttpsStagingError(f"{name}: path {path!r} does not start with '/'")
        if not 200 <= status <= 599:
            raise HttpsStagingError(f"{name}: a report endpoint answers a final status")
        host = self._hosts.get(name) or self._new_host(name, cert, sink)
        if host.cert != cert:
            raise HttpsStagingError(f"{name}: already staged with another certificate")
        if any(endpoint.path == path for endpoint in host.reports):
            raise HttpsStagingError(f"{name}: a report endpoint at {path} is already staged")
        endpoint = ReportEndpoint(path=path, sink=sink, status=status, fail_first=fail_first, fail_status=fail_status)
        self._hosts[name] = replace(host, reports=(*host.reports, endpoint))

    def remove_host(self, name: str) -> None:
        """Unstage a name (its policy and report endpoints); unknown names are ignored.
        Connections already routed to it finish with what they had."""
        self._hosts.pop(normalize_name(name), None)

    def _checked_name(self, name: str) -> str:
        name = normalize_name(name)
        if not name or "{" in name:
            raise HttpsStagingError(f"host name {name!r} is empty or has an unfilled placeholder")
        return name

    def _new_host(self, name: str, cert: CertSpec, sink: ObservationSink) -> StagedHost:
        return StagedHost(name=name, cert=cert, context=self._context_for(name, cert), sink=sink)

    # -- connections ---------------------------------------------------------------------

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._closing or len(self._tasks) >= MAX_CONNECTIONS:
            writer.transport.abort()
            return
        task = asyncio.get_running_loop().create_task(self._serve(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        conn = _Peer(client=f"{peer[0]}:{peer[1]}" if peer else "unknown")
        deadline = asyncio.get_running_loop().time() + self._request_timeout_s
        exchange = Exchange(reader, writer, io_timeout_s=self._request_timeout_s)
        try:
            if not await self._handshake(writer, conn, deadline):
                # The TLS layer never reached the stream, so its close would not complete.
                writer.transport.abort()
                return
            await self._exchange(exchange, conn, deadline)
            await exchange.close()
        except asyncio.CancelledError:
            writer.transport.abort()
            raise
        except Exception as exc:  # a bug of ours; kept for check_errors, never propagated
            self._errors.append(exc)
            writer.transport.abort()

    def _connection_context(self, conn: _Peer) -> ssl.SSLContext:
        # A fresh context per connection so the SNI callback can record what it saw for
        # exactly this connection. The context holds no certificate: the callback always
        # swaps in a host's context, which is where the certificate comes from. (Protocol
        # versions and options of the first context stay in force after the swap.)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)

        def pick(ssl_object: ssl.SSLObject, server_name: str | None, _: ssl.SSLContext) -> None:
            conn.sni = normalize_name(server_name) if server_name else None
            conn.host = self._hosts.get(conn.sni) if conn.sni else None
            # Unknown or missing SNI: the default certificate (cf. RFC 8461 section 7.1).
            ssl_object.context = conn.host.context if conn.host else self._default_context

        context.sni_callback = pick
        return context

    async def _handshake(self, writer: asyncio.StreamWriter, conn: _Peer, deadline: float) -> bool:
        loop = asyncio.get_running_loop()
        error: str | None = None
        try:
            async with asyncio.timeout_at(deadline):
                await writer.start_tls(
                    self._connection_context(conn),
                    ssl_handshake_timeout=max(deadline - loop.time(), 0.001),
                )
        except TimeoutError:
            error = "timeout"
        except (OSError, EOFError) as exc:  # ssl.SSLError is an OSError
            error = str(exc) or type(exc).__name__
        ssl_object = writer.get_extra_info("ssl_object") if error is None else None
        cipher = ssl_object.cipher() if ssl_object is not None else None
        record = TlsHandshake(
            host=conn.host.name if conn.host else self._default_host,
            sni=conn.sni,
            ok=error is None,
            version=ssl_object.version() if ssl_object is not None else None,
            cipher=cipher[0] if cipher else None,
            error=error,
            at=time.monotonic(),
        )
        self._emit(conn.host.sink if conn.host else self._unrouted_sink, record)
        return error is None

    def _resolve(self, conn: _Peer, head: RequestHead) -> Route:
        named = host_header_name(head.header("host"))
        if conn.host is not None:
            if named is not None and named != conn.host.name:
                # RFC 9110 section 7.4: the connection is authoritative for the SNI name
                # only, so another Host is misdirected (logged to the SNI host's scenario).
                return Route(name=named, sink=conn.host.sink, host=None)
            host: StagedHost | None = conn.host
        else:
            host = self._hosts.get(named) if named else None
        if host is None:
            name = named or conn.sni or self._default_host
            return Route(name=name, sink=self._unrouted_sink, host=None)
        for endpoint in host.reports:
            if target_matches(endpoint.path, head.target):
                return Route(name=host.name, sink=endpoint.sink, host=host, report=endpoint)
        policy = host.policy
        if policy is not None and target_matches(policy.path, head.target):
            return Route(name=host.name, sink=host.policy_sink, host=host, policy=policy)
        return Route(name=host.name, sink=host.sink, host=host)

    async def _exchange(self, exchange: Exchange, conn: _Peer, deadline: float) -> None:
        try:
            head = await exchange.read_head(deadline)
        except RequestRejected as rejected:
            # Garbage, oversized headers or a slowloris: answer if we still can, then close.
            reply = error_reply(rejected.status)
            sink = conn.host.sink if conn.host else self._unrouted_sink
            name = conn.host.name if conn.host else (conn.sni or self._default_host)
            self._log(sink, name, conn, None, b"", reply, time.monotonic())
            if exchange.can_respond:
                await self._send(exchange, reply)
            return
        except ClientGone:
            return
        at = time.monotonic()
        target = self._resolve(conn, head)
        limit = REPORT_BODY_LIMIT if target.report is not None else OTHER_BODY_LIMIT
        try:
            body = await exchange.read_body(limit, deadline)
        except RequestRejected as rejected:
            reply = error_reply(rejected.status)
            # The body is not kept: it was refused, and could be megabytes.
            self._log(target.sink, target.name, conn, head, b"", reply, at)
            await self._send(exchange, reply)
            return
        except ClientGone:
            self._log(target.sink, target.name, conn, head, b"", Reply(status=None), at)
            return
        reply = decide(target, head)
        if target.report is not None and head.method == "POST":
            self._emit(
                target.sink,
                ReportPost(
                    path=head.target,
                    content_type=head.header("content-type"),
                    body=body,
                    sni=conn.sni,
                    client=conn.client,
                    at=at,
                    host=target.name,
                    status=reply.status,
                ),
            )
        # Logged before answering, so a driver sees the request while a slow body trickles.
        self._log(target.sink, target.name, conn, head, body, reply, at)
        await self._send(exchange, reply)

    async def _send(self, exchange: Exchange, reply: Reply) -> None:
        try:
            if reply.status is None:
                exchange.reset()
            elif reply.fault is HttpFault.SLOW_BODY and not reply.head_only:
                await exchange.respond_slowly(reply.status, list(reply.headers), reply.body, reply.slow_interval_s)
            else:
                await exchange.respond(reply.status, list(reply.headers), reply.body, head_only=reply.head_only)
        except ClientGone:
            pass  # the client left mid-response; the request is already logged

    def _log(
        self,
        sink: ObservationSink | None,
        name: str,
        conn: _Peer,
        head: RequestHead | None,
        body: bytes,
        reply: Reply,
        at: float,
    ) -> None:
        record = HttpRequest(
            host=name,
            sni=conn.sni,
            method=head.method if head else "",
            target=head.target if head else "",
            headers=head.headers if head else (),
            body=body,
            status=reply.status,
            fault=reply.fault.value if reply.fault else None,
            client=conn.client,
            at=at,
        )
        self._emit(sink, record)

    def _emit(self, sink: ObservationSink | None, record: Observation) -> None:
        if sink is None:
            return
        try:
            sink(record)
        except Exception as exc:  # a broken sink must not take the connection down
            self._errors.append(exc)
