"""Routing and answers of the world's HTTPS server, as pure functions (no I/O).

Which staged host and route a request reaches, and what it is answered: the policy of an
MTA-STS policy host (RFC 8461 sections 3.2 and 3.3) with its scripted status, media type,
size padding and faults, or the TLSRPT collector's reply to a report POST (RFC 8460 section
5.4). ``conformance.world.https`` runs these over the network.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import h11

from conformance.errors import WorldError
from conformance.world.http_exchange import RequestHead, reason_phrase
from conformance.world.observe import ObservationSink
from conformance.world.spec import CertSpec, HttpFault, PolicyHost

# Framing belongs to the server: a scenario header could otherwise desynchronise h11.
_FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding", "connection"})


class HttpsStagingError(WorldError):
    """A policy host or report endpoint could not be staged (bad or conflicting spec)."""


@dataclass(frozen=True, slots=True)
class ReportEndpoint:
    path: str
    sink: ObservationSink
    status: int
    # The first ``fail_first`` POSTs get ``fail_status`` (RFC 8460 section 5.5: the sender retries).
    fail_first: int = 0
    fail_status: int = 503
    posts: list[int] = field(default_factory=lambda: [0])  # POSTs answered so far (shared by copies)

    def next_status(self) -> int:
        self.posts[0] += 1
        return self.fail_status if self.posts[0] <= self.fail_first else self.status


@dataclass(frozen=True, slots=True)
class StagedHost:
    """One staged name; replaced, never mutated, so a live connection keeps a consistent view."""

    name: str
    cert: CertSpec
    context: ssl.SSLContext
    sink: ObservationSink  # handshakes, and requests that no route below claims
    policy: PolicyHost | None = None
    policy_sink: ObservationSink | None = None
    policy_body: bytes = b""
    reports: tuple[ReportEndpoint, ...] = ()


@dataclass(frozen=True, slots=True)
class Route:
    """Where a request goes: the host it names, and the route on that host, if any."""

    name: str
    sink: ObservationSink | None
    host: StagedHost | None  # None: misdirected (421)
    policy: PolicyHost | None = None
    report: ReportEndpoint | None = None


@dataclass(frozen=True, slots=True)
class Reply:
    """What the server answers; ``status`` None means the connection is reset instead."""

    status: int | None
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    fault: HttpFault | None = None
    head_only: bool = False
    slow_interval_s: float = 0.0


def normalize_name(name: str) -> str:
    """Host names compare case-insensitively and without the root dot."""
    return name.strip().lower().rstrip(".")


def host_header_name(value: str | None) -> str | None:
    """The host part of a Host header (port and IPv6 brackets kept apart), normalized."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if value.startswith("["):
        return value[: value.find("]") + 1].lower() if "]" in value else value.lower()
    name, sep, port = value.rpartition(":")
    if sep and port.isdigit():
        value = name
    return normalize_name(value)


def pad_policy(body: bytes, size: int) -> bytes:
    """``body`` grown to ``size`` bytes with trailing padding lines (unchanged if not smaller).

    The policy grammar (RFC 8461 section 3.2) has no comments, so the padding is extension
    fields (``pad0001: xxx...``), which parsers MUST ignore: the padded policy stays valid
    and only its size is at stake. Lines use the body's own line ending. The result is
    exactly ``size`` bytes unless the gap is smaller than one minimal line (10 bytes), in
    which case it is that line."""
    if size <= len(body):
        return body
    eol = b"\n" if b"\n" in body and b"\r\n" not in body else b"\r\n"
    out = bytearray(body)
    if out and not out.endswith(b"\n"):
        out += eol
    index = 0
    while len(out) < size:
        index += 1
        prefix = b"pad%04d: " % index
        room = size - len(out) - len(prefix) - len(eol)
        value_len = max(1, min(room, 1000))
        if 0 < room - value_len < len(prefix) + len(eol) + 1:
            # Leave enough for one more line rather than a remainder too short for one.
            value_len = max(1, room - len(prefix) - len(eol) - 1)
        out += prefix + b"x" * value_len + eol
    return bytes(out)


def error_reply(status: int, *headers: tuple[str, str]) -> Reply:
    body = b"%d %s\n" % (status, reason_phrase(status))
    return Reply(status=status, headers=(("content-type", "text/plain"), *headers), body=body)


def target_matches(registered: str, target: str) -> bool:
    # Exact target, or the same path with a query string the registration did not name.
    if target == registered:
        return True
    path = urlsplit(target).path if "://" in target else target.split("?", 1)[0]
    return "?" not in registered and path == registered


def decide(target: Route, head: RequestHead) -> Reply:
    """The answer to a request whose body was accepted (pure: no I/O)."""
    if target.host is None:
        return error_reply(421)  # RFC 9110 section 15.5.20: not a host this server serves
    if target.report is not None:
        # RFC 8460 section 3: reports "should be submitted via POST".
        if head.method != "POST":
            return error_reply(405, ("allow", "POST"))
        return Reply(status=target.report.next_status())
    policy = target.policy
    if policy is None:
        return error_reply(404)
    if head.method not in ("GET", "HEAD"):  # RFC 8461 section 3.2: served via GET
        return error_reply(405, ("allow", "GET, HEAD"))
    if policy.fault is HttpFault.REDIRECT:
        # RFC 8461 section 3.3: "HTTP 3xx redirects MUST NOT be followed"; the test checks
        # that ``redirect_to`` is never requested.
        headers = (("location", policy.redirect_to), *policy.extra_headers)
        return Reply(status=policy.redirect_status, headers=headers, fault=HttpFault.REDIRECT)
    if policy.fault is HttpFault.RESET:
        return Reply(status=None, fault=HttpFault.RESET)
    headers = policy.extra_headers
    if policy.content_type is not None:  # RFC 8461 section 3.2: senders SHOULD check text/plain
        headers = (("content-type", policy.content_type), *headers)
    slow = policy.fault is HttpFault.SLOW_BODY
    return Reply(
        status=policy.status,
        headers=headers,
        body=target.host.policy_body,
        fault=HttpFault.SLOW_BODY if slow else None,
        head_only=head.method == "HEAD",
        slow_interval_s=policy.slow_interval_s,
    )


def check_headers(where: str, headers: tuple[tuple[str, str], ...]) -> None:
    for name, _ in headers:
        if name.lower() in _FRAMING_HEADERS:
            raise HttpsStagingError(f"{where}: header {name!r} is set by the server")
    try:  # h11 is the judge of what can go on the wire
        h11.Response(status_code=200, headers=list(headers))
    except h11.LocalProtocolError as exc:
        raise HttpsStagingError(f"{where}: invalid header: {exc}") from exc
