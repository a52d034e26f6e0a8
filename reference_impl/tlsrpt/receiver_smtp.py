"""The SMTP listener of the report receiver: where a ``mailto:`` rua delivers (RFC 8460 3, 5.3).

An :class:`~reference_impl.smtp.aio_server.SmtpHandler` for the project's own SMTP server
(``reference_impl.smtp.aio_server``, STARTTLS offered when it has a TLS context). It accepts
any recipient in the configured report domain (RFC 5321 section 4.1.1.3: others get 550),
and hands every message to :meth:`~reference_impl.tlsrpt.receiver_mail.MailIntake.accept_mail`.

The answer to the message is 250 whether the report was stored or ignored: section 3 says
reports without a valid DKIM signature "MUST be ignored", and ignoring is dropping silently
(the store's log says why). Two exceptions, both temporary (451), so the sender keeps the
report and retries (section 5.5): the DKIM key could not be looked up (a DNS failure, not an
answer), or the store could not write the report (RFC 5321 section 6.1: no 250 before the
message is safe).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Mapping

from reference_impl.smtp.aio_server import SessionInfo
from reference_impl.smtp.replies import Reply
from reference_impl.smtp.server_events import Envelope
from reference_impl.tlsrpt.receiver_mail import MailIntake, MailVerdict

__all__ = ["ReportMailHandler"]

log = logging.getLogger(__name__)


class ReportMailHandler:
    """Accepts report mail for ``report_domain`` and gives it to the intake."""

    def __init__(self, intake: MailIntake, *, report_domain: str) -> None:
        self._intake = intake
        self.report_domain = report_domain.strip().rstrip(".").lower()
        # The latest verdicts, for tests and operators; the store's log keeps every one.
        self.verdicts: deque[MailVerdict] = deque(maxlen=1000)

    async def on_mail(self, session: SessionInfo, reverse_path: str, params: Mapping[str, str | None]) -> Reply | None:
        return None  # reports come from any reporting domain; DKIM decides, not the envelope

    async def on_rcpt(self, session: SessionInfo, forward_path: str, params: Mapping[str, str | None]) -> Reply | None:
        local, at, domain = forward_path.rpartition("@")
        if at and local and domain.rstrip(".").lower() == self.report_domain:
            return None
        return Reply.make(550, "No such report mailbox here", "5.1.1")

    async def on_message(self, session: SessionInfo, envelope: Envelope) -> Reply:
        try:
            # The DKIM lookups and the store may block: off the event loop.
            verdict = await asyncio.to_thread(self._intake.accept_mail, envelope.data)
        except OSError:
            log.exception("could not store a report message")
            return Reply.make(451, "Local error in processing, try again later", "4.3.0")
        self.verdicts.append(verdict)
        if verdict.temporary:
            return Reply.make(451, "DKIM key lookup failed, try again later", "4.4.3")
        if verdict.refused:
            return Reply.make(554, "Transaction failed", "5.3.0")  # recv-error-on-valid only
        # Section 3: an ignored report is dropped silently; the 250 tells the sender nothing.
        return Reply.make(250, "Report received", "2.0.0")
