"""SMTP replies: the record, enhanced status codes, an incremental parser and a formatter.

Implements RFC 5321 4.2 (reply syntax, multiline replies), 4.2.1 (reply code digits),
4.5.3.1.5 (reply line length), and RFC 3463 / RFC 2034 (enhanced status codes).

Reply text is decoded as UTF-8 with ``surrogateescape`` so that no byte a peer sent is lost
(RFC 6531 allows UTF-8 in replies) and ``format_reply`` reproduces the exact bytes. The text
is untrusted: whoever shows it must escape it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "MAX_REPLY_LINE",
    "MAX_REPLY_LINES",
    "EnhancedStatus",
    "Reply",
    "ReplyParser",
    "format_reply",
]

# RFC 5321 4.5.3.1.5: a reply line is at most 512 octets including the reply code and CRLF.
MAX_REPLY_LINE = 512
# RFC 5321 sets no limit on the number of lines; this bound keeps a hostile server from
# streaming an endless multiline reply at us (EHLO replies rarely exceed 20 lines).
MAX_REPLY_LINES = 100

# RFC 5321 4.2: Reply-code = %x32-35 %x30-35 %x30-39
_CODE_RE = re.compile(rb"[2-5][0-5][0-9]")
# RFC 3463 2: class "." subject "." detail, subject and detail 1*3digit.
_ENHANCED_RE = re.compile(r"([245])\.([0-9]{1,3})\.([0-9]{1,3})")


@dataclass(frozen=True, slots=True)
class EnhancedStatus:
    """An RFC 3463 enhanced status code such as 5.7.1."""

    klass: int
    subject: int
    detail: int

    @classmethod
    def parse(cls, text: str) -> EnhancedStatus | None:
        """The code in ``text`` (exactly "X.Y.Z"), or None when it is not one."""
        match = _ENHANCED_RE.fullmatch(text)
        if match is None:
            return None
        return cls(int(match[1]), int(match[2]), int(match[3]))

    def __str__(self) -> str:
        return f"{self.klass}.{self.subject}.{self.detail}"


@dataclass(frozen=True, slots=True)
class Reply:
    """One SMTP reply: a three-digit code and one text per line (without code or CRLF)."""

    code: int
    lines: tuple[str, ...] = ("",)

    def __post_init__(self) -> None:
        # RFC 5321 4.2: first digit 2-5, second 0-5, third 0-9.
        if not (200 <= self.code <= 559 and (self.code // 10) % 10 <= 5):
            raise LocalProtocolError(f"invalid reply code {self.code}", section="RFC 5321 4.2")
        if not self.lines:
            raise LocalProtocolError("a reply has at least one line", section="RFC 5321 4.2")

    @classmethod
    def make(cls, code: int, text: str | tuple[str, ...], enhanced: str | None = None) -> Reply:
        """Build a reply; with ``enhanced`` every line is prefixed by it (RFC 2034 4)."""
        lines = (text,) if isinstance(text, str) else text
        if enhanced is not None:
            lines = tuple(f"{enhanced} {line}" if line else enhanced for line in lines)
        return cls(code, lines)

    @property
    def text(self) -> str:
        """All lines joined by newlines."""
        return "\n".join(self.lines)

    @property
    def enhanced_status(self) -> EnhancedStatus | None:
        """The enhanced status code leading the first line, if its class matches the code.

        RFC 3463 2: the class digit of the enhanced code agrees with the first digit of the
        reply code; a mismatch means the text merely looks like one.
        """
        first = self.lines[0].split(" ", 1)[0]
        status = EnhancedStatus.parse(first)
        if status is None or status.klass != self.code // 100:
            return None
        return status

    @property
    def is_positive(self) -> bool:
        """2yz: positive completion."""
        return 200 <= self.code < 300

    @property
    def is_intermediate(self) -> bool:
        """3yz: positive intermediate (e.g. 354 after DATA)."""
        return 300 <= self.code < 400

    @property
    def is_transient(self) -> bool:
        """4yz: transient negative completion (try again later)."""
        return 400 <= self.code < 500

    @property
    def is_permanent(self) -> bool:
        """5yz: permanent negative completion."""
        return 500 <= self.code < 600

    def to_bytes(self) -> bytes:
        return format_reply(self)


def format_reply(reply: Reply) -> bytes:
    """The wire form of ``reply``: ``code-text`` CRLF for all lines but the last, ``code
    text`` CRLF for the last (RFC 5321 4.2.1). An empty text gives a bare code."""
    out = bytearray()
    last = len(reply.lines) - 1
    for index, line in enumerate(reply.lines):
        if "\r" in line or "\n" in line:
            raise LocalProtocolError("reply text must not contain CR or LF", section="RFC 5321 4.2")
        sep = " " if index == last else "-"
        encoded = line.encode("utf-8", "surrogateescape")
        out += b"%d%s%s\r\n" % (reply.code, sep.encode() if encoded or sep == "-" else b"", encoded)
    return bytes(out)


class ReplyParser:
    """Incremental parser for a stream of replies (client side).

    ``feed(data)`` buffers bytes; ``next_reply()`` returns the next complete reply or None.
    Lines end in CRLF; a bare LF is also accepted (the CR is then simply absent) because
    being lenient here cannot desynchronise the reply stream. Every line is bounded by
    ``max_line`` and every reply by ``max_lines``; beyond that ``RemoteProtocolError``.
    """

    def __init__(self, *, max_line: int = MAX_REPLY_LINE, max_lines: int = MAX_REPLY_LINES) -> None:
        self._buffer = bytearray()
        self._max_line = max_line
        self._max_lines = max_lines
        self._code: int | None = None  # code of the multiline reply in progress
        self._lines: list[str] = []

    def feed(self, data: bytes) -> None:
        self._buffer += data

    @property
    def in_progress(self) -> bool:
        """True when some bytes of an unfinished reply are buffered."""
        return bool(self._buffer) or self._code is not None

    def take_buffer(self) -> bytes:
        """Remove and return the unparsed bytes (the part of an unfinished reply is lost)."""
        data = bytes(self._buffer)
        self._buffer.clear()
        self._code = None
        self._lines = []
        return data

    def next_reply(self) -> Reply | None:
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                # The line limit counts the CRLF, so more than max_line - 1 bytes without a
                # LF can never become a valid line (RFC 5321 4.5.3.1.5).
                if len(self._buffer) > self._max_line - 1:
                    raise RemoteProtocolError(
                        f"reply line longer than {self._max_line} octets",
                        section="RFC 5321 4.5.3.1.5",
                    )
                return None
            if end + 1 > self._max_line:
                raise RemoteProtocolError(
                    f"reply line longer than {self._max_line} octets",
                    section="RFC 5321 4.5.3.1.5",
                )
            raw = bytes(self._buffer[:end])
            del self._buffer[: end + 1]
            reply = self._line(raw[:-1] if raw.endswith(b"\r") else raw)
            if reply is not None:
                return reply

    def _line(self, line: bytes) -> Reply | None:
        # RFC 5321 4.2: Reply-code [ SP textstring ] CRLF (last line) or
        # Reply-code "-" [ textstring ] CRLF (continuation lines).
        if len(line) < 3 or _CODE_RE.fullmatch(line[:3]) is None:
            raise RemoteProtocolError(f"malformed reply line {line[:40]!r}", section="RFC 5321 4.2")
        code = int(line[:3])
        sep = line[3:4]
        if sep not in (b"", b" ", b"-"):
            raise RemoteProtocolError(f"malformed reply line {line[:40]!r}", section="RFC 5321 4.2")
        if self._code is not None and code != self._code:
            # RFC 5321 4.2.1: all lines of a multiline reply carry the same code.
            raise RemoteProtocolError(
                f"multiline reply changed code from {self._code} to {code}",
                section="RFC 5321 4.2.1",
            )
        self._lines.append(line[4:].decode("utf-8", "surrogateescape"))
        if sep == b"-":
            self._code = code
            if len(self._lines) >= self._max_lines:
                raise RemoteProtocolError(f"reply longer than {self._max_lines} lines")
            return None
        lines = tuple(self._lines)
        self._code = None
        self._lines = []
        return Reply(code, lines)
