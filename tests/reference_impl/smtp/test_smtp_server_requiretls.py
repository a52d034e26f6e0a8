"""RFC 8689 sections 2 and 4.1 in the SMTP server core: REQUIRETLS only inside TLS, no value."""

from __future__ import annotations

import pytest

from reference_impl.mta.requiretls_mutants import (
    RequireTlsBeforeTlsServerConnection,
    RequireTlsNotAdvertisedServerConnection,
    RequireTlsValueServerConnection,
)
from reference_impl.smtp.events import TlsUpgradeRequired
from reference_impl.smtp.server import DEFAULT_EXTENSIONS, SmtpServerConnection
from reference_impl.smtp.server_events import MailRequested
from tests.reference_impl.smtp.test_smtp_server import new_server, run


def after_starttls(server: SmtpServerConnection) -> None:
    server.receive_data(b"EHLO c.test\r\nSTARTTLS\r\n")
    while not isinstance(server.next_event(), TlsUpgradeRequired):
        pass
    server.data_to_send()
    server.tls_established("TLSv1.3", "TLS_AES_256_GCM_SHA384")


def ehlo_keywords(server: SmtpServerConnection) -> list[str]:
    [reply] = run(server, b"EHLO c.test\r\n")
    return [line.split(" ", 1)[0].upper() for line in reply.lines[1:]]


def test_requiretls_is_not_advertised_before_tls() -> None:
    server = new_server()
    assert "REQUIRETLS" not in ehlo_keywords(server)


def test_requiretls_is_advertised_after_starttls_and_with_implicit_tls() -> None:
    server = new_server()
    after_starttls(server)
    assert "REQUIRETLS" in ehlo_keywords(server)
    assert "REQUIRETLS" in ehlo_keywords(new_server(tls_active=True))


def test_the_parameter_is_refused_in_cleartext_with_530() -> None:
    server = new_server()
    replies = run(server, b"EHLO c.test\r\nMAIL FROM:<a@b.test> REQUIRETLS\r\n")
    assert replies[-1].code == 530 and replies[-1].lines[0].startswith("5.7.10")


def test_the_parameter_is_accepted_over_tls_and_reaches_the_application() -> None:
    server = new_server()
    after_starttls(server)
    server.receive_data(b"EHLO c.test\r\nMAIL FROM:<a@b.test> REQUIRETLS BODY=8BITMIME\r\n")
    event = server.next_event()
    while not isinstance(event, MailRequested):
        event = server.next_event()
    assert event.params == {"REQUIRETLS": None, "BODY": "8BITMIME"}
    server.accept()
    assert server.data_to_send().endswith(b"250 2.1.0 Sender OK\r\n")


@pytest.mark.parametrize("param", [b"REQUIRETLS=YES", b"requiretls=", b"REQUIRETLS=NO"])
def test_a_value_is_a_501_syntax_error(param: bytes) -> None:
    server = new_server(tls_active=True)
    replies = run(server, b"EHLO c.test\r\nMAIL FROM:<a@b.test> " + param + b"\r\n")
    assert replies[-1].code == 501


def test_after_helo_the_parameter_is_unknown() -> None:
    server = new_server(tls_active=True)
    assert run(server, b"HELO c.test\r\nMAIL FROM:<a@b.test> REQUIRETLS\r\n")[-1].code == 555


def test_the_mutants_differ() -> None:
    before = RequireTlsBeforeTlsServerConnection("mx.test", tls_available=True)
    before.data_to_send()
    assert "REQUIRETLS" in ehlo_keywords(before)
    assert run(before, b"MAIL FROM:<a@b.test> REQUIRETLS\r\n")[-1].code == 250

    hidden = RequireTlsNotAdvertisedServerConnection("mx.test", tls_available=True, tls_active=True)
    hidden.data_to_send()
    assert "REQUIRETLS" not in ehlo_keywords(hidden)
    assert run(hidden, b"MAIL FROM:<a@b.test> REQUIRETLS\r\n")[-1].code == 555

    lenient = RequireTlsValueServerConnection("mx.test", tls_available=True, tls_active=True)
    lenient.data_to_send()
    assert run(lenient, b"EHLO c.test\r\nMAIL FROM:<a@b.test> REQUIRETLS=YES\r\n")[-1].code == 250


def test_the_mail_line_may_be_11_octets_longer_with_requiretls() -> None:
    # RFC 8689 section 2 item 5; RFC 5321 4.5.3.1.4: 512 octets with CRLF otherwise.
    def mail(total: int, param: bytes) -> bytes:
        head, tail = b"MAIL FROM:<a@b.test> ENVID=", b" " + param
        return head + b"x" * (total - 2 - len(head) - len(tail)) + tail + b"\r\n"

    server = new_server(tls_active=True, extensions=(*DEFAULT_EXTENSIONS, "DSN"))
    run(server, b"EHLO c.test\r\n")
    assert run(server, mail(523, b"REQUIRETLS"))[-1].code == 250
    run(server, b"RSET\r\n")
    assert run(server, mail(524, b"REQUIRETLS"))[-1].code == 500
    assert run(server, mail(513, b"BODY=7BIT"))[-1].code == 500
    cleartext = new_server(extensions=(*DEFAULT_EXTENSIONS, "DSN"))
    run(cleartext, b"EHLO c.test\r\n")
    assert run(cleartext, mail(523, b"REQUIRETLS"))[-1].code == 500
