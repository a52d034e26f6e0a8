"""The world's scripted SMTP peers: the MX hosts a sending MTA (the SUT) delivers to.

``SmtpPeer`` listens on one address and runs a ``ScriptedSmtpSession`` (``smtp_session``) per
connection, scripted by the scenario's ``SmtpBehaviour``: the SMTP of RFC 5321, STARTTLS per
RFC 3207 sections 4 and 4.2, and the MAIL parameters of RFC 8689 section 2 (REQUIRETLS),
RFC 1870, 6152, 6531 and 3461 (``smtp_script``). It reports each session, TLS handshake and
accepted message to an ``ObservationSink``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable
from typing import Any

from conformance.world.observe import ObservationSink
from conformance.world.smtp_script import LINE_LIMIT, PeerFailure, PeerNotRunning
from conformance.world.smtp_session import ScriptedSmtpSession, SessionConfig
from conformance.world.spec import SmtpBehaviour

__all__ = ["LINE_LIMIT", "SmtpPeer"]

_STOP_TIMEOUT_S = 5.0  # how long stop() waits for sessions to wind down


class SmtpPeer:
    """A scripted SMTP server (one staged MX host), listening on one address."""

    def __init__(
        self,
        host_name: str,
        behaviour: SmtpBehaviour,
        tls_context_factory: Callable[[], ssl.SSLContext] | None,
        sink: ObservationSink,
        *,
        session_timeout_s: float = 30.0,
        max_message_bytes: int = 10 * 2**20,
    ) -> None:
        self._cfg = SessionConfig(host_name, behaviour, tls_context_factory, sink, session_timeout_s, max_message_bytes)
        self._server: asyncio.Server | None = None
        self._sessions: set[ScriptedSmtpSession] = set()
        self._failures: list[BaseException] = []

    @property
    def host_name(self) -> str:
        return self._cfg.host_name

    async def start(self, address: str, port: int) -> None:
        """Listen on ``address``:``port`` (0 for an ephemeral port)."""
        if self._server is not None:
            raise PeerNotRunning(f"{self._cfg.host_name}: already started")
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._new_session, host=address, port=port)

    @property
    def address(self) -> tuple[str, int]:
        if self._server is None or not self._server.sockets:
            raise PeerNotRunning(f"{self._cfg.host_name}: not started")
        name = self._server.sockets[0].getsockname()
        return str(name[0]), int(name[1])

    def _new_session(self) -> ScriptedSmtpSession:
        session = ScriptedSmtpSession(self._cfg, self._session_closed)
        self._sessions.add(session)
        return session

    def _session_closed(self, session: ScriptedSmtpSession) -> None:
        self._sessions.discard(session)
        self._failures.extend(session.failures)

    async def stop(self) -> None:
        """Stop listening, abort open sessions (each is still recorded, "peer-closed"), and
        re-raise as ``PeerFailure`` anything that failed inside the peer."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        sessions = list(self._sessions)
        for session in sessions:
            session.abort("peer-closed")
        waits: list[asyncio.Future[Any]] = [s.closed for s in sessions]
        waits += [t for s in sessions if (t := s.handler_task()) is not None]
        if waits:
            await asyncio.wait(waits, timeout=_STOP_TIMEOUT_S)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(server.wait_closed(), _STOP_TIMEOUT_S)
        for session in sessions:
            self._failures.extend(f for f in session.failures if f not in self._failures)
        if self._failures:
            first = self._failures[0]
            raise PeerFailure(f"{self._cfg.host_name}: {type(first).__name__}: {first}") from first
