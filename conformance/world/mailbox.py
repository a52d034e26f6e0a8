"""The world's mailbox: an SMTP sink that collects bounces (DSNs) and emailed TLSRPT reports.

It accepts any message for any recipient, including the null reverse path ``<>`` that
non-delivery reports use (RFC 5321 section 4.5.5, RFC 3464 section 2), over plaintext or
STARTTLS (RFC 3207) when given a TLS context factory. After TLS it advertises REQUIRETLS,
because the NDN for a REQUIRETLS message is itself sent with REQUIRETLS (RFC 8689 section 5),
and DSN (RFC 3461) so that RET/ENVID/NOTIFY parameters are welcome.

It is an ``SmtpPeer`` with the well-behaved default script: the same aiosmtpd-based server,
transcript and limits, so nothing about SMTP is implemented twice.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable

from conformance.world.observe import DeliveredMessage, Observation, ObservationSink
from conformance.world.smtp_peer import SmtpPeer
from conformance.world.spec import Reply, SmtpBehaviour

_KEYWORDS = ("PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8", "DSN")


class Mailbox:
    """An SMTP server that accepts every message and hands it to ``sink``."""

    def __init__(
        self,
        host_name: str,
        sink: Callable[[DeliveredMessage], None],
        tls_context_factory: Callable[[], ssl.SSLContext] | None = None,
        *,
        observe: ObservationSink | None = None,
        session_timeout_s: float = 30.0,
        max_message_bytes: int = 10 * 2**20,
    ) -> None:
        """``sink`` gets each accepted message; ``observe``, if given, gets the sessions and
        TLS handshakes as well (for evidence when a report or bounce never arrives)."""
        self._sink = sink
        self._observe = observe
        size = f"SIZE {max_message_bytes}"
        behaviour = SmtpBehaviour(
            greeting=Reply(code=220, text="ESMTP world mailbox"),
            ehlo_keywords=(*_KEYWORDS, size),
            ehlo_keywords_tls=(*_KEYWORDS, size, "REQUIRETLS"),
            starttls=tls_context_factory is not None,
        )
        self._peer = SmtpPeer(
            host_name,
            behaviour,
            tls_context_factory,
            self._route,
            session_timeout_s=session_timeout_s,
            max_message_bytes=max_message_bytes,
        )

    def _route(self, observation: Observation) -> None:
        if isinstance(observation, DeliveredMessage):
            self._sink(observation)
        elif self._observe is not None:
            self._observe(observation)

    @property
    def host_name(self) -> str:
        return self._peer.host_name

    @property
    def address(self) -> tuple[str, int]:
        return self._peer.address

    async def start(self, address: str, port: int) -> None:
        await self._peer.start(address, port)

    async def stop(self) -> None:
        await self._peer.stop()
