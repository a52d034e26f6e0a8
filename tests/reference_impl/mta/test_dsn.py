"""RFC 3464 / RFC 3461 DSNs: structure parsed back with the email package, parameter rules."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference_impl.mta import dsn
from reference_impl.mta.errors import DsnParameterError

from .helpers import parse_mail

ORIGINAL = (
    b"From: Alice <alice@sender.test>\r\nTo: bob@rcpt.test\r\nSubject: hello\r\n"
    b"Message-ID: <m1@sender.test>\r\n\r\nBody line\r\n"
)


def _request(**changes: object) -> dsn.DsnRequest:
    base = dsn.DsnRequest(
        reporting_mta="mta.example.test",
        original_sender="alice@sender.test",
        original_message=ORIGINAL,
        recipients=(
            dsn.RecipientReport(
                final_recipient="bob@rcpt.test",
                status="5.1.1",
                diagnostic="550 5.1.1 no such user",
                remote_mta="mx1.rcpt.test",
                original_recipient="rfc822;Bob@rcpt.test",
                last_attempt_at=1_700_000_100.0,
            ),
        ),
        arrival_date=1_700_000_000.0,
        created_at=1_700_000_200.0,
        token="t1",
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def _parse(data: bytes) -> Any:
    return parse_mail(data)


def test_dsn_is_multipart_report_with_three_parts() -> None:
    msg = _parse(dsn.build_dsn(_request()))
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    parts = msg.get_payload()
    assert isinstance(parts, list)
    assert [p.get_content_type() for p in parts] == [
        "text/plain",
        "message/delivery-status",
        "text/rfc822-headers",
    ]
    assert msg["To"] == "<alice@sender.test>"
    assert msg["Auto-Submitted"] == "auto-replied"


def test_delivery_status_fields() -> None:
    msg = _parse(dsn.build_dsn(_request(envid="env 1")))
    status = msg.get_payload()[1]
    per_message, per_recipient = status.get_payload()
    assert per_message["Reporting-MTA"] == "dns;mta.example.test"
    assert per_message["Original-Envelope-Id"] == "env 1"
    assert per_message["Arrival-Date"].endswith("+0000")
    assert per_recipient["Final-Recipient"] == "rfc822;bob@rcpt.test"
    assert per_recipient["Original-Recipient"] == "rfc822;Bob@rcpt.test"
    assert per_recipient["Action"] == "failed"
    assert per_recipient["Status"] == "5.1.1"
    assert per_recipient["Remote-MTA"] == "dns;mx1.rcpt.test"
    assert per_recipient["Diagnostic-Code"] == "smtp;550 5.1.1 no such user"


def test_no_envelope_id_field_without_envid() -> None:
    # RFC 3461 section 6.3 (a): MUST NOT be supplied without ENVID.
    status = _parse(dsn.build_dsn(_request())).get_payload()[1]
    assert status.get_payload()[0]["Original-Envelope-Id"] is None


def test_headers_returned_by_default_and_full_message_on_ret_full() -> None:
    headers_part = _parse(dsn.build_dsn(_request())).get_payload()[2]
    returned = headers_part.get_payload()
    assert "Subject: hello" in returned
    assert "Body line" not in returned
    full = _parse(dsn.build_dsn(_request(return_full=True))).get_payload()[2]
    assert full.get_content_type() == "message/rfc822"
    inner = full.get_payload()[0]
    assert inner["Subject"] == "hello"
    assert "Body line" in inner.get_payload()


def test_hostile_diagnostic_cannot_inject_fields() -> None:
    report = dsn.RecipientReport(
        final_recipient="bob@rcpt.test\r\nX-Injected: yes",
        status="5.0.0",
        diagnostic="550 bad\r\nX-Evil: 1",
    )
    data = dsn.build_dsn(_request(recipients=(report,)))
    assert b"\r\nX-Evil" not in data
    assert b"\r\nX-Injected" not in data
    block = _parse(data).get_payload()[1].get_payload()[1]
    assert block["X-Evil"] is None


def test_lines_end_in_crlf() -> None:
    data = dsn.build_dsn(_request())
    assert b"\n" not in data.replace(b"\r\n", b"")


def test_null_sender_gets_no_dsn() -> None:
    with pytest.raises(ValueError, match="null reverse path"):
        dsn.build_dsn(_request(original_sender=""))
    assert not dsn.failure_dsn_wanted("", ())


@pytest.mark.parametrize(
    ("params", "wanted"),
    [
        ((), True),  # RFC 3461 5.2.6 (c)
        (("NOTIFY=FAILURE",), True),
        (("NOTIFY=success,failure",), True),
        (("NOTIFY=NEVER",), False),  # 5.2.6 (b)
        (("NOTIFY=SUCCESS,DELAY",), False),
        (("NOTIFY=BOGUS",), True),
    ],
)
def test_failure_dsn_wanted(params: tuple[str, ...], wanted: bool) -> None:
    assert dsn.failure_dsn_wanted("alice@sender.test", params) is wanted


def test_parse_notify_rejects_never_with_others() -> None:
    with pytest.raises(DsnParameterError):
        dsn.parse_notify("NEVER,FAILURE")
    assert dsn.parse_notify("delay") == frozenset({dsn.Notify.DELAY})


def test_non_ascii_recipient_uses_utf8_address_type() -> None:
    assert dsn.address_field("jörg@example.test") == "utf-8;j\\x{F6}rg@example.test"
    assert dsn.address_field("Bob@Example.test") == "rfc822;Bob@Example.test"


@pytest.mark.parametrize(
    ("code", "text", "status"),
    [
        (550, "5.1.1 no such user", "5.1.1"),
        (550, "no such user", "5.0.0"),
        (451, "4.7.1 greylisted", "4.7.1"),
        (451, "5.1.1 class disagrees", "4.0.0"),
        (550, "5.01.1 leading zero", "5.0.0"),
    ],
)
def test_status_from_reply(code: int, text: str, status: str) -> None:
    assert dsn.status_from_reply(code, text) == status


def test_ret_envid_orcpt_helpers() -> None:
    assert dsn.wants_full_return(("RET=full",))
    assert not dsn.wants_full_return(("RET=HDRS",))
    assert dsn.envelope_id(("ENVID=abc+2Bdef",)) == "abc+def"
    assert dsn.envelope_id(("ENVID=bad+zz",)) is None
    assert dsn.original_recipient(("ORCPT=rfc822;b+40x",)) == "rfc822;b@x"
    assert dsn.original_recipient(("ORCPT=noseparator",)) is None


@given(st.text(alphabet=st.characters(max_codepoint=126), max_size=60))
def test_xtext_round_trip(value: str) -> None:
    assert dsn.xtext_decode(dsn.xtext_encode(value)) == value


@given(st.text(max_size=40))
def test_xtext_decode_is_total(value: str) -> None:
    try:
        decoded = dsn.xtext_decode(value)
    except DsnParameterError:
        return
    assert isinstance(decoded, str)


@given(st.text(max_size=40))
def test_parse_notify_is_total(value: str) -> None:
    try:
        keywords = dsn.parse_notify(value)
    except DsnParameterError:
        return
    assert keywords <= set(dsn.Notify)


@given(st.integers(200, 559), st.text(max_size=30))
def test_status_from_reply_always_well_formed(code: int, text: str) -> None:
    status = dsn.status_from_reply(code, text)
    assert status[0] in "45" or status == text.split(" ", 1)[0]
    assert status.count(".") == 2


@given(
    st.text(min_size=1, max_size=40),
    st.text(max_size=80),
    st.from_regex(r"[245]\.[0-9]{1,3}\.[0-9]{1,3}", fullmatch=True),
)
def test_any_recipient_and_diagnostic_parse_back(address: str, diag: str, status: str) -> None:
    report = dsn.RecipientReport(final_recipient=address, status=status, diagnostic=diag)
    msg = _parse(dsn.build_dsn(_request(recipients=(report,))))
    blocks = msg.get_payload()[1].get_payload()
    assert len(blocks) == 2
    assert blocks[1]["Action"] == "failed"
    assert blocks[1]["Final-Recipient"].split(";", 1)[0] in ("rfc822", "utf-8")
