"""Our SMTP client core against our server core, in memory (RFC 5321, RFC 3207)."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from reference_impl.smtp.client import (
    ClientEvent,
    ClientState,
    EhloReply,
    Greeting,
    ReplyReceived,
    SmtpClientConnection,
)
from reference_impl.smtp.errors import LocalProtocolError
from reference_impl.smtp.events import ConnectionClosed, NeedData, TlsUpgradeRequired
from reference_impl.smtp.replies import Reply
from reference_impl.smtp.server import SmtpServerConnection
from reference_impl.smtp.server_events import (
    Envelope,
    MailRequested,
    MessageReceived,
    RcptRequested,
    ServerEvent,
)

Decider = Callable[[ServerEvent], Reply | None]


class ConnectionPair:
    """A client core wired to a server core; ``pump()`` moves bytes until both are quiet.

    The TLS handshake is simulated: when both sides asked for it, both are told it succeeded.
    """

    def __init__(self, decide: Decider | None = None, **server_options: object) -> None:
        self.client = SmtpClientConnection()
        options: dict[str, object] = {"tls_available": True}
        options.update(server_options)
        self.server = SmtpServerConnection("mx.test", **options)  # type: ignore[arg-type]
        self.decide: Decider = decide or (lambda event: None)
        self.delivered: list[Envelope] = []
        self._client_wants_tls = False
        self._server_wants_tls = False
        self._server_closed = False

    def pump(self) -> list[ClientEvent]:
        out: list[ClientEvent] = []
        moved = True
        while moved:
            moved = False
            if data := self.server.data_to_send():
                self.client.receive_data(data)
                moved = True
            if data := self.client.data_to_send():
                self.server.receive_data(data)
                moved = True
            while not isinstance(event := self.server.next_event(), NeedData):
                if isinstance(event, ConnectionClosed):
                    if not self._server_closed:  # the adapter would close the socket
                        self._server_closed = True
                        self.client.receive_data(self.server.data_to_send())
                        self.client.receive_data(b"")
                    break
                if isinstance(event, TlsUpgradeRequired):
                    self._server_wants_tls = True
                    break
                if isinstance(event, MessageReceived):
                    self.delivered.append(event.envelope)
                reply = self.decide(event)
                self.server.accept() if reply is None else self.server.send_reply(reply)
                moved = True
            while not isinstance(event2 := self.client.next_event(), NeedData | ConnectionClosed):
                out.append(event2)
                if isinstance(event2, TlsUpgradeRequired):
                    self._client_wants_tls = True
                    break
            if self._client_wants_tls and self._server_wants_tls:
                self.server.tls_established("TLSv1.3", "TLS_AES_128_GCM_SHA256")
                self.client.tls_established()
                self._client_wants_tls = self._server_wants_tls = False
                moved = True
        return out


def replies(events: list[ClientEvent]) -> list[tuple[str, int]]:
    named = []
    for event in events:
        if isinstance(event, Greeting):
            named.append(("GREETING", event.reply.code))
        elif isinstance(event, EhloReply):
            named.append(("EHLO", event.reply.code))
        elif isinstance(event, ReplyReceived):
            named.append((event.command, event.reply.code))
        elif isinstance(event, TlsUpgradeRequired):
            named.append(("STARTTLS", event.reply.code))
    return named


def test_session_with_starttls_in_memory() -> None:
    pair = ConnectionPair()
    assert replies(pair.pump()) == [("GREETING", 220)]
    pair.client.ehlo("me.test")
    assert replies(pair.pump()) == [("EHLO", 250)]
    assert "STARTTLS" in pair.client.extensions
    pair.client.starttls()
    assert replies(pair.pump()) == [("STARTTLS", 220)]
    assert pair.client.tls_active and pair.server.tls_active
    assert pair.client.extensions == {}
    pair.client.ehlo("me.test")
    pair.pump()
    assert "STARTTLS" not in pair.client.extensions  # RFC 3207 4.2
    pair.client.mail("a@b.test", ["BODY=8BITMIME"])
    pair.client.rcpt("c@d.test")
    pair.client.data()
    assert replies(pair.pump()) == [("MAIL", 250), ("RCPT", 250), ("DATA", 354)]
    pair.client.message_content(b"Subject: t\n\n.x\n")
    assert replies(pair.pump()) == [("MESSAGE", 250)]
    assert pair.delivered[0].data == b"Subject: t\r\n\r\n.x\r\n"
    assert pair.server.session.tls_version == "TLSv1.3"
    pair.client.quit()
    assert replies(pair.pump()) == [("QUIT", 221)]


def test_rejections_reach_the_client() -> None:
    def decide(event: ServerEvent) -> Reply | None:
        if isinstance(event, RcptRequested) and event.forward_path.startswith("bad"):
            return Reply(550, ("5.1.1 unknown user",))
        return None

    pair = ConnectionPair(decide)
    pair.pump()
    pair.client.ehlo("me")
    pair.pump()
    pair.client.mail("a@b.test")
    pair.client.rcpt("bad@d.test")
    pair.client.data()
    events = pair.pump()
    assert replies(events) == [("MAIL", 250), ("RCPT", 550), ("DATA", 554)]
    assert isinstance(events[1], ReplyReceived)
    assert str(events[1].reply.enhanced_status) == "5.1.1"


@given(st.binary(max_size=2000))
def test_any_message_arrives_normalised(message: bytes) -> None:
    pair = ConnectionPair()
    pair.pump()
    pair.client.ehlo("me")
    pair.pump()
    pair.client.mail("a@b.test")
    pair.client.rcpt("c@d.test")
    pair.client.data()
    pair.pump()
    try:
        pair.client.message_content(message)
    except LocalProtocolError:
        return  # a line longer than RFC 5321 allows; nothing was sent
    pair.pump()
    expected = re.sub(rb"\r\n|\r|\n", b"\r\n", message)
    if expected and not expected.endswith(b"\r\n"):
        expected += b"\r\n"
    assert pair.delivered[0].data == expected


class SessionMachine(RuleBasedStateMachine):
    """Random command sequences: every accepted command gets exactly one reply, messages
    arrive intact, and TLS state agrees on both sides."""

    def __init__(self) -> None:
        super().__init__()
        self.pair = ConnectionPair(self._decide)
        self.pair.pump()
        self.sent: list[bytes] = []
        self.refuse_next = False

    def _decide(self, event: ServerEvent) -> Reply | None:
        if isinstance(event, MailRequested | RcptRequested) and self.refuse_next:
            self.refuse_next = False
            return Reply(550, ("5.7.1 refused",))
        return None

    def _try(self, action: Callable[[], None]) -> None:
        try:
            action()
        except LocalProtocolError:
            assert self.pair.client.data_to_send() == b""
            return
        self.pair.pump()

    @rule(refuse=st.booleans())
    def refuse(self, refuse: bool) -> None:
        self.refuse_next = refuse

    @rule()
    def ehlo(self) -> None:
        self._try(lambda: self.pair.client.ehlo("me.test"))

    @rule()
    def helo(self) -> None:
        self._try(lambda: self.pair.client.helo("me.test"))

    @rule()
    def starttls(self) -> None:
        self._try(self.pair.client.starttls)

    @rule(sender=st.sampled_from(["", "a@b.test", "x.y@[127.0.0.1]"]))
    def mail(self, sender: str) -> None:
        self._try(lambda: self.pair.client.mail(sender))

    @rule(recipient=st.sampled_from(["c@d.test", "postmaster", "bad"]))
    def rcpt(self, recipient: str) -> None:
        self._try(lambda: self.pair.client.rcpt(recipient))

    @rule(message=st.binary(max_size=200))
    def data(self, message: bytes) -> None:
        client = self.pair.client
        try:
            client.data()
        except LocalProtocolError:
            return
        events = self.pair.pump()
        if any(isinstance(e, ReplyReceived) and e.reply.code == 354 for e in events):
            before = len(self.pair.delivered)
            client.message_content(message)
            self.pair.pump()
            assert len(self.pair.delivered) == before + 1
            assert self.pair.delivered[-1].data.replace(b"\r\n", b"") == re.sub(rb"\r\n|\r|\n", b"", message)

    @rule()
    def rset(self) -> None:
        self._try(self.pair.client.rset)

    @rule()
    def noop(self) -> None:
        self._try(self.pair.client.noop)

    @invariant()
    def all_answered(self) -> None:
        client = self.pair.client
        assert client.awaiting_replies == 0 or client.state is ClientState.CLOSED

    @invariant()
    def tls_agrees(self) -> None:
        assert self.pair.client.tls_active == self.pair.server.tls_active


TestSession = SessionMachine.TestCase
TestSession.settings = settings(max_examples=60, stateful_step_count=25, deadline=None)


@pytest.mark.parametrize("pipelined", [True, False])
def test_pipelined_transaction(pipelined: bool) -> None:
    extensions = ("PIPELINING",) if pipelined else ()
    pair = ConnectionPair(extensions=extensions)
    pair.pump()
    pair.client.ehlo("me")
    pair.pump()
    pair.client.mail("a@b.test")
    if pipelined:
        pair.client.rcpt("c@d.test")
    else:
        with pytest.raises(LocalProtocolError):  # RFC 2920: not offered
            pair.client.rcpt("c@d.test")
    assert len(pair.pump()) == (2 if pipelined else 1)
