"""The MTA-STS I/O adapters: the HTTPS policy fetch, the TXT lookup, and the discovery driver.

RFC 8461 section 3.3 (HTTPS policy fetching) and 3.2 (the well-known URL and media type):

* ``GET https://mta-sts.<domain>/.well-known/mta-sts.txt`` with SNI and ``Host`` set to the
  Policy Host (section 7.1 asks for SNI).
* The certificate MUST chain to a trusted root, be unexpired and be valid for the
  ``mta-sts`` DNS-ID; "Matching is performed only against the DNS-ID identifiers", so a name
  only in the subject CN fails (``hostname_checks_common_name = False``); a wildcard as the
  complete left-most label is allowed (OpenSSL's rule, partial wildcards refused).
* Only status 200 counts; "HTTP 3xx redirects MUST NOT be followed, and HTTP caching ...
  MUST NOT be used": a 3xx is a failure, and no conditional header is ever sent.
* Section 3.2: "senders SHOULD validate that the media type is text/plain". This adapter
  does: a missing or different media type fails the fetch (kind ``content-type``, reported as
  ``sts-policy-invalid``), which is what the SHOULD protects against (HTML or images served
  from a user-writable path). Parameters such as ``charset`` are ignored, as 3.2 says.
* "Senders MAY impose a timeout ... and/or a limit on the maximum size": the whole fetch
  (resolution, connect, handshake, response) has one deadline (default one minute) and the
  body a size cap (default 64 KiB); the read stops at the cap.

Every failure is a :class:`~reference_impl.mtasts.discovery.FetchResult` with a
:class:`~reference_impl.mtasts.discovery.FetchErrorKind`, never an exception; a bad local
configuration (an unreadable CA file) raises.

:func:`discover_policy` drives the sans-IO :class:`~reference_impl.mtasts.discovery.Discovery`
planner with a TXT lookup and a fetcher, and records its outcome in the
:class:`~reference_impl.mtasts.cache.PolicyCache`.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

import dns.asyncresolver
import dns.exception
import dns.name
import dns.resolver
import h11

from reference_impl.mtasts.cache import Clock, PolicyCache
from reference_impl.mtasts.discovery import (
    WELL_KNOWN_PATH,
    Discovery,
    DiscoveryConfig,
    FetchErrorKind,
    FetchResult,
    Finished,
    LookupTxt,
    PolicyOutcome,
    TxtAnswer,
    policy_host,
)

MAX_HEADER_BYTES = 16 * 1024
"""Cap on the status line plus headers (h11 refuses larger)."""

READ_CHUNK = 16 * 1024
CLOSE_TIMEOUT_S = 2.0
"""Bound on the TLS close_notify exchange after the response; then the socket is dropped."""
CLOSE_MARGIN_S = 0.01
"""The close ends this long before the fetch deadline, so the deadline never fires on it."""

USER_AGENT = "mailtls-conformance-reference/0.1"

Resolve = Callable[[str], Awaitable[list[str]]]
TxtLookup = Callable[[str], Awaitable[TxtAnswer]]
Fetcher = Callable[[str], Awaitable[FetchResult]]


def client_context(ca_file: Path | None) -> ssl.SSLContext:
    """The TLS client context for policy fetches (RFC 8461 section 3.3)."""
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file is not None else None)
    context.verify_mode = ssl.CERT_REQUIRED
    context.check_hostname = True
    # Section 3.3: "Matching is performed only against the DNS-ID identifiers" - never the CN.
    context.hostname_checks_common_name = False
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


async def fetch_policy(
    domain: str,
    *,
    connect: tuple[str, int] | None = None,
    port: int = 443,
    ca_file: Path | None,
    timeout_s: float = 60.0,
    max_bytes: int = 64 * 1024,
    resolve: Resolve | None = None,
) -> FetchResult:
    """Fetch the policy of ``domain`` from ``https://mta-sts.<domain>/.well-known/mta-sts.txt``.

    ``resolve`` turns the Policy Host name into addresses (default: the system resolver);
    ``connect`` overrides both the addresses and ``port`` (tests). SNI and Host are always
    the Policy Host name.
    """
    if timeout_s <= 0 or max_bytes < 0:
        raise ValueError("timeout_s must be positive and max_bytes non-negative")
    try:
        host = policy_host(domain)
    except ValueError as exc:
        return FetchResult.failure(FetchErrorKind.DNS, str(exc))
    context = client_context(ca_file)
    try:
        # Section 3.3: "Senders MAY impose a timeout on the HTTPS GET" - one deadline for all.
        async with asyncio.timeout(timeout_s) as scope:
            return await _fetch(host, connect, port, resolve, context, max_bytes, scope.when())
    except TimeoutError:
        return FetchResult.failure(FetchErrorKind.TIMEOUT, f"no complete response within {timeout_s:g} s")


async def _fetch(
    host: str,
    connect: tuple[str, int] | None,
    port: int,
    resolve: Resolve | None,
    context: ssl.SSLContext,
    max_bytes: int,
    deadline: float | None,
) -> FetchResult:
    if connect is not None:
        targets = [connect]
    else:
        addresses = await _resolve(host, port, resolve)
        if isinstance(addresses, FetchResult):
            return addresses
        targets = [(address, port) for address in addresses]
    streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    errors: list[str] = []
    for address, target_port in targets:
        try:
            streams = await asyncio.open_connection(address, target_port, ssl=context, server_hostname=host)
        except ssl.SSLCertVerificationError as exc:
            # Section 3.3: the certificate MUST be valid for the mta-sts DNS-ID, chain to a
            # trusted root and be non-expired.
            return FetchResult.failure(FetchErrorKind.TLS_VERIFY, f"{address}: {exc.verify_message}")
        except ssl.SSLError as exc:
            return FetchResult.failure(FetchErrorKind.TLS, f"{address}: {exc.reason or exc}")
        except OSError as exc:
            errors.append(f"{address} port {target_port}: {exc.strerror or exc}")
            continue
        break
    if streams is None:
        return FetchResult.failure(FetchErrorKind.CONNECT, "; ".join(errors) or "no address")
    reader, writer = streams
    graceful = False
    try:
        result = await _exchange(reader, writer, host, max_bytes)
        graceful = True
        return result
    finally:
        await _close(writer, graceful=graceful, deadline=deadline)


async def _resolve(host: str, port: int, resolve: Resolve | None) -> list[str] | FetchResult:
    try:
        if resolve is not None:
            addresses = list(await resolve(host))
        else:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
            addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    except (OSError, LookupError, ValueError, dns.exception.DNSException) as exc:
        return FetchResult.failure(FetchErrorKind.DNS, f"{host}: {exc}")
    if not addresses:
        return FetchResult.failure(FetchErrorKind.DNS, f"{host}: no address")
    return addresses


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, max_bytes: int
) -> FetchResult:
    conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEADER_BYTES)
    # Section 3.3: HTTP caching MUST NOT be used - no If-None-Match / If-Modified-Since.
    request = h11.Request(
        method="GET",
        target=WELL_KNOWN_PATH,
        headers=[
            ("Host", host),
            ("User-Agent", USER_AGENT),
            ("Accept", "text/plain"),
            ("Cache-Control", "no-cache"),
            ("Connection", "close"),
        ],
    )
    try:
        writer.write(conn.send(request) + conn.send(h11.EndOfMessage()))
        await writer.drain()
        body = bytearray()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await reader.read(READ_CHUNK))
            elif isinstance(event, h11.Response):
                refused = _check_head(event, max_bytes)
                if refused is not None:
                    return refused
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > max_bytes:
                    # Section 3.3: a limit on the maximum size of the response body.
                    return FetchResult.failure(FetchErrorKind.TOO_LARGE, f"body larger than {max_bytes} bytes")
            elif isinstance(event, h11.EndOfMessage):
                return FetchResult.success(bytes(body))
            elif isinstance(event, h11.ConnectionClosed):
                return FetchResult.failure(FetchErrorKind.HTTP_PROTOCOL, "connection closed before a response")
            # InformationalResponse (1xx): wait for the final response.
    except (h11.RemoteProtocolError, h11.LocalProtocolError) as exc:
        return FetchResult.failure(FetchErrorKind.HTTP_PROTOCOL, f"malformed or truncated response: {exc}")
    except ssl.SSLError as exc:
        return FetchResult.failure(FetchErrorKind.TLS, f"TLS error during the exchange: {exc.reason or exc}")
    except OSError as exc:
        return FetchResult.failure(FetchErrorKind.CONNECT, f"connection lost: {exc.strerror or exc}")


def _check_head(response: h11.Response, max_bytes: int) -> FetchResult | None:
    status = response.status_code
    if 300 <= status < 400:
        # Section 3.3: "HTTP 3xx redirects MUST NOT be followed".
        location = _header(response, b"location")
        return FetchResult.failure(
            FetchErrorKind.REDIRECT, f"status {status}, Location {_shown(location)} not followed"
        )
    if status != 200:
        # Section 3.3: "Policies fetched via HTTPS are only valid if the HTTP response code is 200".
        return FetchResult.failure(FetchErrorKind.HTTP_STATUS, f"status {status}")
    content_types = [value for name, value in response.headers if name == b"content-type"]
    media_type = media_type_of(content_types[0].decode("latin-1")) if len(content_types) == 1 else None
    # Section 3.2: "senders SHOULD validate that the media type is text/plain" (parameters,
    # charset included, are ignored). Enforced: a missing or other media type fails.
    if media_type != "text/plain":
        shown = ", ".join(_shown(v) for v in content_types) or "none"
        return FetchResult.failure(FetchErrorKind.CONTENT_TYPE, f"media type {shown}, not text/plain")
    length = _header(response, b"content-length")
    if length is not None and length.isdigit() and int(length) > max_bytes:
        return FetchResult.failure(FetchErrorKind.TOO_LARGE, f"Content-Length {int(length)} above {max_bytes} bytes")
    return None


def media_type_of(content_type: str) -> str:
    """The media type of a Content-Type value, lower case, without parameters (RFC 9110 8.3.1)."""
    return content_type.split(";", 1)[0].strip().lower()


def _header(response: h11.Response, name: bytes) -> bytes | None:
    for key, value in response.headers:
        if key == name:
            return bytes(value)
    return None


def _shown(value: bytes | None, limit: int = 120) -> str:
    """Untrusted header text, escaped and truncated for a log or a report."""
    if value is None:
        return "none"
    text = value[:limit].decode("latin-1")
    return repr(text) + ("..." if len(value) > limit else "")


async def _close(writer: asyncio.StreamWriter, *, graceful: bool, deadline: float | None) -> None:
    """Close the connection within CLOSE_TIMEOUT_S and before the fetch's deadline (a slow
    close never turns a complete response into a timeout); drop it if the peer dawdles."""
    now = asyncio.get_running_loop().time()
    close_by = now + CLOSE_TIMEOUT_S
    if deadline is not None:
        close_by = min(close_by, deadline - CLOSE_MARGIN_S)
    if not graceful or close_by <= now:
        writer.transport.abort()
        return
    writer.close()
    try:
        async with asyncio.timeout_at(close_by):
            await writer.wait_closed()
    except (TimeoutError, OSError):
        writer.transport.abort()
    except BaseException:
        writer.transport.abort()
        raise


# -- DNS adapters (dnspython) ----------------------------------------------------------------


def txt_lookup(resolver: dns.asyncresolver.Resolver) -> TxtLookup:
    """A TXT lookup for the planner over a dnspython resolver (CNAMEs followed, 3.1)."""

    async def lookup(name: str) -> TxtAnswer:
        try:
            answer = await resolver.resolve(dns.name.from_text(name), "TXT", search=False)
        except dns.resolver.NXDOMAIN:
            return TxtAnswer("nxdomain")
        except dns.resolver.NoAnswer:
            return TxtAnswer("nodata")
        except dns.resolver.LifetimeTimeout:
            return TxtAnswer("timeout")
        except dns.exception.DNSException:
            return TxtAnswer("servfail")
        rrs = tuple(tuple(bytes(s) for s in rdata.strings) for rdata in answer)
        return TxtAnswer("ok", rrs)

    return lookup


def address_resolver(resolver: dns.asyncresolver.Resolver) -> Resolve:
    """``resolve`` for :func:`fetch_policy`: the A and AAAA addresses of a name (IPv4 first)."""

    async def resolve(host: str) -> list[str]:
        addresses: list[str] = []
        for rdtype in ("A", "AAAA"):
            try:
                answer = await resolver.resolve(dns.name.from_text(host), rdtype, search=False)
            except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
                continue
            addresses.extend(str(rdata.address) for rdata in answer)
        return addresses

    return resolve


# -- the driver ------------------------------------------------------------------------------


async def discover_policy(
    domain: str,
    *,
    cache: PolicyCache,
    lookup: TxtLookup,
    fetch: Fetcher,
    clock: Clock,
    config: DiscoveryConfig | None = None,
) -> PolicyOutcome:
    """Run discovery for ``domain`` (RFC 8461 section 5.1 step 1) and update the cache.

    ``fetch`` takes the Policy Domain, e.g. ``functools.partial(fetch_policy, ca_file=...)``.
    """
    plan = Discovery(
        domain,
        cache_entry=cache.get(domain),
        last_failure=cache.last_failure(domain),
        now=clock.now(),
        config=config,
    )
    while not isinstance(request := plan.next_request(), Finished):
        if isinstance(request, LookupTxt):
            plan.take_txt(await lookup(request.name))
        else:
            plan.take_fetch(await fetch(request.domain))
    cache.record(plan.domain, request.outcome)
    return request.outcome
