"""Shared helpers for the world's SMTP peer tests: a test CA and a raw SMTP client
("send X, expect Y"), every wait bounded."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass

import trustme

from conformance.world.observe import Observation, ObservationLog, SmtpSession

WAIT_S = 3.0  # deadline for anything a test waits for; never asserted on


@dataclass(frozen=True, slots=True)
class Answer:
    code: int
    lines: tuple[str, ...]  # the text of each line, after "ddd-" / "ddd "

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


class TestCa:
    """A trustme CA issuing server certificates and client contexts that trust it."""

    __test__ = False  # not a test class, despite the name

    def __init__(self) -> None:
        self.ca = trustme.CA()

    def server_factory(self, *names: str) -> Callable[[], ssl.SSLContext]:
        cert = self.ca.issue_cert(*(names or ("mx1.example.test",)))

        def factory() -> ssl.SSLContext:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            cert.configure_cert(ctx)
            return ctx

        return factory

    def client_context(self, maximum: ssl.TLSVersion | None = None) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        self.ca.configure_trust(ctx)
        if maximum is not None:
            ctx.maximum_version = maximum
        return ctx


class SmtpClient:
    """A minimal SMTP client over asyncio streams, every read bounded by ``WAIT_S``."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, address: tuple[str, int]) -> SmtpClient:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(*address), WAIT_S)
        return cls(reader, writer)

    async def line(self) -> bytes:
        return await asyncio.wait_for(self.reader.readline(), WAIT_S)

    async def reply(self) -> Answer:
        lines: list[str] = []
        while True:
            raw = await self.line()
            if not raw:
                raise ConnectionError(f"EOF inside a reply after {lines!r}")
            text = raw.decode("utf-8").rstrip("\r\n")
            lines.append(text[4:])
            if text[3:4] != "-":
                return Answer(int(text[:3]), tuple(lines))

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await asyncio.wait_for(self.writer.drain(), WAIT_S)

    async def command(self, line: str) -> Answer:
        await self.send(line.encode("utf-8") + b"\r\n")
        return await self.reply()

    async def starttls(self, ctx: ssl.SSLContext, server_hostname: str | None) -> None:
        await asyncio.wait_for(self.writer.start_tls(ctx, server_hostname=server_hostname), WAIT_S)

    async def at_eof(self) -> bool:
        """Whether the server closed: reads (and discards) what is left, up to EOF."""
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            while await asyncio.wait_for(self.reader.read(65536), WAIT_S):
                pass
        return True

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError, TimeoutError):
            await asyncio.wait_for(self.writer.wait_closed(), WAIT_S)


async def session_of(log: ObservationLog, count: int = 1) -> SmtpSession:
    """The ``count``-th SmtpSession recorded, waiting for it up to the deadline."""

    def found(lg: ObservationLog) -> SmtpSession | None:
        sessions = lg.of(SmtpSession)
        return sessions[count - 1] if len(sessions) >= count else None

    session = await log.wait_for(found, time.monotonic() + WAIT_S)
    assert session is not None, f"no SmtpSession #{count} in {log.events!r}"
    return session


def texts(session: SmtpSession, direction: str, *, tls: bool | None = None) -> list[str]:
    return [line.text for line in session.lines if line.direction == direction and (tls is None or line.tls == tls)]


def new_log() -> tuple[ObservationLog, Callable[[Observation], None]]:
    log = ObservationLog()
    return log, log.add
