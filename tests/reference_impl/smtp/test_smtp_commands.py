"""Tests of reference_impl.smtp.commands: command lines and MAIL/RCPT arguments."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference_impl.smtp.commands import (
    Command,
    CommandSyntaxError,
    PathArgument,
    parse_command,
    parse_esmtp_params,
    parse_mail_argument,
    parse_rcpt_argument,
)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"EHLO client.test", Command("EHLO", "client.test")),
        (b"ehlo client.test", Command("EHLO", "client.test")),
        (b"DATA", Command("DATA", "")),
        (b"MAIL FROM:<a@b>", Command("MAIL", "FROM:<a@b>")),
        (b"NOOP ", Command("NOOP", "")),
    ],
)
def test_parse_command(line: bytes, expected: Command) -> None:
    assert parse_command(line) == expected


@pytest.mark.parametrize(
    ("line", "code"),
    [
        (b"", 500),
        (b" EHLO x", 500),
        (b"\xff\xfe", 500),
        (b"EH\x00LO", 500),
        (b"X" * 600, 500),
        (b"NOOP a\x00b", 501),
    ],
)
def test_parse_command_rejects(line: bytes, code: int) -> None:
    with pytest.raises(CommandSyntaxError) as info:
        parse_command(line)
    assert info.value.code == code


@pytest.mark.parametrize(
    ("argument", "expected"),
    [
        ("FROM:<a@b.test>", PathArgument("a@b.test")),
        ("from:<>", PathArgument("")),
        ("FROM: <a@b.test>", PathArgument("a@b.test")),  # lenient space
        (
            "FROM:<a@b.test> BODY=8BITMIME  REQUIRETLS",
            PathArgument("a@b.test", (("BODY", "8BITMIME"), ("REQUIRETLS", None))),
        ),
        ("FROM:<@relay.test:a@b.test>", PathArgument("a@b.test")),  # source route dropped
        ('FROM:<"odd > name"@b.test>', PathArgument('"odd > name"@b.test')),
        ("FROM:<a@[192.0.2.1]>", PathArgument("a@[192.0.2.1]")),
        ("FROM:<ü@bücher.test> SMTPUTF8", PathArgument("ü@bücher.test", (("SMTPUTF8", None),))),
    ],
)
def test_parse_mail(argument: str, expected: PathArgument) -> None:
    assert parse_mail_argument(argument) == expected


@pytest.mark.parametrize(
    ("argument", "code", "enhanced"),
    [
        ("TO:<a@b.test>", 501, "5.5.4"),  # wrong keyword for MAIL
        ("FROM:a@b.test", 501, "5.5.4"),
        ("FROM:<a@b.test", 501, "5.5.4"),
        ("FROM:<a@b.test>junk", 501, "5.5.4"),
        ("FROM:<a@-b.test>", 501, "5.1.2"),
        ("FROM:<a..b@b.test>", 501, "5.1.3"),
        ("FROM:<@b.test>", 501, "5.1.3"),
        ("FROM:<" + "x" * 65 + "@b.test>", 501, "5.1.3"),
        ("FROM:<a@b.test> =x", 501, "5.5.4"),
        ("FROM:<a@b.test> BODY=", 501, "5.5.4"),
        ("FROM:<a@b.test> A=1 a=2", 501, "5.5.4"),
        ("FROM:<@relay.test:>", 501, "5.1.3"),
    ],
)
def test_parse_mail_rejects(argument: str, code: int, enhanced: str) -> None:
    with pytest.raises(CommandSyntaxError) as info:
        parse_mail_argument(argument)
    assert (info.value.code, info.value.enhanced) == (code, enhanced)


def test_parse_rcpt() -> None:
    assert parse_rcpt_argument("TO:<c@d.test> NOTIFY=NEVER").param_map == {"NOTIFY": "NEVER"}
    assert parse_rcpt_argument("TO:<Postmaster>").address == "Postmaster"
    with pytest.raises(CommandSyntaxError):
        parse_rcpt_argument("TO:<>")  # RFC 5321 4.1.1.3: no null forward-path
    with pytest.raises(CommandSyntaxError):
        parse_rcpt_argument("TO:<postmaster@>")


def test_esmtp_params() -> None:
    assert parse_esmtp_params(" size=10 ret=HDRS") == (("SIZE", "10"), ("RET", "HDRS"))
    assert parse_esmtp_params("") == ()


T = TypeVar("T")

# Strategies built from the grammar the parser implements (RFC 5321 4.1.2).
ATEXT = "abcxyzABCXYZ0189!#$%&'*+/=?^_`{|}~-"
atom = st.text(st.sampled_from(ATEXT), min_size=1, max_size=8)
local_part = st.lists(atom, min_size=1, max_size=3).map(".".join).filter(lambda s: len(s) <= 64)
label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
domain = st.lists(label, min_size=1, max_size=4).map(".".join)
mailbox = st.builds(lambda lp, d: f"{lp}@{d}", local_part, domain)
keyword = st.from_regex(r"[A-Z0-9][A-Z0-9-]{0,8}", fullmatch=True)
value = st.text(st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="="), min_size=1, max_size=10)
params = st.dictionaries(keyword, st.none() | value, max_size=4)


@given(mailbox, params)
def test_mail_round_trip(address: str, items: dict[str, str | None]) -> None:
    text = " ".join(k if v is None else f"{k}={v}" for k, v in items.items())
    parsed = parse_mail_argument(f"FROM:<{address}> {text}")
    assert parsed.address == address
    assert parsed.param_map == items


def outcome(parse: Callable[[T], object], data: T) -> object:
    """The parse result, or the reply code of our own error; anything else propagates."""
    try:
        return parse(data)
    except CommandSyntaxError as exc:
        return exc.code


@given(st.binary(max_size=600))
def test_parse_command_is_total(line: bytes) -> None:
    result = outcome(parse_command, line)
    assert result in (500, 501) or (isinstance(result, Command) and result.verb.isupper())


@given(st.text(max_size=300))
def test_path_parsers_are_total(argument: str) -> None:
    for parser in (parse_mail_argument, parse_rcpt_argument):
        result = outcome(parser, argument)
        assert result == 501 or isinstance(result, PathArgument)


@given(st.sampled_from(["FROM:", "from:", "From: "]), mailbox, st.text(max_size=40))
def test_near_misses_are_total(prefix: str, address: str, tail: str) -> None:
    result = outcome(parse_mail_argument, f"{prefix}<{address}>{tail}")
    assert result == 501 or (isinstance(result, PathArgument) and result.address == address)
