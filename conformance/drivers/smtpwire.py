"""The suite's own small SMTP client for probes and message injection.

Deliberately independent of ``reference_impl``: a probe that judged the reference with the
reference's own parser could share its bugs. Byte-level control matters here (the STARTTLS
injection probe writes two commands in one segment), so this is a thin layer over asyncio
streams with bounded reads and a deadline on every wait, and a transcript for evidence.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import warnings
from dataclasses import dataclass, field

MAX_REPLY_LINES = 200
MAX_LINE = 4096


class WireError(Exception):
    """The SUT broke the conversation: closed, timed out, or sent something unparseable."""


@dataclass(frozen=True, slots=True)
class WireReply:
    code: int
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return " / ".join(self.lines)

    def keywords(self) -> list[str]:
        """EHLO keywords (upper case), the first line being the greeting name."""
        return [line.split(" ", 1)[0].upper() for line in self.lines[1:] if line]


@dataclass
class WireClient:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    timeout: float
    transcript: list[str] = field(default_factory=list)
    tls: bool = False

    @classmethod
    async def connect(cls, host: str, port: int, *, timeout: float) -> WireClient:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port, limit=MAX_LINE * 2), timeout)
        except (OSError, TimeoutError) as exc:
            raise WireError(f"cannot connect to {host}:{port}: {exc or 'timeout'}") from exc
        return cls(reader, writer, timeout)

    def _note(self, arrow: str, text: str) -> None:
        self.transcript.append(f"{arrow} {'[tls] ' if self.tls else ''}{text}")

    async def send_raw(self, data: bytes) -> None:
        for line in data.decode("latin-1").split("\r\n"):
            if line:
                self._note("C:", line)
        self.writer.write(data)
        try:
            await asyncio.wait_for(self.writer.drain(), self.timeout)
        except (OSError, TimeoutError) as exc:
            raise WireError(f"cannot send: {exc or 'timeout'}") from exc

    async def command(self, line: str) -> WireReply:
        await self.send_raw(line.encode("latin-1") + b"\r\n")
        return await self.reply()

    async def reply(self) -> WireReply:
        lines: list[str] = []
        code = 0
        for _ in range(MAX_REPLY_LINES):
            try:
                raw = await asyncio.wait_for(self.reader.readuntil(b"\n"), self.timeout)
            except TimeoutError as exc:
                raise WireError("no reply before the deadline") from exc
            except asyncio.IncompleteReadError as exc:
                raise WireError("the SUT closed the connection") from exc
            except asyncio.LimitOverrunError as exc:
                raise WireError(f"reply line longer than {MAX_LINE} bytes") from exc
            except (OSError, ssl.SSLError) as exc:
                raise WireError(f"connection error: {exc}") from exc
            text = raw.decode("latin-1").rstrip("\r\n")
            self._note("S:", text)
            if len(text) < 3 or not text[:3].isdigit() or (len(text) > 3 and text[3] not in " -"):
                raise WireError(f"malformed reply line {text[:80]!r}")
            if code and int(text[:3]) != code:
                raise WireError(f"reply code changed inside a multiline reply: {text[:80]!r}")
            code = int(text[:3])
            lines.append(text[4:])
            if len(text) == 3 or text[3] == " ":
                return WireReply(code, tuple(lines))
        raise WireError(f"reply longer than {MAX_REPLY_LINES} lines")

    async def starttls(self, context: ssl.SSLContext, server_hostname: str | None) -> None:
        try:
            await asyncio.wait_for(self.writer.start_tls(context, server_hostname=server_hostname), self.timeout)
        except TimeoutError as exc:
            raise WireError("TLS handshake timed out") from exc
        except (ssl.SSLError, OSError) as exc:
            raise WireError(f"TLS handshake failed: {exc!r}") from exc
        self.tls = True

    def tls_facts(self) -> tuple[str | None, str | None, bytes | None]:
        obj = self.writer.get_extra_info("ssl_object")
        if not isinstance(obj, ssl.SSLObject):
            return None, None, None
        cipher = obj.cipher()
        return obj.version(), cipher[0] if cipher else None, obj.getpeercert(binary_form=True)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.writer.wait_closed(), 1.0)


def unverified_context(
    minimum: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2,
    maximum: ssl.TLSVersion = ssl.TLSVersion.MAXIMUM_SUPPORTED,
) -> ssl.SSLContext:
    """A client context that accepts any certificate: probes learn the TLS facts first and
    judge the certificate separately, so one handshake tells both."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if minimum < ssl.TLSVersion.TLSv1_2:
        # OpenSSL 3 refuses TLS 1.0/1.1 at its default security level.
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        # Offering TLS 1.0/1.1 is the point of some probes; Python warns that they are deprecated.
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = minimum
        context.maximum_version = maximum
    return context
