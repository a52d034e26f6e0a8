"""Events and records of the SMTP server core (RFC 5321 4.1.1.2-4.1.1.4, RFC 3207 4.2).

``MailRequested``, ``RcptRequested`` and ``MessageReceived`` are decisions the application
answers with ``accept()``/``reject()``; ``SessionRecord`` is what the session knows now.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .events import ConnectionClosed, NeedData, TlsUpgradeRequired

__all__ = [
    "Envelope",
    "MailRequested",
    "MessageReceived",
    "RcptRequested",
    "Recipient",
    "ServerEvent",
    "SessionRecord",
]


@dataclass(frozen=True, slots=True)
class Recipient:
    address: str
    params: Mapping[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Envelope:
    """A complete message: envelope plus data, already dot-unstuffed, lines ending in CRLF."""

    mail_from: str  # "" for the null reverse-path
    mail_params: Mapping[str, str | None]
    rcpt_tos: tuple[Recipient, ...]
    data: bytes


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """What the session knows right now; reset by STARTTLS (RFC 3207 4.2)."""

    ehlo_name: str | None
    esmtp: bool
    tls_active: bool
    tls_version: str | None
    cipher: str | None


@dataclass(frozen=True, slots=True)
class MailRequested:
    reverse_path: str
    params: Mapping[str, str | None]


@dataclass(frozen=True, slots=True)
class RcptRequested:
    forward_path: str
    params: Mapping[str, str | None]


@dataclass(frozen=True, slots=True)
class MessageReceived:
    envelope: Envelope


ServerEvent = MailRequested | RcptRequested | MessageReceived | TlsUpgradeRequired | NeedData | ConnectionClosed
