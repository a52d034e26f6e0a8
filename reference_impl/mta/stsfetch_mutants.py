"""Deliberately broken MTA-STS policy fetchers, for the mutants (RFC 8461 sections 3.3, 7.1).

The reference fetch (:func:`reference_impl.mtasts.fetch.fetch_policy`) exposes no hook for the
rules these mutants break (status 200 only, no redirects, text/plain, DNS-ID-only certificate
check, SNI, no conditional requests), so each mutant swaps the whole fetcher
(``MtaVariant.sts_fetcher``) for :class:`BrokenFetch` with exactly one rule relaxed; everything
else (deadline, size cap, Host header, resolution through the MTA's DNS) is as in the
reference. Never used by the reference MTA.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import dns.exception
import h11

from reference_impl.mta.stsdiscover import FetchSettings
from reference_impl.mtasts.discovery import WELL_KNOWN_PATH, FetchErrorKind, FetchResult, policy_host
from reference_impl.mtasts.fetch import MAX_HEADER_BYTES, READ_CHUNK, USER_AGENT, Fetcher, client_context, media_type_of

MAX_REDIRECTS = 5


@dataclass(frozen=True, slots=True)
class BrokenFetch:
    """A policy fetch with one rule of section 3.3 / 7.1 relaxed (the field that is set)."""

    follow_redirects: bool = False  # 3.3: "HTTP 3xx redirects MUST NOT be followed"
    any_2xx: bool = False  # 3.3: "only valid if the HTTP response code is 200"
    any_content_type: bool = False  # 3.2: "SHOULD validate that the media type is text/plain"
    adjust_context: Callable[[ssl.SSLContext], None] | None = None  # 3.3: certificate checks
    send_sni: bool = True  # 7.1: SNI names the Policy Host
    extra_headers: tuple[tuple[str, str], ...] = ()  # 3.3: "HTTP caching ... MUST NOT be used"

    def __call__(self, settings: FetchSettings) -> Fetcher:
        async def fetch(domain: str) -> FetchResult:
            try:
                async with asyncio.timeout(settings.timeout_s):
                    return await self._fetch(policy_host(domain), WELL_KNOWN_PATH, settings, MAX_REDIRECTS)
            except TimeoutError:
                return FetchResult.failure(FetchErrorKind.TIMEOUT, "no complete response in time")
            except (ValueError, dns.exception.DNSException) as exc:
                # As the reference fetcher: a failed resolution is a fetch failure, not a crash,
                # so these mutants differ from the reference only in the rule they break.
                return FetchResult.failure(FetchErrorKind.DNS, str(exc) or type(exc).__name__)

        return fetch

    def _context(self, settings: FetchSettings) -> ssl.SSLContext:
        context = client_context(settings.ca_file)
        if not self.send_sni:
            context.check_hostname = False  # the name is checked below, after the handshake
        if self.adjust_context is not None:
            self.adjust_context(context)
        return context

    async def _fetch(self, host: str, path: str, settings: FetchSettings, hops: int) -> FetchResult:
        addresses = await settings.resolve(host)
        if not addresses:
            return FetchResult.failure(FetchErrorKind.DNS, f"{host}: no address")
        context = self._context(settings)
        try:
            reader, writer = await asyncio.open_connection(
                addresses[0], settings.port, ssl=context, server_hostname=host if self.send_sni else None
            )
        except ssl.SSLCertVerificationError as exc:
            return FetchResult.failure(FetchErrorKind.TLS_VERIFY, str(exc.verify_message))
        except (ssl.SSLError, OSError) as exc:
            return FetchResult.failure(FetchErrorKind.CONNECT, str(exc))
        try:
            if not self.send_sni and not _names_host(writer, host):
                return FetchResult.failure(FetchErrorKind.TLS_VERIFY, f"certificate not valid for {host}")
            status, headers, body = await _get(reader, writer, host, path, self.extra_headers, settings.max_bytes)
        except (h11.ProtocolError, ssl.SSLError, OSError) as exc:
            return FetchResult.failure(FetchErrorKind.HTTP_PROTOCOL, str(exc))
        finally:
            writer.transport.abort()
        if 300 <= status < 400:
            location = headers.get(b"location", b"").decode("latin-1")
            target = urlsplit(location)
            if not self.follow_redirects or hops <= 0 or target.scheme != "https" or not target.hostname:
                return FetchResult.failure(FetchErrorKind.REDIRECT, f"status {status}")
            return await self._fetch(target.hostname, target.path or "/", settings, hops - 1)
        if status != 200 and not (self.any_2xx and 200 <= status < 300):
            return FetchResult.failure(FetchErrorKind.HTTP_STATUS, f"status {status}")
        media_type = media_type_of(headers.get(b"content-type", b"").decode("latin-1"))
        if media_type != "text/plain" and not self.any_content_type:
            return FetchResult.failure(FetchErrorKind.CONTENT_TYPE, f"media type {media_type!r}")
        return FetchResult.success(body)


def _names_host(writer: asyncio.StreamWriter, host: str) -> bool:
    """DNS-ID check of the verified peer certificate (RFC 6125, wildcard as the whole left-most label)."""
    cert = writer.get_extra_info("peercert") or {}
    names = [str(value).lower() for kind, value in cert.get("subjectAltName", ()) if kind == "DNS"]
    wanted = host.lower()
    for name in names:
        if name == wanted:
            return True
        if name.startswith("*.") and "." in wanted and wanted.split(".", 1)[1] == name[2:]:
            return True
    return False


async def _get(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    host: str,
    path: str,
    extra: tuple[tuple[str, str], ...],
    max_bytes: int,
) -> tuple[int, dict[bytes, bytes], bytes]:
    conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEADER_BYTES)
    headers = [("Host", host), ("User-Agent", USER_AGENT), ("Connection", "close"), *extra]
    writer.write(conn.send(h11.Request(method="GET", target=path, headers=headers)) + conn.send(h11.EndOfMessage()))
    await writer.drain()
    status, response_headers, body = 0, {}, bytearray()
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await reader.read(READ_CHUNK))
        elif isinstance(event, h11.Response):
            status = event.status_code
            response_headers = {bytes(k): bytes(v) for k, v in event.headers}
        elif isinstance(event, h11.Data):
            body += event.data
            if len(body) > max_bytes:
                raise OSError("body too large")
        elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
            return status, response_headers, bytes(body)
