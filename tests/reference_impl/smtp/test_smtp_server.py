"""Tests of reference_impl.smtp.server: send command X, expect reply code Y."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference_impl.smtp.errors import LocalProtocolError
from reference_impl.smtp.events import ConnectionClosed, NeedData, TlsUpgradeRequired
from reference_impl.smtp.replies import Reply, ReplyParser
from reference_impl.smtp.server import ServerState, SmtpServerConnection
from reference_impl.smtp.server_events import MailRequested, MessageReceived, RcptRequested

# Named reply codes (after aiosmtpd's statuscodes).
OK, READY, BYE, CANNOT_VRFY, START_DATA = 250, 220, 221, 252, 354
SYNTAX, ARGS, NOT_IMPL, SEQUENCE, PARAMS = 500, 501, 502, 503, 555
NO_VALID_RCPT, TOO_BIG, BAD_MAILBOX = 554, 552, 553


def new_server(**kwargs: object) -> SmtpServerConnection:
    options: dict[str, object] = {"tls_available": True}
    options.update(kwargs)
    server = SmtpServerConnection("mx.test", **options)  # type: ignore[arg-type]
    server.data_to_send()  # the greeting
    return server


def run(server: SmtpServerConnection, data: bytes, *, accept: bool = True) -> list[Reply]:
    """Feed ``data``, accept (or reject) every decision, return the replies sent."""
    server.receive_data(data)
    while True:
        event = server.next_event()
        if isinstance(event, MailRequested | RcptRequested | MessageReceived):
            if accept:
                server.accept()
            else:
                server.reject(Reply(550, ("5.7.1 no",)))
            continue
        if isinstance(event, NeedData | ConnectionClosed | TlsUpgradeRequired):
            break
    return replies_of(server.data_to_send())


def replies_of(wire: bytes) -> list[Reply]:
    parser = ReplyParser()
    parser.feed(wire)
    out = []
    while (reply := parser.next_reply()) is not None:
        out.append(reply)
    return out


def codes(server: SmtpServerConnection, data: bytes, *, accept: bool = True) -> list[int]:
    return [r.code for r in run(server, data, accept=accept)]


def test_greeting() -> None:
    server = SmtpServerConnection("mx.test", tls_available=False)
    assert replies_of(server.data_to_send()) == [Reply(220, ("mx.test ESMTP MailTLS reference ready",))]


@pytest.mark.parametrize(
    ("commands", "expected"),
    [
        (b"EHLO c.test\r\n", [OK]),
        (b"HELO c.test\r\n", [OK]),
        (b"EHLO\r\n", [ARGS]),
        (b"EHLO a b\r\n", [ARGS]),
        (b"MAIL FROM:<a@b.test>\r\n", [SEQUENCE]),  # before EHLO
        (b"EHLO c\r\nRCPT TO:<a@b.test>\r\n", [OK, SEQUENCE]),
        (b"EHLO c\r\nDATA\r\n", [OK, SEQUENCE]),
        (b"EHLO c\r\nMAIL FROM:<a@b.test>\r\nMAIL FROM:<a@b.test>\r\n", [OK, OK, SEQUENCE]),
        (b"EHLO c\r\nMAIL FROM:a@b.test\r\n", [OK, ARGS]),
        (b"EHLO c\r\nMAIL FROM:<a@b.test> FOO=1\r\n", [OK, PARAMS]),
        (b"HELO c\r\nMAIL FROM:<a@b.test> BODY=8BITMIME\r\n", [OK, PARAMS]),  # no ESMTP
        (b"EHLO c\r\nMAIL FROM:<a@b.test> BODY=BINARYMIME\r\n", [OK, ARGS]),
        (b"EHLO c\r\nMAIL FROM:<a@b.test> SIZE=99999999999\r\n", [OK, TOO_BIG]),
        (b"EHLO c\r\nMAIL FROM:<a@b.test> SIZE=10 BODY=8BITMIME SMTPUTF8\r\n", [OK, OK]),
        (b"EHLO c\r\nMAIL FROM:<\xc3\xbc@b.test>\r\n", [OK, BAD_MAILBOX]),  # RFC 6531 3.5
        (b"EHLO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<>\r\n", [OK, OK, ARGS]),
        (b"EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<c@d.test>\r\nDATA\r\n", [OK, OK, OK, START_DATA]),
        (b"EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<c@d.test>\r\nDATA x\r\n", [OK, OK, OK, ARGS]),
        (b"EHLO c\r\nMAIL FROM:<>\r\nRSET\r\nRCPT TO:<c@d.test>\r\n", [OK, OK, OK, SEQUENCE]),
        (b"EHLO c\r\nRSET x\r\n", [OK, ARGS]),
        (b"NOOP\r\nNOOP anything\r\n", [OK, OK]),
        (b"VRFY a\r\nVRFY\r\n", [CANNOT_VRFY, ARGS]),
        (b"HELP\r\n", [214]),
        (b"EXPN list\r\nAUTH PLAIN\r\n", [NOT_IMPL, NOT_IMPL]),
        (b"FOO\r\n\r\n", [SYNTAX, SYNTAX]),
        (b"NOOP " + b"x" * 600 + b"\r\nNOOP\r\n", [SYNTAX, OK]),  # RFC 5321 4.5.3.1.4
        (b"NOOP\n", [OK]),  # bare LF ends a command line
        (b"QUIT\r\nNOOP\r\n", [BYE]),
        (b"EHLO c\r\nSTARTTLS now\r\n", [OK, ARGS]),
        (b"STARTTLS\r\n", [SEQUENCE]),  # before EHLO
    ],
)
def test_command_replies(commands: bytes, expected: list[int]) -> None:
    assert codes(new_server(), commands) == expected


def test_enhanced_codes_only_after_ehlo() -> None:
    server = new_server()
    assert run(server, b"NOOP\r\n") == [Reply(250, ("OK",))]
    run(server, b"EHLO c\r\n")
    assert run(server, b"NOOP\r\n") == [Reply(250, ("2.0.0 OK",))]


def test_ehlo_advertises_starttls_only_without_tls() -> None:
    ehlo = run(new_server(), b"EHLO c\r\n")[0]
    assert ehlo.lines == (
        "mx.test",
        "PIPELINING",
        "8BITMIME",
        "ENHANCEDSTATUSCODES",
        "SMTPUTF8",
        "SIZE 10485760",
        "STARTTLS",
    )
    assert "STARTTLS" not in run(new_server(tls_available=False), b"EHLO c\r\n")[0].lines
    implicit = new_server(tls_active=True)
    assert "STARTTLS" not in run(implicit, b"EHLO c\r\n")[0].lines
    assert codes(implicit, b"STARTTLS\r\n") == [SEQUENCE]  # RFC 3207 4.2
    assert codes(new_server(tls_available=False), b"EHLO c\r\nSTARTTLS\r\n") == [OK, NOT_IMPL]


def test_rejected_recipients_then_data() -> None:
    server = new_server()
    run(server, b"EHLO c\r\n")
    assert codes(server, b"MAIL FROM:<a@b.test>\r\n") == [OK]
    assert codes(server, b"RCPT TO:<c@d.test>\r\n", accept=False) == [550]
    # RFC 2920 / RFC 5321 3.3: every RCPT failed, so DATA gets 554.
    assert codes(server, b"DATA\r\n") == [NO_VALID_RCPT]


def test_message_is_unstuffed_and_delivered() -> None:
    server = new_server()
    server.receive_data(
        b"EHLO c\r\nMAIL FROM:<a@b.test> BODY=8BITMIME\r\nRCPT TO:<c@d.test> \r\nDATA\r\n"
        b"Subject: hi\r\n\r\n..leading dot\r\nbare\nLF\r\n.\r\nNOOP\r\n"
    )
    seen = []
    while not isinstance(event := server.next_event(), NeedData):
        seen.append(event)
        if isinstance(event, MessageReceived):
            envelope = event.envelope
            assert envelope.mail_from == "a@b.test"
            assert envelope.mail_params == {"BODY": "8BITMIME"}
            assert [r.address for r in envelope.rcpt_tos] == ["c@d.test"]
            assert envelope.data == b"Subject: hi\r\n\r\n.leading dot\r\nbare\nLF\r\n"
        server.accept()
    assert [type(e) for e in seen] == [MailRequested, RcptRequested, MessageReceived]
    assert [r.code for r in replies_of(server.data_to_send())] == [OK, OK, OK, START_DATA, OK, OK]
    assert server.state is ServerState.GREETED


def test_bare_lf_dot_does_not_end_data() -> None:
    # SMTP smuggling: "<LF>.<LF>" must not end the message (only CRLF.CRLF does).
    server = new_server()
    run(server, b"EHLO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nDATA\r\n")
    server.receive_data(b"a\n.\nMAIL FROM:<evil@x>\r\n.\r\n")
    event = server.next_event()
    assert isinstance(event, MessageReceived)
    assert event.envelope.data == b"a\n.\nMAIL FROM:<evil@x>\r\n"


@pytest.mark.parametrize(
    ("content", "code"),
    [(b"x" * 2000 + b"\r\n.\r\n", 554), (b"y" * 500 + b"\r\n" + b"z" * 600 + b"\r\n.\r\n", 552)],
)
def test_data_limits(content: bytes, code: int) -> None:
    server = new_server(max_message_size=1000)
    run(server, b"EHLO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nDATA\r\n")
    assert codes(server, content) == [code]
    assert server.state is ServerState.GREETED


def test_decision_must_be_answered() -> None:
    server = new_server()
    server.receive_data(b"EHLO c\r\nMAIL FROM:<a@b.test>\r\n")
    assert isinstance(server.next_event(), MailRequested)
    with pytest.raises(LocalProtocolError):
        server.next_event()
    with pytest.raises(LocalProtocolError):
        server.reject(Reply(250, ("not a rejection",)))
    server.send_reply(Reply(451, ("4.3.0 later",)))
    assert server.state is ServerState.GREETED
    with pytest.raises(LocalProtocolError):
        server.accept()


def test_too_many_errors_close() -> None:
    server = new_server(max_errors=3)
    assert codes(server, b"X\r\nX\r\nX\r\nNOOP\r\n") == [SYNTAX, SYNTAX, SYNTAX, 421]
    assert server.next_event() == ConnectionClosed("too-many-errors")


def test_eof_closes() -> None:
    server = new_server()
    server.receive_data(b"")
    assert server.next_event() == ConnectionClosed("peer-closed")


class NoDiscardServer(SmtpServerConnection):
    """Negative control (CVE-2011-0411): keeps the plaintext pipelined after STARTTLS."""

    def _discard_pending_plaintext(self) -> None:
        pass


@pytest.mark.parametrize(("cls", "after_tls"), [(SmtpServerConnection, []), (NoDiscardServer, [OK, OK])])
def test_starttls_pipelined_noop(cls: type[SmtpServerConnection], after_tls: list[int]) -> None:
    server = cls("mx.test", tls_available=True)
    server.data_to_send()
    server.receive_data(b"EHLO c\r\nSTARTTLS\r\nNOOP\r\n")
    assert isinstance(server.next_event(), TlsUpgradeRequired)
    assert [r.code for r in replies_of(server.data_to_send())] == [OK, READY]
    server.receive_data(b"RSET\r\n")  # still plaintext: arrived before the handshake
    assert isinstance(server.next_event(), NeedData)
    server.tls_established("TLSv1.3", "TLS_AES_128_GCM_SHA256")
    assert server.tls_active
    assert server.session.ehlo_name is None  # RFC 3207 4.2: EHLO forgotten
    assert server.session.tls_version == "TLSv1.3"
    assert isinstance(server.next_event(), NeedData)
    # The correct core answers nothing; the mutant answers the injected NOOP and RSET.
    assert [r.code for r in replies_of(server.data_to_send())] == after_tls


def test_after_tls_session_is_fresh() -> None:
    server = new_server()
    run(server, b"EHLO c\r\nMAIL FROM:<a@b.test>\r\n")
    assert codes(server, b"RSET\r\nSTARTTLS\r\nNOOP\r\n") == [OK, READY]
    server.tls_established("TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256")
    assert server.discarded_plaintext == len(b"NOOP\r\n")
    assert codes(server, b"MAIL FROM:<a@b.test>\r\n") == [SEQUENCE]  # EHLO required again
    ehlo = run(server, b"EHLO c\r\n")[0]
    assert "STARTTLS" not in ehlo.lines  # RFC 3207 4.2
    assert codes(server, b"STARTTLS\r\n") == [SEQUENCE]


def test_tls_established_needs_starttls() -> None:
    with pytest.raises(LocalProtocolError):
        new_server().tls_established("TLSv1.3", None)


SESSION = (
    b"EHLO c.test\r\nMAIL FROM:<a@b.test> SIZE=100\r\nRCPT TO:<c@d.test>\r\n"
    b"RCPT TO:<bad>\r\nDATA\r\nline\r\n..dot\r\n" + b"w" * 1200 + b"\r\n.\r\nFOO\r\n"
    b"NOOP " + b"q" * 700 + b"\r\nVRFY x\r\nRSET\r\nQUIT\r\n"
)


def transcript(pieces: list[bytes]) -> tuple[bytes, list[str]]:
    server = new_server()
    names: list[str] = []
    for piece in pieces:
        if not piece:
            continue
        server.receive_data(piece)
        while not isinstance(event := server.next_event(), NeedData | ConnectionClosed):
            names.append(type(event).__name__)
            if isinstance(event, MailRequested | RcptRequested | MessageReceived):
                server.accept()
    return server.data_to_send(), names


@given(st.lists(st.integers(0, len(SESSION)), max_size=10))
def test_server_chunking_invariance(cuts: list[int]) -> None:
    points = sorted(set(cuts))
    pieces = [SESSION[a:b] for a, b in zip([0, *points], [*points, len(SESSION)], strict=True)]
    assert transcript(pieces) == transcript([SESSION])


@given(st.binary(max_size=600))
def test_server_is_total(data: bytes) -> None:
    server = new_server()
    server.receive_data(b"EHLO c\r\n" + data)
    for _ in range(200):
        event = server.next_event()
        if isinstance(event, NeedData | ConnectionClosed):
            break
        if isinstance(event, TlsUpgradeRequired):
            server.tls_established("TLSv1.3", None)
        else:
            server.accept()
    for reply in replies_of(server.data_to_send()):
        assert 200 <= reply.code < 600
