"""What the world saw: the observation records every peer writes, and the per-scenario log.

Every peer of the world (DNS, HTTPS policy hosts, SMTP peers, the man in the middle, the
collectors) reports what it saw as one of the frozen records below, through an
``ObservationSink`` (a plain callable) that the world hands it when a scenario stages the
peer. The world routes each record to the ``ObservationLog`` of the scenario that owns the
name or address, so scenarios running at the same time never see each other's traffic.

A driver decides a verdict from the log. ``ObservationLog.wait_for`` returns as soon as a
predicate over the log holds, so an outcome that is already decided never waits out a timer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, TypeVar

Direction = Literal["c2s", "s2c"]
"""c2s: client (usually the SUT) to server (the world's peer); s2c: the other way."""


@dataclass(frozen=True, slots=True)
class TranscriptLine:
    """One protocol line as it crossed the wire, with the TLS state it crossed in."""

    direction: Direction
    text: str  # decoded as latin-1 so no byte is ever lost; CRLF stripped
    tls: bool
    at: float  # time.monotonic()


@dataclass(frozen=True, slots=True)
class DnsQuery:
    qname: str  # lower case, no trailing dot
    qtype: str  # "A", "MX", "TXT", ...
    client: str  # "ip:port"
    transport: Literal["udp", "tcp"]
    rcode: str  # "NOERROR", "NXDOMAIN", "SERVFAIL", or "TIMEOUT" when the world stayed silent
    answers: int
    ad: bool
    at: float


@dataclass(frozen=True, slots=True)
class HttpRequest:
    host: str  # the policy host name the request was routed to (from SNI, else Host)
    sni: str | None
    method: str
    target: str
    headers: tuple[tuple[str, str], ...]  # names lower case, in arrival order
    body: bytes
    status: int | None  # status sent back; None when the world answered with a fault (reset, ...)
    fault: str | None  # the scripted fault applied, if any
    client: str
    at: float


@dataclass(frozen=True, slots=True)
class TlsHandshake:
    """A TLS handshake a world peer took part in (as server), successful or not."""

    host: str
    sni: str | None
    ok: bool
    version: str | None  # "TLSv1.3", ...
    cipher: str | None
    error: str | None
    at: float


@dataclass(frozen=True, slots=True)
class DeliveredMessage:
    """A message a world SMTP peer accepted (after the final DATA reply was 250)."""

    host: str  # the peer's host name, e.g. "mx1.example.test"
    mail_from: str
    mail_options: tuple[str, ...]  # ESMTP parameters of MAIL FROM, e.g. ("REQUIRETLS", "BODY=8BITMIME")
    rcpt_tos: tuple[str, ...]
    data: bytes
    tls: bool
    tls_version: str | None
    cipher: str | None
    at: float


@dataclass(frozen=True, slots=True)
class SmtpSession:
    """A finished SMTP session on a world peer: the full transcript and its TLS facts."""

    host: str
    client: str
    lines: tuple[TranscriptLine, ...]
    tls_version: str | None  # None when the session never upgraded
    cipher: str | None
    sni: str | None
    delivered: tuple[DeliveredMessage, ...]
    started: float
    ended: float
    close_reason: str  # "quit", "client-closed", "peer-closed", "timeout", "error: ..."


@dataclass(frozen=True, slots=True)
class MitmAction:
    """Something the man in the middle did to a session, e.g. removed STARTTLS from EHLO."""

    host: str
    action: str  # "strip-starttls", "starttls-error", "inject-before-tls", ...
    detail: str
    at: float


@dataclass(frozen=True, slots=True)
class ReportPost:
    """A TLSRPT report POSTed to the world's HTTPS collector."""

    path: str
    content_type: str | None
    body: bytes
    sni: str | None
    client: str
    at: float
    host: str = ""  # the report endpoint's host name
    status: int | None = None  # what the collector answered


Observation = DnsQuery | HttpRequest | TlsHandshake | DeliveredMessage | SmtpSession | MitmAction | ReportPost
ObservationSink = Callable[[Observation], None]

T = TypeVar("T")
ObservationT = TypeVar("ObservationT", bound=Observation)


@dataclass
class ObservationLog:
    """Everything one scenario's staged world saw, in arrival order."""

    events: list[Observation] = field(default_factory=list)
    _changed: asyncio.Event | None = field(default=None, repr=False)

    def add(self, event: Observation) -> None:
        """The sink peers call; wakes every waiter so it re-checks its predicate."""
        self.events.append(event)
        if self._changed is not None:
            self._changed.set()

    def of(self, kind: type[ObservationT]) -> list[ObservationT]:
        return [e for e in self.events if isinstance(e, kind)]

    async def wait_for(self, predicate: Callable[[ObservationLog], T | None], deadline: float) -> T | None:
        """Wait until ``predicate(self)`` returns something other than None, or until the
        monotonic ``deadline``; returns the predicate's value or None at the deadline."""
        if self._changed is None:
            self._changed = asyncio.Event()
        while True:
            value = predicate(self)
            if value is not None:
                return value
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                return predicate(self)
