"""An asyncio protocol that hands every received byte to a sans-IO core (RFC 3207 4.2).

Why not ``asyncio.StreamReader``: bytes already sitting in a StreamReader's buffer when
``StreamWriter.start_tls`` is called are later returned as if they had arrived over TLS, and
no public API lets us see them first. That is exactly the STARTTLS command-injection hole
(CVE-2011-0411, RFC 8314 Appendix A). This protocol keeps its buffer in the open:
``take_buffered()`` returns everything received so far, so the adapter can give it to the
core (which discards it) right before ``loop.start_tls`` pauses reading.

Public APIs only: ``loop.create_connection``/``create_server``, ``loop.start_tls``.
"""

from __future__ import annotations

import asyncio
import ssl

from .errors import SmtpConnectionLost

# Stop reading from the socket while this much is buffered and unconsumed (back-pressure:
# a fast or hostile peer cannot make us buffer without bound).
HIGH_WATER = 256 * 1024


class CoreStream(asyncio.Protocol):
    """Buffered, flow-controlled byte stream over one transport."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._eof = False
        self._lost = False
        self._reading_paused = False
        self._writing_paused = False
        self._waiter: asyncio.Future[None] | None = None
        self._drain_waiter: asyncio.Future[None] | None = None
        self._lost_event = asyncio.Event()
        self.transport: asyncio.Transport | None = None

    # -- asyncio.Protocol ---------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) > HIGH_WATER and not self._reading_paused and self.transport:
            self.transport.pause_reading()
            self._reading_paused = True
        self._wake()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake()
        return False  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._eof = True
        self._wake()
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_result(None)
        self._lost_event.set()

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_result(None)

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    # -- reading ------------------------------------------------------------------------
    def take_buffered(self) -> bytes:
        """Everything received and not yet taken, without waiting."""
        data = bytes(self._buffer)
        self._buffer.clear()
        if self._reading_paused and self.transport is not None and not self._lost:
            self._reading_paused = False
            self.transport.resume_reading()
        return data

    async def read(self) -> bytes:
        """Wait for bytes and return all that are buffered; ``b""`` at end of stream."""
        while not self._buffer and not self._eof:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self.take_buffered()

    # -- writing ------------------------------------------------------------------------
    async def write(self, data: bytes) -> None:
        if not data:
            return
        if self._lost or self.transport is None or self.transport.is_closing():
            raise SmtpConnectionLost("connection closed while writing")
        self.transport.write(data)
        while self._writing_paused and not self._lost:
            self._drain_waiter = asyncio.get_running_loop().create_future()
            try:
                await self._drain_waiter
            finally:
                self._drain_waiter = None
        if self._lost:
            raise SmtpConnectionLost("connection lost while writing")

    # -- TLS and closing ----------------------------------------------------------------
    async def start_tls(
        self,
        context: ssl.SSLContext,
        *,
        server_side: bool,
        server_hostname: str | None,
        handshake_timeout: float,
    ) -> ssl.SSLObject | None:
        """Upgrade in place. The caller must have taken the buffer just before (no await
        in between): from here on the socket's bytes go to the TLS layer."""
        assert self.transport is not None
        self._reading_paused = False  # start_tls pauses and resumes reading itself
        new = await asyncio.get_running_loop().start_tls(
            self.transport,
            self,
            context,
            server_side=server_side,
            server_hostname=server_hostname,
            ssl_handshake_timeout=handshake_timeout,
        )
        if new is None:  # the transport closed during the handshake
            raise SmtpConnectionLost("connection closed during the TLS handshake")
        self.transport = new
        obj = new.get_extra_info("ssl_object")
        return obj if isinstance(obj, ssl.SSLObject) else None

    @property
    def is_lost(self) -> bool:
        return self._lost

    async def close(self, grace: float = 1.0) -> None:
        """Close, waiting at most ``grace`` seconds for a TLS close_notify; never raises."""
        transport = self.transport
        if transport is None or self._lost:
            return
        try:
            transport.close()
            async with asyncio.timeout(grace):
                await self._lost_event.wait()
        except (TimeoutError, OSError, RuntimeError):
            transport.abort()
            # abort() schedules connection_lost; let it run so the socket is really closed.
            try:
                async with asyncio.timeout(grace):
                    await self._lost_event.wait()
            except TimeoutError:
                pass
        except asyncio.CancelledError:
            transport.abort()
            raise
