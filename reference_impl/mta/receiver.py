"""The inbound and submission SMTP handler: every accepted message goes to the durable queue.

RFC 5321 section 6.1 (reliable delivery): the 250 to the end of data is the moment the MTA
takes responsibility, so it is sent only after the queue committed the message to disk; if
the commit fails the client gets a 451 and keeps the message. Also RFC 5321 section 4.4
(every relay prepends a Received trace field), section 6.3 (a message with too many Received
fields is looping: 554 5.4.6) and section 4.1.1.3 (a forward path needs a domain here: this
MTA does no local delivery).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from email.utils import format_datetime

from reference_impl.mta.clock import Clock
from reference_impl.mta.dsn import sanitize_field_text
from reference_impl.mta.queue import MessageQueue, Recipient
from reference_impl.smtp.aio_server import SessionInfo
from reference_impl.smtp.replies import Reply
from reference_impl.smtp.server_events import Envelope

log = logging.getLogger(__name__)

# RFC 5321 section 6.3: a simple loop detector counts Received fields; 100 is its example.
MAX_RECEIVED_FIELDS = 100


def params_as_strings(params: Mapping[str, str | None]) -> tuple[str, ...]:
    """ESMTP parameters as they appear on the wire: ``KEY=value`` or ``KEY``."""
    return tuple(key if value is None else f"{key}={value}" for key, value in params.items())


def count_received(data: bytes) -> int:
    """How many Received fields the header section holds (case-insensitive name)."""
    end = data.find(b"\r\n\r\n")
    header = data if end < 0 else data[:end]
    return sum(1 for line in header.split(b"\r\n") if line[:9].lower() == b"received:")


def received_field(
    *, ehlo_name: str | None, peer: str | None, hostname: str, tls: bool, queue_id: str, at: float
) -> bytes:
    """The RFC 5321 section 4.4 trace field; names from the client are untrusted text."""
    helo = sanitize_field_text(ehlo_name or "unknown", 255).replace("(", "").replace(")", "")
    via = f" ([{sanitize_field_text(peer, 64)}])" if peer else ""
    protocol = "ESMTPS" if tls else "ESMTP"  # RFC 3848 section 3
    stamp = format_datetime(datetime.fromtimestamp(at, UTC))
    text = f"Received: from {helo}{via}\r\n\tby {hostname} with {protocol} id {queue_id};\r\n\t{stamp}\r\n"
    return text.encode("utf-8", "replace")


class QueueingHandler:
    """SMTP server handler that enqueues every message it accepts."""

    def __init__(
        self,
        queue: MessageQueue,
        *,
        hostname: str,
        clock: Clock,
        on_enqueued: Callable[[], None] = lambda: None,
        listener: str = "inbound",
    ) -> None:
        self._queue = queue
        self._hostname = hostname
        self._clock = clock
        self._on_enqueued = on_enqueued
        self.listener = listener

    async def on_mail(self, session: SessionInfo, reverse_path: str, params: Mapping[str, str | None]) -> Reply | None:
        return None  # the server core already checked syntax and parameters

    async def on_rcpt(self, session: SessionInfo, forward_path: str, params: Mapping[str, str | None]) -> Reply | None:
        local, at, domain = forward_path.rpartition("@")
        if not at or not local or not domain:
            # No local delivery here: a recipient without a domain cannot be routed.
            return Reply.make(550, "Recipient address needs a domain", "5.1.3")
        return None

    async def on_message(self, session: SessionInfo, envelope: Envelope) -> Reply:
        if count_received(envelope.data) >= MAX_RECEIVED_FIELDS:
            return Reply.make(554, "Too many hops, mail loop suspected", "5.4.6")  # RFC 5321 6.3
        queue_id = secrets.token_hex(6)
        trace = received_field(
            ehlo_name=session.ehlo_name,
            peer=session.peer[0] or None,
            hostname=self._hostname,
            tls=session.tls_active,
            queue_id=queue_id,
            at=self._clock.now(),
        )
        recipients: Iterable[Recipient] = (Recipient(r.address, params_as_strings(r.params)) for r in envelope.rcpt_tos)
        try:
            message_id = self._queue.enqueue(
                envelope.mail_from,
                list(recipients),
                trace + envelope.data,
                params_as_strings(envelope.mail_params),
            )
        except Exception:
            # RFC 5321 section 6.1: no 250 without the commit; the client keeps the message.
            log.exception("could not queue a message")
            return Reply.make(451, "Local error in processing, try again later", "4.3.0")
        self._on_enqueued()
        return Reply.make(250, f"Ok: queued as {message_id}.{queue_id}", "2.0.0")
