"""Events shared by the SMTP client and server cores (RFC 5321, RFC 3207 4.2).

The cores hand these out from ``next_event()``. Events specific to one side live in
``client.py`` and ``server.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

from .replies import Reply

__all__ = ["ConnectionClosed", "Direction", "NeedData", "TlsUpgradeRequired", "TranscriptEntry"]

Direction = Literal["c2s", "s2c"]  # client to server, server to client


class TranscriptEntry(NamedTuple):
    """One line as it crossed the wire, with the TLS state it crossed in (evidence).

    A named tuple rather than a dataclass so that it unpacks as ``(direction, line, tls)``.
    """

    direction: Direction
    line: str
    tls: bool


@dataclass(frozen=True, slots=True)
class NeedData:
    """The core cannot go on without more bytes from the peer."""


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The session is over: the peer closed the stream, or QUIT was answered."""

    reason: str = "peer-closed"  # "peer-closed", "quit", "too-many-errors", ...


@dataclass(frozen=True, slots=True)
class TlsUpgradeRequired:
    """The 220 reply to STARTTLS was sent (server) or received (client): the adapter must now
    run the TLS handshake and then call ``tls_established()`` (RFC 3207 4)."""

    reply: Reply
