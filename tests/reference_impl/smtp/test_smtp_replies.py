"""Tests of reference_impl.smtp.replies: reply records, formatting and the stream parser."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference_impl.smtp.errors import LocalProtocolError, RemoteProtocolError, SmtpError
from reference_impl.smtp.replies import EnhancedStatus, Reply, ReplyParser, format_reply


def parse_all(data: bytes, chunks: list[int] | None = None) -> list[Reply]:
    parser = ReplyParser()
    replies: list[Reply] = []
    pieces = [data] if chunks is None else split_at(data, chunks)
    for piece in pieces:
        parser.feed(piece)
        while (reply := parser.next_reply()) is not None:
            replies.append(reply)
    return replies


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, last = [], 0
    for point in points:
        pieces.append(data[last:point])
        last = point
    pieces.append(data[last:])
    return pieces


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        (b"220 mx.test ready\r\n", [Reply(220, ("mx.test ready",))]),
        (b"250\r\n", [Reply(250, ("",))]),
        (b"250-a\r\n250-b\r\n250 c\r\n", [Reply(250, ("a", "b", "c"))]),
        (b"250-\r\n250 end\r\n", [Reply(250, ("", "end"))]),
        (b"221 bye\n", [Reply(221, ("bye",))]),  # bare LF accepted
        (b"250 ok\r\n354 go\r\n", [Reply(250, ("ok",)), Reply(354, ("go",))]),
        (b"250 caf\xc3\xa9\r\n", [Reply(250, ("café",))]),
    ],
)
def test_parse_examples(wire: bytes, expected: list[Reply]) -> None:
    assert parse_all(wire) == expected


@pytest.mark.parametrize(
    "wire",
    [
        b"25 short\r\n",
        b"abc text\r\n",
        b"600 too high\r\n",
        b"260 second digit above 5\r\n",
        b"150 first digit 1\r\n",
        b"250xtext\r\n",
        b"250-a\r\n251 b\r\n",  # RFC 5321 4.2.1: one code per multiline reply
        b"250 " + b"x" * 600 + b"\r\n",
        b"250 " + b"x" * 600,  # no line end yet, but already too long
    ],
)
def test_parse_rejects(wire: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        parse_all(wire)


def test_too_many_lines_rejected() -> None:
    with pytest.raises(RemoteProtocolError):
        parse_all(b"250-x\r\n" * 200 + b"250 x\r\n")


def test_incomplete_reply_waits() -> None:
    parser = ReplyParser()
    parser.feed(b"250-a\r\n250 b")
    assert parser.next_reply() is None
    assert parser.in_progress
    parser.feed(b"\r\n")
    assert parser.next_reply() == Reply(250, ("a", "b"))
    assert not parser.in_progress


def test_format() -> None:
    assert format_reply(Reply(250, ("a", "", "c"))) == b"250-a\r\n250-\r\n250 c\r\n"
    assert Reply(250, ("",)).to_bytes() == b"250\r\n"
    with pytest.raises(LocalProtocolError):
        format_reply(Reply(250, ("bad\r\ninjection",)))


@pytest.mark.parametrize("code", [199, 600, 260, 0])
def test_invalid_reply_code_rejected(code: int) -> None:
    with pytest.raises(LocalProtocolError):
        Reply(code, ("x",))


def test_reply_needs_a_line() -> None:
    with pytest.raises(LocalProtocolError):
        Reply(250, ())


def test_enhanced_status() -> None:
    assert Reply(550, ("5.7.1 denied",)).enhanced_status == EnhancedStatus(5, 7, 1)
    assert str(EnhancedStatus(4, 4, 2)) == "4.4.2"
    assert Reply(550, ("4.7.1 class mismatch",)).enhanced_status is None
    assert Reply(250, ("ok",)).enhanced_status is None
    assert Reply.make(550, ("a", ""), "5.1.1").lines == ("5.1.1 a", "5.1.1")
    assert EnhancedStatus.parse("5.1234.1") is None


def test_reply_classes() -> None:
    assert Reply(250).is_positive and not Reply(250).is_permanent
    assert Reply(354).is_intermediate
    assert Reply(451).is_transient
    assert Reply(554).is_permanent
    assert Reply(250, ("a", "b")).text == "a\nb"


codes = st.integers(2, 5).flatmap(
    lambda a: st.integers(0, 5).flatmap(lambda b: st.integers(0, 9).map(lambda c: a * 100 + b * 10 + c))
)
line_text = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\r\n"), max_size=60)
replies = st.builds(Reply, codes, st.lists(line_text, min_size=1, max_size=5).map(tuple))


@given(st.binary(max_size=300), st.lists(st.integers(0, 300), max_size=5))
def test_parser_is_total(data: bytes, cuts: list[int]) -> None:
    try:
        result = parse_all(data, cuts)
    except SmtpError:
        return
    assert all(isinstance(r, Reply) for r in result)


@given(st.lists(replies, max_size=4))
def test_round_trip(items: list[Reply]) -> None:
    wire = b"".join(format_reply(r) for r in items)
    assert parse_all(wire) == items


@given(st.lists(replies, max_size=4), st.lists(st.integers(0, 2000), max_size=8))
def test_chunking_invariance(items: list[Reply], cuts: list[int]) -> None:
    wire = b"".join(format_reply(r) for r in items)
    assert parse_all(wire, cuts) == parse_all(wire)


@given(st.binary(max_size=200), st.lists(st.integers(0, 200), max_size=5))
def test_chunking_invariance_on_any_bytes(data: bytes, cuts: list[int]) -> None:
    def outcome(chunks: list[int] | None) -> object:
        try:
            return parse_all(data, chunks)
        except RemoteProtocolError:
            return "error"

    whole = outcome(None)
    if whole != "error":
        assert outcome(cuts) == whole
