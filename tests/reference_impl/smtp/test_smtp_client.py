"""Tests of reference_impl.smtp.client: send X, expect bytes; receive Y, expect events."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference_impl.smtp.client import (
    ClientState,
    EhloReply,
    Greeting,
    ReplyReceived,
    SmtpClientConnection,
    dot_stuff,
)
from reference_impl.smtp.errors import LocalProtocolError, RemoteProtocolError
from reference_impl.smtp.events import ConnectionClosed, NeedData, TlsUpgradeRequired
from reference_impl.smtp.replies import Reply

EHLO_REPLY = b"250-mx.test\r\n250-PIPELINING\r\n250-size 1000\r\n250 STARTTLS\r\n"


def events(client: SmtpClientConnection) -> list[object]:
    out: list[object] = []
    while not isinstance(event := client.next_event(), NeedData | ConnectionClosed):
        out.append(event)
    out.append(event)
    return out


def greeted(ehlo: bytes | None = EHLO_REPLY) -> SmtpClientConnection:
    client = SmtpClientConnection()
    client.receive_data(b"220 mx.test ready\r\n")
    assert isinstance(client.next_event(), Greeting)
    if ehlo is not None:
        client.ehlo("me.test")
        client.data_to_send()
        client.receive_data(ehlo)
        assert isinstance(client.next_event(), EhloReply)
    return client


@pytest.mark.parametrize(
    ("action", "wire"),
    [
        (lambda c: c.ehlo("me.test"), b"EHLO me.test\r\n"),
        (lambda c: c.helo("me.test"), b"HELO me.test\r\n"),
        (lambda c: c.starttls(), b"STARTTLS\r\n"),
        (lambda c: c.mail(""), b"MAIL FROM:<>\r\n"),
        (lambda c: c.mail("a@b.test", ["REQUIRETLS"]), b"MAIL FROM:<a@b.test> REQUIRETLS\r\n"),
        (lambda c: c.rset(), b"RSET\r\n"),
        (lambda c: c.noop(), b"NOOP\r\n"),
        (lambda c: c.quit(), b"QUIT\r\n"),
    ],
)
def test_commands_on_the_wire(action: Callable[[SmtpClientConnection], None], wire: bytes) -> None:
    client = greeted()
    action(client)
    assert client.data_to_send() == wire


def test_ehlo_extensions_parsed() -> None:
    client = greeted(None)
    client.ehlo("me.test")
    client.receive_data(EHLO_REPLY)
    event = client.next_event()
    assert isinstance(event, EhloReply)
    assert event.extensions == {"PIPELINING": "", "SIZE": "1000", "STARTTLS": ""}
    assert client.extensions == event.extensions


def test_negative_ehlo_gives_no_extensions() -> None:
    client = greeted(None)
    client.ehlo("me.test")
    client.receive_data(b"502 no\r\n")
    assert client.next_event() == EhloReply(Reply(502, ("no",)), {})


def test_full_transaction_with_pipelining() -> None:
    client = greeted()
    client.mail("a@b.test")
    client.rcpt("c@d.test")
    client.rcpt("e@f.test")
    client.data()
    assert client.data_to_send() == (b"MAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nRCPT TO:<e@f.test>\r\nDATA\r\n")
    client.receive_data(b"250 ok\r\n550 no\r\n250 ok\r\n354 go\r\n")
    assert [e.command for e in events(client) if isinstance(e, ReplyReceived)] == [
        "MAIL",
        "RCPT",
        "RCPT",
        "DATA",
    ]
    client.message_content(b"Subject: x\n\n.dot\nend")
    assert client.data_to_send() == b"Subject: x\r\n\r\n..dot\r\nend\r\n.\r\n"
    client.receive_data(b"250 queued\r\n")
    assert client.next_event() == ReplyReceived("MESSAGE", Reply(250, ("queued",)))


@pytest.mark.parametrize(
    ("setup", "action"),
    [
        (None, lambda c: c.ehlo("x")),  # before the greeting (RFC 5321 3.1)
        (EHLO_REPLY, lambda c: c.rcpt("a@b.test")),  # RCPT before MAIL
        (EHLO_REPLY, lambda c: c.data()),  # DATA before RCPT
        (EHLO_REPLY, lambda c: c.message_content(b"x")),  # content before 354
        (EHLO_REPLY, lambda c: c.mail("a@b.test\r\nRCPT TO:<evil@x>")),  # injection
        (EHLO_REPLY, lambda c: c.ehlo("two words")),
        (EHLO_REPLY, lambda c: c.mail("a@b.test", ["A B"])),
        (EHLO_REPLY, lambda c: c.mail("x" * 600)),  # RFC 5321 4.5.3.1.4
    ],
)
def test_illegal_requests(setup: bytes | None, action: Callable[[SmtpClientConnection], None]) -> None:
    client = SmtpClientConnection() if setup is None else greeted(setup)
    with pytest.raises(LocalProtocolError):
        action(client)
    assert client.data_to_send() == b""


def test_pipelining_only_when_offered() -> None:
    client = greeted(b"250 mx.test\r\n")
    client.mail("a@b.test")
    with pytest.raises(LocalProtocolError):
        client.rcpt("c@d.test")


def test_group_enders_end_the_group() -> None:
    client = greeted()
    client.noop()
    with pytest.raises(LocalProtocolError):  # RFC 2920 3.1
        client.mail("a@b.test")


def test_starttls_discards_injected_plaintext() -> None:
    client = greeted()
    client.starttls()
    client.data_to_send()
    # RFC 3207 4.2 / RFC 8314 Appendix A: a 250 injected right after the 220.
    client.receive_data(b"220 go ahead\r\n250-mx.test\r\n250 REQUIRETLS\r\n")
    assert isinstance(client.next_event(), TlsUpgradeRequired)
    assert client.state is ClientState.TLS_PENDING
    client.receive_data(b"250 more injected\r\n")
    assert isinstance(client.next_event(), NeedData)
    with pytest.raises(LocalProtocolError):
        client.noop()
    client.tls_established()
    assert client.discarded_plaintext == len(b"250-mx.test\r\n250 REQUIRETLS\r\n250 more injected\r\n")
    assert client.extensions == {}
    assert isinstance(client.next_event(), NeedData)
    with pytest.raises(LocalProtocolError):  # RFC 3207 4.2: EHLO first
        client.mail("a@b.test")
    with pytest.raises(LocalProtocolError):  # RFC 3207 4.2: no second STARTTLS
        client.starttls()
    client.ehlo("me.test")
    assert client.data_to_send() == b"EHLO me.test\r\n"


class NoDiscardClient(SmtpClientConnection):
    """Negative control: skips the RFC 3207 4.2 discard."""

    def _discard_pending_plaintext(self) -> None:
        pass


def first_event_after_tls(cls: type[SmtpClientConnection]) -> object:
    conn = cls()
    conn.receive_data(b"220 hi\r\n")
    conn.next_event()
    conn.ehlo("me")
    conn.receive_data(EHLO_REPLY)
    conn.next_event()
    conn.starttls()
    conn.receive_data(b"220 go\r\n250 injected\r\n")
    assert isinstance(conn.next_event(), TlsUpgradeRequired)
    conn.tls_established()
    conn.ehlo("me")
    return conn.next_event()


def test_injected_reply_is_not_read_after_tls() -> None:
    assert first_event_after_tls(SmtpClientConnection) == NeedData()
    # The mutant takes the injected plaintext as the post-TLS EHLO reply.
    assert first_event_after_tls(NoDiscardClient) == EhloReply(Reply(250, ("injected",)), {})


def test_unsolicited_replies() -> None:
    client = greeted()
    client.receive_data(b"421 shutting down\r\n")
    assert client.next_event() == ReplyReceived("", Reply(421, ("shutting down",)))
    client.receive_data(b"250 what\r\n")
    with pytest.raises(RemoteProtocolError):
        client.next_event()
    assert client.state is ClientState.CLOSED


def test_eof_closes() -> None:
    client = greeted()
    client.receive_data(b"")
    assert client.next_event() == ConnectionClosed("peer-closed")
    with pytest.raises(LocalProtocolError):
        client.noop()


def test_message_line_limit() -> None:
    client = greeted()
    client.mail("a@b.test")
    client.receive_data(b"250 ok\r\n")
    client.next_event()
    client.rcpt("c@d.test")
    client.receive_data(b"250 ok\r\n")
    client.next_event()
    client.data()
    client.receive_data(b"354 go\r\n")
    client.next_event()
    with pytest.raises(LocalProtocolError):  # RFC 5321 4.5.3.1.6
        client.message_content(b"x" * 999)
    client.message_content(b"x" * 998)


@pytest.mark.parametrize(
    ("message", "wire"),
    [
        (b"", b".\r\n"),
        (b"a", b"a\r\n.\r\n"),
        (b".", b"..\r\n.\r\n"),
        (b"a\r\n.\r\nb", b"a\r\n..\r\nb\r\n.\r\n"),
        (b"a\rb\nc\r\n", b"a\r\nb\r\nc\r\n.\r\n"),
    ],
)
def test_dot_stuff(message: bytes, wire: bytes) -> None:
    assert dot_stuff(message) == wire


@given(st.binary(max_size=300))
def test_dot_stuff_never_ends_early(message: bytes) -> None:
    wire = b"\r\n" + dot_stuff(message)  # as if after the CRLF of the DATA line
    assert wire.find(b"\r\n.\r\n") == len(wire) - 5


@given(st.binary(max_size=400), st.lists(st.integers(0, 400), max_size=6))
def test_client_events_chunking_invariance(data: bytes, cuts: list[int]) -> None:
    def run(pieces: list[bytes]) -> list[object]:
        client = greeted()
        client.mail("a@b.test")
        client.rcpt("c@d.test")
        client.rcpt("e@f.test")
        out: list[object] = []
        try:
            for piece in pieces:
                if not piece:
                    continue  # b"" would mean end of stream
                client.receive_data(piece)
                out.extend(e for e in events(client) if not isinstance(e, NeedData))
        except RemoteProtocolError:
            out.append("error")
        return out

    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    whole = run([data])
    if "error" not in whole:
        assert run(pieces) == whole
