"""Sans-IO SMTP client core (RFC 5321, RFC 2920 pipelining, RFC 3207 STARTTLS).

Implements RFC 5321 3.1 (wait for the greeting), 4.1.1 (command syntax), 4.1.4 (command
order), 4.5.2 (dot-stuffing), 4.5.3.1.4/4.5.3.1.6 (line limits); RFC 2920 3.1 (which commands
may be pipelined); RFC 3207 4.2 (after the 220 to STARTTLS: discard whatever arrived in
plaintext, forget the EHLO extensions, send EHLO again, never STARTTLS twice).

Use: the caller calls a send method (``ehlo``, ``mail``, ...), writes ``data_to_send()`` to
the socket, feeds what it reads to ``receive_data()`` (``b""`` for EOF) and pulls events with
``next_event()`` until ``NeedData``. Each reply is paired with the command it answers.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from .errors import LocalProtocolError, RemoteProtocolError
from .events import ConnectionClosed, NeedData, TlsUpgradeRequired
from .replies import MAX_REPLY_LINE, MAX_REPLY_LINES, Reply, ReplyParser

__all__ = [
    "ClientEvent",
    "ClientState",
    "EhloReply",
    "Greeting",
    "ReplyReceived",
    "SmtpClientConnection",
    "dot_stuff",
    "parse_ehlo_extensions",
]

# RFC 5321 4.5.3.1.4: a command line is at most 512 octets including CRLF.
MAX_COMMAND_LINE = 512
# RFC 5321 4.5.3.1.6: a text line is at most 1000 octets including CRLF.
MAX_TEXT_LINE = 1000
# Bound on plaintext kept between the 220 to STARTTLS and the end of the handshake; it is
# discarded anyway, so only its size is remembered beyond this.
MAX_PENDING_PLAINTEXT = 64 * 1024

# RFC 2920 3.1: these commands change state the client must see before sending more, so
# they end a pipelined group. STARTTLS too (RFC 3207 4.2), and the end of message data.
_GROUP_ENDERS = frozenset({"EHLO", "HELO", "DATA", "VRFY", "QUIT", "NOOP", "STARTTLS", "MESSAGE"})
# RFC 5321 4.1.1.1 ehlo-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
_EHLO_KEYWORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")
_LINE_ENDS = re.compile(rb"\r\n|\r|\n")
_LEADING_DOT = re.compile(rb"^\.", re.MULTILINE)


class ClientState(Enum):
    AWAIT_GREETING = "await-greeting"
    READY = "ready"
    TLS_PENDING = "tls-pending"  # 220 to STARTTLS received, handshake not yet reported
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class Greeting:
    """The server's opening reply (220, or 554 when it refuses service)."""

    reply: Reply


@dataclass(frozen=True, slots=True)
class EhloReply:
    """The reply to EHLO; ``extensions`` maps upper-cased keywords to their parameters
    (empty when the reply was negative)."""

    reply: Reply
    extensions: dict[str, str]


@dataclass(frozen=True, slots=True)
class ReplyReceived:
    """The reply to ``command`` ("MAIL", "RCPT", "DATA", "MESSAGE" for the end of data,
    ...); ``command`` is "" for an unsolicited 421 (RFC 5321 3.8)."""

    command: str
    reply: Reply


ClientEvent = Greeting | EhloReply | ReplyReceived | TlsUpgradeRequired | NeedData | ConnectionClosed


def parse_ehlo_extensions(reply: Reply) -> dict[str, str]:
    """Keywords of a positive EHLO reply (RFC 5321 4.1.1.1): the first line is the greeting,
    each further line ``keyword [SP params]``. Lines that are no keyword are skipped."""
    extensions: dict[str, str] = {}
    for line in reply.lines[1:]:
        keyword, _, params = line.strip().partition(" ")
        if _EHLO_KEYWORD.fullmatch(keyword):
            extensions.setdefault(keyword.upper(), params.strip())
    return extensions


def dot_stuff(message: bytes) -> bytes:
    """Message bytes as sent after 354: line ends made CRLF, a leading "." doubled
    (RFC 5321 4.5.2), a final CRLF added if missing, and the ".CRLF" terminator appended."""
    text = _LINE_ENDS.sub(b"\r\n", message)
    if text and not text.endswith(b"\r\n"):
        text += b"\r\n"
    return _LEADING_DOT.sub(b"..", text) + b".\r\n"


class SmtpClientConnection:
    """The client side of one SMTP session, without I/O."""

    def __init__(self, *, max_reply_line: int = MAX_REPLY_LINE, max_reply_lines: int = MAX_REPLY_LINES) -> None:
        self._parser = ReplyParser(max_line=max_reply_line, max_lines=max_reply_lines)
        self._out = bytearray()
        self._pending: deque[str] = deque()  # commands sent and not yet answered
        self._state = ClientState.AWAIT_GREETING
        self._eof = False
        self._extensions: dict[str, str] = {}
        self._tls_active = False
        self._need_ehlo = False
        self._in_transaction = False  # MAIL sent and the transaction not over
        self._have_rcpt = False
        self._data_ready = False  # 354 received: message_content() expected
        self._pending_plaintext = bytearray()
        self.discarded_plaintext = 0  # bytes dropped after the 220 to STARTTLS (evidence)

    # -- state the caller may read ------------------------------------------------------
    @property
    def state(self) -> ClientState:
        return self._state

    @property
    def tls_active(self) -> bool:
        return self._tls_active

    @property
    def extensions(self) -> dict[str, str]:
        """The extensions of the last positive EHLO in the current TLS state (a copy)."""
        return dict(self._extensions)

    @property
    def pending_plaintext(self) -> int:
        """Bytes received after the 220 to STARTTLS, held until ``tls_established()``."""
        return len(self._pending_plaintext)

    @property
    def awaiting_replies(self) -> int:
        return len(self._pending)

    # -- input --------------------------------------------------------------------------
    def receive_data(self, data: bytes) -> None:
        """Bytes read from the peer; ``b""`` means the peer closed the stream."""
        if not data:
            self._eof = True
            return
        if self._state is ClientState.TLS_PENDING:
            # RFC 3207 4.2 / RFC 8314 Appendix A: plaintext after the 220 to STARTTLS is not
            # part of the TLS session; keep it (bounded) only until tls_established().
            room = MAX_PENDING_PLAINTEXT - len(self._pending_plaintext)
            self._pending_plaintext += data[: max(room, 0)]
            self.discarded_plaintext += max(len(data) - max(room, 0), 0)
            return
        if self._state is not ClientState.CLOSED:
            self._parser.feed(data)

    def next_event(self) -> ClientEvent:
        if self._state is ClientState.CLOSED:
            return ConnectionClosed("closed")
        if self._state is ClientState.TLS_PENDING:
            return NeedData()
        try:
            reply = self._parser.next_reply()
            if reply is not None:
                return self._dispatch(reply)
        except RemoteProtocolError:
            # The reply stream cannot be trusted any more: nothing further is read.
            self._state = ClientState.CLOSED
            raise
        if self._eof:
            self._state = ClientState.CLOSED
            return ConnectionClosed("peer-closed")
        return NeedData()

    def _dispatch(self, reply: Reply) -> ClientEvent:
        if self._state is ClientState.AWAIT_GREETING:
            self._state = ClientState.READY
            return Greeting(reply)
        if not self._pending:
            # RFC 5321 3.8: a server may send 421 at any time before closing.
            if reply.code == 421:
                return ReplyReceived("", reply)
            raise RemoteProtocolError(f"unsolicited reply {reply.code}", section="RFC 5321 4.2")
        command = self._pending.popleft()
        if command == "EHLO":
            if not reply.is_positive:
                return EhloReply(reply, {})
            self._extensions = parse_ehlo_extensions(reply)
            self._need_ehlo = False
            return EhloReply(reply, dict(self._extensions))
        if command == "HELO" and reply.is_positive:
            self._extensions = {}
            self._need_ehlo = False
        elif command == "STARTTLS" and reply.code == 220:
            self._state = ClientState.TLS_PENDING
            # Whatever followed the 220 in the same read was sent before TLS began.
            self._pending_plaintext += self._parser.take_buffer()
            return TlsUpgradeRequired(reply)
        elif command == "MAIL" and not reply.is_positive:
            self._in_transaction = False
        elif command == "DATA" and reply.code == 354:
            self._data_ready = True
        elif command == "DATA" or command == "MESSAGE":
            self._end_transaction()
        return ReplyReceived(command, reply)

    # -- TLS ----------------------------------------------------------------------------
    def implicit_tls(self) -> None:
        """The connection is TLS from its first byte (RFC 8314 3.3): STARTTLS is illegal."""
        if self._state is not ClientState.AWAIT_GREETING:
            raise LocalProtocolError("implicit TLS must be declared before the greeting")
        self._tls_active = True

    def tls_established(self) -> None:
        """The adapter finished the TLS handshake after ``TlsUpgradeRequired``."""
        if self._state is not ClientState.TLS_PENDING:
            raise LocalProtocolError("tls_established() without a pending STARTTLS")
        self._discard_pending_plaintext()
        self._state = ClientState.READY
        self._tls_active = True
        # RFC 3207 4.2: the client MUST discard knowledge obtained from the server (the
        # extension list) and SHOULD send EHLO first; this core requires it.
        self._extensions = {}
        self._need_ehlo = True
        self._end_transaction()
        self._parser.take_buffer()
        if self._pending_plaintext:  # only a subclass that skipped the discard gets here
            self._parser.feed(bytes(self._pending_plaintext))
            self._pending_plaintext.clear()

    def _discard_pending_plaintext(self) -> None:
        """RFC 3207 4.2, RFC 8314 Appendix A: drop bytes received after the 220 to STARTTLS
        and before TLS; an attacker may have injected them to pose as post-TLS replies."""
        self.discarded_plaintext += len(self._pending_plaintext)
        self._pending_plaintext.clear()

    # -- output -------------------------------------------------------------------------
    def data_to_send(self) -> bytes:
        data = bytes(self._out)
        self._out.clear()
        return data

    def ehlo(self, name: str) -> None:
        self._check_argument(name, "EHLO name", token=True)
        self._send("EHLO", f"EHLO {name}", before_ehlo=True)
        self._end_transaction()

    def helo(self, name: str) -> None:
        self._check_argument(name, "HELO name", token=True)
        self._send("HELO", f"HELO {name}", before_ehlo=True)
        self._end_transaction()

    def starttls(self) -> None:
        if self._tls_active:
            # RFC 3207 4.2: a client MUST NOT start TLS when a TLS session is active.
            raise LocalProtocolError("TLS is already active", section="RFC 3207 4.2")
        if self._in_transaction:
            raise LocalProtocolError("STARTTLS inside a mail transaction", section="RFC 3207 4.2")
        self._send("STARTTLS", "STARTTLS")

    def mail(self, sender: str, params: Sequence[str] = ()) -> None:
        """``MAIL FROM:<sender> params``; ``sender`` "" is the null reverse-path."""
        if self._in_transaction:
            raise LocalProtocolError("MAIL inside a transaction", section="RFC 5321 4.1.4")
        self._check_argument(sender, "sender")
        for param in params:
            self._check_argument(param, "parameter", token=True)
        self._send("MAIL", " ".join([f"MAIL FROM:<{sender}>", *params]))
        self._in_transaction = True
        self._have_rcpt = False

    def rcpt(self, recipient: str, params: Sequence[str] = ()) -> None:
        if not self._in_transaction:
            raise LocalProtocolError("RCPT before MAIL", section="RFC 5321 4.1.4")
        self._check_argument(recipient, "recipient")
        if not recipient:
            raise LocalProtocolError("empty forward-path", section="RFC 5321 4.1.1.3")
        for param in params:
            self._check_argument(param, "parameter", token=True)
        self._send("RCPT", " ".join([f"RCPT TO:<{recipient}>", *params]))
        self._have_rcpt = True

    def data(self) -> None:
        if not self._have_rcpt:
            raise LocalProtocolError("DATA before RCPT", section="RFC 5321 4.1.4")
        self._send("DATA", "DATA")

    def message_content(self, message: bytes) -> None:
        """Send the message after the 354 reply, dot-stuffed and CRLF-terminated."""
        if not self._data_ready:
            raise LocalProtocolError("message content before a 354 reply", section="RFC 5321 4.1.1.4")
        wire = dot_stuff(message)
        longest = max((len(line) for line in wire.split(b"\r\n")), default=0)
        if longest + 2 > MAX_TEXT_LINE:
            raise LocalProtocolError(
                f"message line of {longest} octets exceeds the text line limit",
                section="RFC 5321 4.5.3.1.6",
            )
        self._data_ready = False
        self._out += wire
        self._pending.append("MESSAGE")

    def rset(self) -> None:
        self._send("RSET", "RSET", before_ehlo=True)
        self._end_transaction()

    def noop(self) -> None:
        self._send("NOOP", "NOOP", before_ehlo=True)

    def quit(self) -> None:
        self._send("QUIT", "QUIT", before_ehlo=True)

    # -- helpers ------------------------------------------------------------------------
    def _end_transaction(self) -> None:
        self._in_transaction = False
        self._have_rcpt = False
        self._data_ready = False

    @staticmethod
    def _check_argument(value: str, what: str, *, token: bool = False) -> None:
        # A CR or LF in an argument would let the caller smuggle a second command.
        if any(ch in value for ch in "\r\n\x00"):
            raise LocalProtocolError(f"{what} contains CR, LF or NUL", section="RFC 5321 4.1.1")
        if token and (not value or any(ch.isspace() for ch in value)):
            raise LocalProtocolError(f"{what} must be one non-empty word", section="RFC 5321 4.1.1")

    def _send(self, command: str, line: str, *, before_ehlo: bool = False) -> None:
        if self._state is ClientState.AWAIT_GREETING:
            raise LocalProtocolError("command before the greeting", section="RFC 5321 3.1")
        if self._state is ClientState.TLS_PENDING:
            raise LocalProtocolError("command during the TLS upgrade", section="RFC 3207 4.2")
        if self._state is ClientState.CLOSED:
            raise LocalProtocolError("the connection is closed")
        if self._data_ready:
            raise LocalProtocolError("message content expected after 354", section="RFC 5321 4.1.1.4")
        if self._need_ehlo and not before_ehlo:
            raise LocalProtocolError("EHLO required after STARTTLS", section="RFC 3207 4.2")
        if self._pending:
            # RFC 2920 3.1: pipelining only when advertised, and never after a group ender.
            if "PIPELINING" not in self._extensions:
                raise LocalProtocolError("a reply is outstanding and PIPELINING is not offered")
            if self._pending[-1] in _GROUP_ENDERS:
                raise LocalProtocolError(
                    f"{self._pending[-1]} must be the last command of a group",
                    section="RFC 2920 3.1",
                )
        wire = line.encode("utf-8") + b"\r\n"
        if len(wire) > MAX_COMMAND_LINE:
            raise LocalProtocolError(f"command line of {len(wire)} octets", section="RFC 5321 4.5.3.1.4")
        self._out += wire
        self._pending.append(command)
