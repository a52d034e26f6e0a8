"""Reading message content after 354 (RFC 5321 4.1.1.4, 4.5.2, 4.5.3.1.6).

``MessageDataReader`` takes lines from the server's input buffer, removes the transparency
dot (4.5.2), stops at ``CRLF.CRLF`` and bounds memory: at most ``max_size`` bytes of message
are kept and an over-long line is dropped while it arrives, only remembered as a flag.
"""

from __future__ import annotations

__all__ = ["MAX_TEXT_LINE", "MessageDataReader"]

MAX_TEXT_LINE = 1000  # RFC 5321 4.5.3.1.6, including CRLF


class MessageDataReader:
    """Consumes message lines from a shared buffer until the end-of-data line."""

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self.data = bytearray()
        self.oversize = False  # more than max_size bytes were sent (RFC 1870 6)
        self.long_line = False  # a line exceeded the text line limit (RFC 5321 4.5.3.1.6)
        self._in_long_line = False  # discarding the rest of an over-long line

    def consume(self, buffer: bytearray) -> bool:
        """Take complete lines out of ``buffer``; True once the end-of-data line was read
        (what follows it stays in ``buffer``).

        Only CRLF ends a line: taking a bare LF as a line end would let "<LF>.<LF>" end the
        data (SMTP smuggling), so bare CR and LF stay message content."""
        while True:
            end = buffer.find(b"\r\n")
            if end < 0:
                if len(buffer) > MAX_TEXT_LINE - 1:
                    self._in_long_line = True
                    buffer[:] = b"\r" if buffer.endswith(b"\r") else b""
                return False
            line = bytes(buffer[:end])
            del buffer[: end + 2]
            if self._in_long_line or len(line) + 2 > MAX_TEXT_LINE:
                self._in_long_line = False
                self.long_line = True
                continue
            if line == b".":
                return True
            if line.startswith(b"."):
                line = line[1:]  # RFC 5321 4.5.2: remove one leading dot
            if len(self.data) + len(line) + 2 > self.max_size:
                self.oversize = True
            else:
                self.data += line + b"\r\n"
