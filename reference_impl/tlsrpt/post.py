"""The HTTPS report submission (RFC 8460 sections 3 and 5.4): an asyncio adapter over h11.

* ``POST`` the report to the ``https:`` ``rua`` URI, with ``Content-Type``
  ``application/tlsrpt+gzip`` (or ``+json``, section 5.4), ``Host`` and SNI set to the URI's
  host (no SNI for an IP literal, RFC 6066 section 3).
* Section 5.4: "The receiving system MUST return a "successful" response ..., typically a 200
  or 201": any 2xx is a delivery; every other status, a malformed response, a timeout or a
  network error is a failed attempt (retried by the caller, section 5.5). Redirects are not
  followed: a report body is not re-posted to a place the policy domain did not publish.
* Port: an explicit port in the URI wins; otherwise the configured override (the test world
  listens on 8443 when unprivileged), else 443.
* Section 3: "Report submitters MAY ignore certificate validation errors when submitting
  reports via HTTPS POST." The reference does: a domain whose TLS is broken is exactly the
  one that needs its report. The first handshake verifies (chain to the trust anchors, the
  host as a DNS-ID, TLS 1.2 or higher); when it fails verification, the failure is logged
  and the report is posted over a second, unverified connection; the result says so
  (``certificate_error``). With ``verify_strict`` (the ``tlsrpt-strict-https`` mutant) a
  certificate error fails the attempt instead.
* The host is resolved through the caller's resolver (the MTA's own DNS server, never the
  system's). The whole attempt (resolution, connect, handshakes, request, response) has one
  deadline; the response is read up to a cap and then discarded.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import ssl
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import dns.exception
import h11

from reference_impl.mtasts.fetch import MAX_HEADER_BYTES, READ_CHUNK, USER_AGENT, Resolve, client_context
from reference_impl.tlsrpt.errors import TlsRptError

__all__ = ["DEFAULT_PORT", "PostResult", "PostTarget", "post_report", "post_target"]

log = logging.getLogger(__name__)

DEFAULT_PORT = 443
MAX_RESPONSE_BYTES = 64 * 1024
"""The collector's answer is read this far and thrown away; only its status matters."""


@dataclass(frozen=True, slots=True)
class PostTarget:
    """Where a report goes: host (for DNS, SNI and Host), port and request target."""

    host: str
    port: int
    target: str  # path and query, e.g. "/v1/tlsrpt?x=1"
    host_header: str  # host, with ":port" when the URI gave one

    @property
    def is_ip_literal(self) -> bool:
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            return False
        return True


@dataclass(frozen=True, slots=True)
class PostResult:
    """One POST attempt: delivered (a 2xx), the status if one came, and what happened."""

    delivered: bool
    status: int | None
    detail: str
    certificate_error: str | None = None  # a verification failure that was ignored (section 3)


def post_target(uri: str, port_override: int | None = None) -> PostTarget:
    """Split an ``https:`` URI (RFC 9110 section 4.2.2); :class:`TlsRptError` when unusable."""
    try:
        parts = urlsplit(uri)
        explicit_port = parts.port
    except ValueError as exc:
        raise TlsRptError("rua-https-unusable", "3", f"{uri!r}: {exc}") from None
    if parts.scheme.lower() != "https" or not parts.hostname:
        raise TlsRptError("rua-https-unusable", "3", f"{uri!r} is not an https URI with a host")
    host = parts.hostname.rstrip(".")
    try:
        host.encode("ascii")
    except UnicodeError:
        raise TlsRptError("rua-https-unusable", "3", f"{uri!r}: the host is not ASCII") from None
    port = explicit_port if explicit_port is not None else (port_override or DEFAULT_PORT)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    shown_host = f"[{host}]" if ":" in host else host
    host_header = f"{shown_host}:{explicit_port}" if explicit_port is not None else shown_host
    return PostTarget(host=host, port=port, target=target, host_header=host_header)


def _unverified_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


async def post_report(
    uri: str,
    body: bytes,
    media_type: str,
    *,
    resolve: Resolve,
    ca_file: Path | None,
    port_override: int | None = None,
    timeout_s: float = 60.0,
    verify_strict: bool = False,
) -> PostResult:
    """POST ``body`` to ``uri`` (section 5.4); never raises for a network or HTTP failure."""
    if timeout_s <= 0:
        raise ValueError("timeout_s must be positive")
    try:
        target = post_target(uri, port_override)
    except TlsRptError as exc:
        return PostResult(False, None, exc.detail)
    try:
        async with asyncio.timeout(timeout_s):
            return await _post(target, body, media_type, resolve, client_context(ca_file), verify_strict)
    except TimeoutError:
        return PostResult(False, None, f"no complete response within {timeout_s:g} s")


async def _addresses(target: PostTarget, resolve: Resolve) -> list[str] | str:
    if target.is_ip_literal:
        return [target.host]
    try:
        addresses = list(await resolve(target.host))
    except (OSError, LookupError, ValueError, dns.exception.DNSException) as exc:
        return f"{target.host}: {exc or type(exc).__name__}"
    return addresses or f"{target.host}: no address"


async def _connect(
    address: str, target: PostTarget, context: ssl.SSLContext
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    # SNI and the name checked are the URI's host; for an IP literal Python sends no SNI
    # (RFC 6066 section 3) and checks the certificate's IP addresses instead.
    return await asyncio.open_connection(address, target.port, ssl=context, server_hostname=target.host)


async def _post(
    target: PostTarget, body: bytes, media_type: str, resolve: Resolve, verified: ssl.SSLContext, strict: bool
) -> PostResult:
    addresses = await _addresses(target, resolve)
    if isinstance(addresses, str):
        return PostResult(False, None, f"DNS: {addresses}")
    errors: list[str] = []
    certificate_error: str | None = None
    for address in addresses:
        try:
            streams = await _connect(address, target, verified)
        except ssl.SSLCertVerificationError as exc:
            certificate_error = f"{address}: {exc.verify_message}"
            if strict:
                return PostResult(False, None, f"certificate not valid: {certificate_error}", certificate_error)
            # Section 3: "Report submitters MAY ignore certificate validation errors".
            log.warning(
                "TLSRPT endpoint %s: certificate not valid (%s); posting anyway", target.host, certificate_error
            )
            try:
                streams = await _connect(address, target, _unverified_context())
            except (ssl.SSLError, OSError) as retry_exc:
                errors.append(f"{address} port {target.port} (unverified): {retry_exc}")
                continue
        except (ssl.SSLError, OSError) as exc:
            errors.append(f"{address} port {target.port}: {exc}")
            continue
        reader, writer = streams
        try:
            result = await _exchange(reader, writer, target, body, media_type)
        finally:
            writer.transport.abort()  # the answer is in; no close_notify dance for a one-shot POST
        return PostResult(result.delivered, result.status, result.detail, certificate_error)
    return PostResult(False, None, "; ".join(errors) or "no address", certificate_error)


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, target: PostTarget, body: bytes, media_type: str
) -> PostResult:
    conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEADER_BYTES)
    request = h11.Request(
        method="POST",
        target=target.target,
        headers=[
            ("Host", target.host_header),
            ("User-Agent", USER_AGENT),
            ("Content-Type", media_type),
            ("Content-Length", str(len(body))),
            ("Connection", "close"),
        ],
    )
    status: int | None = None
    received = 0
    try:
        writer.write(conn.send(request) + conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage()))
        await writer.drain()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await reader.read(READ_CHUNK))
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                received += len(event.data)
                if received > MAX_RESPONSE_BYTES and status is not None:
                    break  # the status is known; the rest of the body does not matter
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                return PostResult(False, status, "connection closed before a complete response")
            # InformationalResponse (1xx, e.g. 100 Continue): wait for the final one.
    except (h11.RemoteProtocolError, h11.LocalProtocolError) as exc:
        return PostResult(False, status, f"malformed response: {exc}")
    except ssl.SSLError as exc:
        return PostResult(False, status, f"TLS error during the exchange: {exc.reason or exc}")
    except OSError as exc:
        return PostResult(False, status, f"connection lost: {exc.strerror or exc}")
    assert status is not None  # h11 yields a Response before any Data or EndOfMessage
    # Section 5.4: a "successful" response, typically 200 or 201; anything else is a failure.
    if 200 <= status < 300:
        return PostResult(True, status, f"status {status}")
    return PostResult(False, status, f"status {status}")
