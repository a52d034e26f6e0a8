"""Sans-IO SMTP server core (RFC 5321, RFC 2920 pipelining, RFC 3207 STARTTLS).

Implements RFC 5321 3.3 and 4.1.4 (command order, 503), 4.1.1 (EHLO, HELO, MAIL, RCPT, DATA,
RSET, VRFY, NOOP, QUIT), 4.2.4 (500/501/502), 4.1.1.11 and 4.1.1.4 (555, 354, 554 for no
valid recipients), 4.5.2 (dot-unstuffing), 4.5.3.1 (line limits); RFC 1870 (SIZE); RFC 2034
(enhanced status codes); RFC 2920 (pipelined commands answered in order); RFC 3207 4 and 4.2
(STARTTLS offered only without TLS, 503 inside TLS, session reset after TLS and discard of
plaintext that followed the STARTTLS line: CVE-2011-0411); RFC 8689 sections 2 and 4.1
(REQUIRETLS advertised and its MAIL parameter accepted only inside TLS, the parameter takes
no value).

Transition table (``_IN_SEQUENCE``): a verb is accepted only in the listed states; anything
else gets 503. MAIL/RCPT/end-of-data are decisions of the application: the core emits
``MailRequested``/``RcptRequested``/``MessageReceived`` and waits for ``accept()``/``reject()``
before it reads the next pipelined command. Normative choices sit in small methods
(``_ehlo_keywords``, ``_advertise_starttls``, ``_starttls_refusal``,
``_discard_pending_plaintext``, ``_requiretls_available``, ``_advertise_requiretls``,
``_requiretls_problem``) so the test suite can build broken "mutant" subclasses.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from enum import Enum

from .commands import (
    MAX_COMMAND_LINE,
    CommandSyntaxError,
    parse_command,
    parse_mail_argument,
    parse_rcpt_argument,
)
from .data import MessageDataReader
from .errors import LocalProtocolError, RemoteProtocolError
from .events import ConnectionClosed, NeedData, TlsUpgradeRequired, TranscriptEntry
from .params import MAIL_PARAMS_OF, RCPT_PARAMS_OF, check_params
from .replies import Reply
from .server_events import (
    Envelope,
    MailRequested,
    MessageReceived,
    RcptRequested,
    Recipient,
    ServerEvent,
    SessionRecord,
)

__all__ = [
    "DEFAULT_EXTENSIONS",
    "Envelope",
    "MailRequested",
    "MessageReceived",
    "RcptRequested",
    "Recipient",
    "ServerEvent",
    "ServerState",
    "SessionRecord",
    "SmtpServerConnection",
]

DEFAULT_EXTENSIONS = ("PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8")
MAX_PENDING_PLAINTEXT = 64 * 1024  # kept after STARTTLS only to be discarded (or not, mutants)
MAX_INPUT_BUFFER = 4 * 1024 * 1024  # unprocessed input; the adapter reads far less at a time
MAX_TRANSCRIPT = 10_000
REQUIRETLS_LINE_ALLOWANCE = 11  # RFC 8689 section 2: " REQUIRETLS" lengthens MAIL FROM

# Which MAIL / RCPT parameters each advertised extension makes acceptable.
_NOT_IMPLEMENTED = frozenset({"EXPN", "TURN", "ETRN", "ATRN", "AUTH", "BDAT", "SEND", "SOML", "SAML"})


class ServerState(Enum):
    CONNECTED = "connected"  # greeting sent, no EHLO/HELO yet
    GREETED = "greeted"  # EHLO/HELO done, no transaction
    MAIL = "mail"  # MAIL accepted, no recipient yet
    RCPT = "rcpt"  # at least one RCPT accepted
    DATA = "data"  # reading message content after 354
    TLS_PENDING = "tls-pending"  # 220 to STARTTLS sent, handshake not yet reported
    CLOSED = "closed"


_COMMAND_STATES = frozenset({ServerState.CONNECTED, ServerState.GREETED, ServerState.MAIL, ServerState.RCPT})
# RFC 5321 4.1.4 and 3.3; RFC 3207 4 (STARTTLS after EHLO, outside a transaction).
_IN_SEQUENCE: dict[str, frozenset[ServerState]] = {
    "EHLO": _COMMAND_STATES,
    "HELO": _COMMAND_STATES,
    "RSET": _COMMAND_STATES,
    "NOOP": _COMMAND_STATES,
    "QUIT": _COMMAND_STATES,
    "VRFY": _COMMAND_STATES,
    "HELP": _COMMAND_STATES,
    "MAIL": frozenset({ServerState.GREETED}),
    "RCPT": frozenset({ServerState.MAIL, ServerState.RCPT}),
    "DATA": frozenset({ServerState.RCPT}),
    "STARTTLS": frozenset({ServerState.GREETED}),
}
_OUT_OF_SEQUENCE_TEXT = {
    "MAIL": "Nested MAIL command",
    "RCPT": "Need MAIL command",
    "DATA": "Need RCPT command",
    "STARTTLS": "STARTTLS not allowed inside a mail transaction",
}


class SmtpServerConnection:
    """The server side of one SMTP session, without I/O. The greeting is queued at once."""

    def __init__(
        self,
        hostname: str,
        *,
        tls_available: bool,
        tls_active: bool = False,
        extensions: Sequence[str] = DEFAULT_EXTENSIONS,
        max_message_size: int = 10 * 2**20,
        accepted_mail_params: frozenset[str] | None = None,
        accepted_rcpt_params: frozenset[str] | None = None,
        greeting: Reply | None = None,
        max_errors: int = 20,
        max_recipients: int = 1000,
    ) -> None:
        self.hostname = hostname
        self._tls_available = tls_available
        self._tls_active = tls_active
        self._tls_version: str | None = None
        self._cipher: str | None = None
        self._extensions = tuple(extensions)
        self._keywords = frozenset(e.split(" ", 1)[0].upper() for e in self._extensions) | {"SIZE"}
        self.max_message_size = max_message_size
        self._mail_params = (
            accepted_mail_params
            if accepted_mail_params is not None
            else frozenset(p for k in self._keywords for p in MAIL_PARAMS_OF.get(k, ()))
        )
        self._rcpt_params = (
            accepted_rcpt_params
            if accepted_rcpt_params is not None
            else frozenset(p for k in self._keywords for p in RCPT_PARAMS_OF.get(k, ()))
        )

        self._max_errors = max_errors
        self._max_recipients = max_recipients
        self._buffer = bytearray()
        self._out = bytearray()
        self._eof = False
        self._state = ServerState.CONNECTED
        self._decision: MailRequested | RcptRequested | MessageReceived | None = None
        self._closing: ConnectionClosed | None = None
        self._errors = 0
        self._long_line = False  # discarding the rest of an over-long line
        self.discarded_plaintext = 0
        self.transcript: list[TranscriptEntry] = []
        self._ehlo_name: str | None = None
        self._esmtp = False
        self._mail_from = ""
        self._mail_params_seen: Mapping[str, str | None] = {}
        self._recipients: list[Recipient] = []
        self._rcpt_attempted = False
        self._reader = MessageDataReader(self.max_message_size)
        self._send(greeting or Reply(220, (f"{hostname} ESMTP MailTLS reference ready",)))

    # -- state the application may read --------------------------------------------------
    @property
    def state(self) -> ServerState:
        return self._state

    @property
    def tls_active(self) -> bool:
        return self._tls_active

    @property
    def session(self) -> SessionRecord:
        return SessionRecord(self._ehlo_name, self._esmtp, self._tls_active, self._tls_version, self._cipher)

    # -- input / output -------------------------------------------------------------------
    def receive_data(self, data: bytes) -> None:
        """Bytes from the client; ``b""`` means it closed the stream."""
        if not data:
            self._eof = True
            return
        if self._state is ServerState.CLOSED:
            return
        if self._state is ServerState.TLS_PENDING:
            # Plaintext between STARTTLS and the handshake: kept, bounded, only so that
            # tls_established() can discard it (RFC 3207 4.2).
            room = max(MAX_PENDING_PLAINTEXT - len(self._buffer), 0)
            self._buffer += data[:room]
            self.discarded_plaintext += max(len(data) - room, 0)
            return
        if len(self._buffer) + len(data) > MAX_INPUT_BUFFER:
            raise RemoteProtocolError("client sent more than the input buffer holds")
        self._buffer += data

    def data_to_send(self) -> bytes:
        data = bytes(self._out)
        self._out.clear()
        return data

    def next_event(self) -> ServerEvent:
        if self._decision is not None:
            raise LocalProtocolError("answer the pending event with accept() or reject() first")
        if self._closing is not None:
            return self._closing
        if self._state is ServerState.TLS_PENDING:
            return NeedData()
        while True:
            if self._state is ServerState.DATA:
                data_event = self._process_data()
                if data_event is not None:
                    return data_event
                if self._state is ServerState.DATA:
                    break
                continue
            line = self._next_command_line()
            if line is None:
                break
            event = self._handle_line(line)
            if event is not None:
                return event
        if self._eof:
            self._state = ServerState.CLOSED
            self._closing = ConnectionClosed("peer-closed")
            return self._closing
        return NeedData()

    # -- decisions ------------------------------------------------------------------------
    def accept(self, reply: Reply | None = None) -> None:
        """Accept the pending MAIL, RCPT or message (default 250 reply)."""
        decision = self._take_decision()
        if isinstance(decision, MailRequested):
            self._mail_from, self._mail_params_seen = decision.reverse_path, decision.params
            self._recipients, self._rcpt_attempted = [], False
            self._state = ServerState.MAIL
            self._send(reply or self._reply(250, "2.1.0", "Sender OK"))
        elif isinstance(decision, RcptRequested):
            self._recipients.append(Recipient(decision.forward_path, decision.params))
            self._rcpt_attempted = True
            self._state = ServerState.RCPT
            self._send(reply or self._reply(250, "2.1.5", "Recipient OK"))
        else:
            self._end_transaction()
            self._send(reply or self._reply(250, "2.0.0", "OK: queued"))

    def reject(self, reply: Reply) -> None:
        """Refuse the pending MAIL, RCPT or message with a 4xx/5xx ``reply``."""
        if reply.code < 400:
            raise LocalProtocolError("reject() needs a 4xx or 5xx reply")
        decision = self._take_decision()
        if isinstance(decision, RcptRequested):
            self._rcpt_attempted = True
        elif isinstance(decision, MessageReceived):
            self._end_transaction()
        self._send(reply)

    def send_reply(self, reply: Reply) -> None:
        """Answer the pending event with ``reply``: 2xx accepts, anything else rejects."""
        if reply.is_positive:
            self.accept(reply)
        else:
            self.reject(reply)

    def _take_decision(self) -> MailRequested | RcptRequested | MessageReceived:
        if self._decision is None:
            raise LocalProtocolError("no pending event to answer")
        decision, self._decision = self._decision, None
        return decision

    # -- TLS ------------------------------------------------------------------------------
    def tls_established(self, version: str | None, cipher: str | None) -> None:
        """The adapter completed the handshake after ``TlsUpgradeRequired``."""
        if self._state is not ServerState.TLS_PENDING:
            raise LocalProtocolError("tls_established() without a pending STARTTLS")
        self._discard_pending_plaintext()
        self._tls_active = True
        self._tls_version, self._cipher = version, cipher
        # RFC 3207 4.2: back to the state after the greeting; forget all the client told us.
        self._reset_session()
        self._state = ServerState.CONNECTED

    def record_tls(self, version: str | None, cipher: str | None) -> None:
        """Note the TLS parameters of an implicit-TLS session (RFC 8314 3.3)."""
        self._tls_version, self._cipher = version, cipher

    def _discard_pending_plaintext(self) -> None:
        """RFC 3207 4.2, CVE-2011-0411: bytes that followed the STARTTLS line arrived before
        TLS; treating them as commands of the TLS session would let an attacker inject."""
        self.discarded_plaintext += len(self._buffer)
        self._buffer.clear()
        self._long_line = False

    # -- normative decisions (override points for mutants) ---------------------------------
    def _advertise_starttls(self) -> bool:
        # RFC 3207 4.2: a server MUST NOT return STARTTLS in the EHLO after TLS is active.
        return self._tls_available and not self._tls_active

    def _ehlo_keywords(self) -> list[str]:
        keywords = list(self._extensions)
        if not any(k.upper().startswith("SIZE") for k in keywords):
            keywords.append(f"SIZE {self.max_message_size}")  # RFC 1870 4
        if self._advertise_starttls():
            keywords.append("STARTTLS")
        if self._advertise_requiretls() and "REQUIRETLS" not in (k.upper() for k in keywords):
            keywords.append("REQUIRETLS")  # RFC 8689 section 2
        return keywords

    def _requiretls_available(self) -> bool:
        # RFC 8689 section 2: REQUIRETLS is offered "only in the EHLO response that follows
        # STARTTLS" (or inside implicit TLS, RFC 8314): a cleartext session cannot honour it.
        return self._tls_active

    def _advertise_requiretls(self) -> bool:
        return self._requiretls_available()

    def _requiretls_problem(self, value: str | None) -> Reply | None:
        """The refusal of ``MAIL FROM:<..> REQUIRETLS[=value]``, or None to accept it."""
        if not self._requiretls_available():
            # RFC 8689 leaves the reply open; RFC 3207 section 4 answers a command that needs
            # TLS with 530, and RFC 3463/5248 X.7.10 is "Encryption needed".
            return self._reply(530, "5.7.10", "REQUIRETLS needs a TLS session (issue STARTTLS first)")
        if value is not None:
            # RFC 8689 section 2: "requiretls-param = "REQUIRETLS"": no value (RFC 5321 4.1.1.11).
            return self._reply(501, "5.5.4", "REQUIRETLS takes no value")
        return None

    def _starttls_refusal(self) -> Reply | None:
        if self._tls_active:
            # RFC 3207 4.2 (with the brief of this suite): STARTTLS inside TLS gets 503.
            return self._reply(503, "5.5.1", "TLS already active")
        if not self._tls_available:
            return self._reply(502, "5.5.1", "STARTTLS not available")
        return None

    # -- helpers --------------------------------------------------------------------------
    def _line_limit(self, line: bytes) -> int:
        """RFC 5321 4.5.3.1.4 (512 octets with CRLF), raised by 11 octets for a MAIL command
        that carries REQUIRETLS where the extension is offered (RFC 8689 section 2, item 5)."""
        if line[:5].upper() == b"MAIL " and b"REQUIRETLS" in line.upper() and self._requiretls_available():
            return MAX_COMMAND_LINE + REQUIRETLS_LINE_ALLOWANCE
        return MAX_COMMAND_LINE

    def _reset_session(self) -> None:
        self._ehlo_name = None
        self._esmtp = False
        self._end_transaction()

    def _end_transaction(self) -> None:
        self._mail_from = ""
        self._mail_params_seen = {}
        self._recipients = []
        self._rcpt_attempted = False
        self._reader = MessageDataReader(self.max_message_size)
        if self._state not in (ServerState.CLOSED, ServerState.TLS_PENDING):
            greeted = self._ehlo_name is not None
            self._state = ServerState.GREETED if greeted else ServerState.CONNECTED

    def _reply(self, code: int, enhanced: str, text: str) -> Reply:
        # RFC 2034 3: enhanced codes once negotiated through EHLO.
        if self._esmtp and "ENHANCEDSTATUSCODES" in self._keywords:
            return Reply.make(code, text, enhanced)
        return Reply.make(code, text)

    def _send(self, reply: Reply) -> None:
        self._out += reply.to_bytes()
        last = len(reply.lines) - 1
        for i, text in enumerate(reply.lines):
            self._log("s2c", f"{reply.code}{' ' if i == last else '-'}{text}")

    def _log(self, direction: str, line: str) -> None:
        if len(self.transcript) < MAX_TRANSCRIPT:
            entry = TranscriptEntry("s2c" if direction == "s2c" else "c2s", line, self._tls_active)
            self.transcript.append(entry)

    def _error(self, reply: Reply) -> ConnectionClosed | None:
        """Send an error reply; after too many, close with 421 (a hostile client)."""
        self._send(reply)
        self._errors += 1
        if self._errors < self._max_errors:
            return None
        self._send(self._reply(421, "4.7.0", "Too many errors, closing"))
        self._state = ServerState.CLOSED
        self._closing = ConnectionClosed("too-many-errors")
        return self._closing

    def _next_command_line(self) -> bytes | None:
        """The next command line without CRLF, or None. Over-long lines are answered here.

        A bare LF also ends a command line: harmless for commands, unlike message data."""
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                if len(self._buffer) > MAX_COMMAND_LINE + REQUIRETLS_LINE_ALLOWANCE - 1:
                    self._long_line = True  # keep nothing of a line we will refuse anyway
                    self._buffer.clear()
                return None
            line = bytes(self._buffer[:end])
            del self._buffer[: end + 1]
            line = line.removesuffix(b"\r")
            if self._long_line or len(line) + 2 > self._line_limit(line):
                self._long_line = False
                self._log("c2s", line[:80].decode("latin-1") + "...")
                # RFC 5321 4.5.3.1.10: "500 Line too long."
                if self._error(self._reply(500, "5.5.2", "Line too long")) is not None:
                    return None
                continue
            return line

    def _handle_line(self, line: bytes) -> ServerEvent | None:
        self._log("c2s", line.decode("latin-1"))
        try:
            command = parse_command(line, self._line_limit(line))
        except CommandSyntaxError as exc:
            return self._error(self._reply(exc.code, exc.enhanced, exc.message))
        verb, argument = command.verb, command.argument
        if verb in _NOT_IMPLEMENTED:
            return self._error(self._reply(502, "5.5.1", "Command not implemented"))
        states = _IN_SEQUENCE.get(verb)
        if states is None:
            return self._error(self._reply(500, "5.5.2", "Command unrecognized"))
        if self._state not in states:
            return self._out_of_sequence(verb)
        handler = getattr(self, f"_cmd_{verb.lower()}")
        event: ServerEvent | None = handler(argument)
        return event

    def _out_of_sequence(self, verb: str) -> ServerEvent | None:
        if verb == "DATA" and self._state is ServerState.MAIL and self._rcpt_attempted:
            # RFC 2920 3.1 / RFC 5321 3.3: every RCPT failed.
            return self._error(self._reply(554, "5.5.1", "No valid recipients"))
        if self._state is ServerState.CONNECTED:
            text = "Send EHLO/HELO first"
        else:
            text = _OUT_OF_SEQUENCE_TEXT.get(verb, "Bad sequence of commands")
        # RFC 5321 4.1.4: commands out of order get 503.
        return self._error(self._reply(503, "5.5.1", text))

    # -- commands -------------------------------------------------------------------------
    def _cmd_ehlo(self, argument: str) -> ServerEvent | None:
        name = argument.strip(" ")
        if not name or " " in name:
            return self._error(self._reply(501, "5.5.4", "Syntax: EHLO hostname"))
        # RFC 5321 4.1.4: EHLO resets any transaction.
        self._ehlo_name, self._esmtp = name, True
        self._end_transaction()
        self._send(Reply(250, (self.hostname, *self._ehlo_keywords())))
        return None

    def _cmd_helo(self, argument: str) -> ServerEvent | None:
        name = argument.strip(" ")
        if not name or " " in name:
            return self._error(self._reply(501, "5.5.4", "Syntax: HELO hostname"))
        self._ehlo_name, self._esmtp = name, False
        self._end_transaction()
        self._send(Reply(250, (self.hostname,)))
        return None

    def _cmd_starttls(self, argument: str) -> ServerEvent | None:
        refusal = self._starttls_refusal()
        if refusal is not None:
            return self._error(refusal)
        if argument:
            # RFC 3207 4: "STARTTLS" takes no parameters.
            return self._error(self._reply(501, "5.5.4", "Syntax error (no parameters allowed)"))
        reply = Reply(220, ("2.0.0 Ready to start TLS",) if self._esmtp else ("Ready to start TLS",))
        self._send(reply)
        self._state = ServerState.TLS_PENDING
        return TlsUpgradeRequired(reply)

    def _cmd_mail(self, argument: str) -> ServerEvent | None:
        try:
            path = parse_mail_argument(argument)
        except CommandSyntaxError as exc:
            return self._error(self._reply(exc.code, exc.enhanced, exc.message))
        requiretls = [value for keyword, value in path.params if keyword == "REQUIRETLS"]
        if requiretls and self._esmtp:
            refusal = self._requiretls_problem(requiretls[0])
            if refusal is not None:
                return self._error(refusal)
            # Checked here (RFC 8689 section 2); the generic check sees the other parameters.
            rest = tuple(p for p in path.params if p[0] != "REQUIRETLS")
            checked = dataclasses.replace(path, params=rest)
        else:
            checked = path
        problem = check_params(
            checked, self._mail_params, "MAIL FROM", path.param_map, self._esmtp, self.max_message_size
        )
        if problem is not None:
            return self._error(self._reply(*problem))
        self._decision = MailRequested(path.address, path.param_map)
        return self._decision

    def _cmd_rcpt(self, argument: str) -> ServerEvent | None:
        try:
            path = parse_rcpt_argument(argument)
        except CommandSyntaxError as exc:
            return self._error(self._reply(exc.code, exc.enhanced, exc.message))
        problem = check_params(
            path,
            self._rcpt_params,
            "RCPT TO",
            self._mail_params_seen,
            self._esmtp,
            self.max_message_size,
        )
        if problem is not None:
            return self._error(self._reply(*problem))
        if len(self._recipients) >= self._max_recipients:
            self._rcpt_attempted = True
            # RFC 5321 4.5.3.1.8: 452 for too many recipients.
            self._send(self._reply(452, "4.5.3", "Too many recipients"))
            return None
        self._decision = RcptRequested(path.address, path.param_map)
        return self._decision

    def _cmd_data(self, argument: str) -> ServerEvent | None:
        if argument:
            return self._error(self._reply(501, "5.5.4", "Syntax: DATA"))
        self._state = ServerState.DATA
        self._send(Reply(354, ("End data with <CR><LF>.<CR><LF>",)))
        return None

    def _cmd_rset(self, argument: str) -> ServerEvent | None:
        if argument.strip(" "):
            return self._error(self._reply(501, "5.5.4", "Syntax: RSET"))
        self._end_transaction()
        self._send(self._reply(250, "2.0.0", "OK"))
        return None

    def _cmd_noop(self, argument: str) -> ServerEvent | None:
        self._send(self._reply(250, "2.0.0", "OK"))  # RFC 5321 4.1.1.9: argument ignored
        return None

    def _cmd_vrfy(self, argument: str) -> ServerEvent | None:
        if not argument.strip(" "):
            return self._error(self._reply(501, "5.5.4", "Syntax: VRFY address"))
        # RFC 5321 3.5.3: 252 when the server will not verify but will accept mail.
        self._send(self._reply(252, "2.1.5", "Cannot VRFY user, but will accept message"))
        return None

    def _cmd_help(self, argument: str) -> ServerEvent | None:
        self._send(self._reply(214, "2.0.0", "See RFC 5321"))
        return None

    def _cmd_quit(self, argument: str) -> ServerEvent | None:
        self._send(self._reply(221, "2.0.0", "Bye"))
        self._state = ServerState.CLOSED
        self._closing = ConnectionClosed("quit")
        return self._closing

    # -- message data ---------------------------------------------------------------------
    def _process_data(self) -> ServerEvent | None:
        """Consume message lines; the event that ends the data, if it ended."""
        if not self._reader.consume(self._buffer):
            return None
        return self._end_of_data()

    def _end_of_data(self) -> ServerEvent | None:
        reader = self._reader
        self._log("c2s", f"[message content: {len(reader.data)} bytes]")
        self._log("c2s", ".")
        if reader.oversize:
            self._end_transaction()
            # RFC 1870 6 / RFC 5321 4.5.3.1.10: 552 exceeded storage allocation.
            return self._error(self._reply(552, "5.3.4", "Message size exceeds fixed maximum"))
        if reader.long_line:
            self._end_transaction()
            return self._error(self._reply(554, "5.6.0", "Message has lines too long"))
        envelope = Envelope(
            self._mail_from,
            dict(self._mail_params_seen),
            tuple(self._recipients),
            bytes(reader.data),
        )
        self._decision = MessageReceived(envelope)
        return self._decision
