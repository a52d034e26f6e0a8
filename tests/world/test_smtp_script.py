"""Tests of the pure parts of the world's SMTP peers (conformance.world.smtp_script)."""

from __future__ import annotations

import ssl

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.world.smtp_script import (
    MailParameterError,
    apply_tls_versions,
    encode_reply,
    parse_mail_parameters,
    reply_lines,
)

SYNTAX_ERROR, PARAM_NOT_RECOGNIZED = 501, 555


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("REQUIRETLS", ("REQUIRETLS",)),
        ("requiretls body=8bitmime", ("REQUIRETLS", "BODY=8BITMIME")),
        ("ENVID=AbC+2B RET=hdrs", ("ENVID=AbC+2B", "RET=HDRS")),
        ("SIZE=0012", ("SIZE=12",)),
        ("", ()),
    ],
)
def test_mail_parameters_normalised(text: str, expected: tuple[str, ...]) -> None:
    assert parse_mail_parameters(text) == expected


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("REQUIRETLS=YES", SYNTAX_ERROR),  # RFC 8689 section 2: no value
        ("SMTPUTF8=1", SYNTAX_ERROR),
        ("X-FOO", PARAM_NOT_RECOGNIZED),
        ("BODY=", SYNTAX_ERROR),
        ("SIZE=-1", SYNTAX_ERROR),
        ("ENVID=" + "a" * 101, SYNTAX_ERROR),  # RFC 3461 section 4.4: at most 100
        ("ENVID=a b", PARAM_NOT_RECOGNIZED),
        ("=x", SYNTAX_ERROR),
        ("RET=FULL RET=HDRS", SYNTAX_ERROR),
    ],
)
def test_mail_parameters_refused(text: str, code: int) -> None:
    with pytest.raises(MailParameterError) as caught:
        parse_mail_parameters(text)
    assert caught.value.code == code


@pytest.mark.parametrize(("low", "high"), [("TLSv1.2", "TLSv1.3"), ("TLSv1", "TLSv1.1")])
def test_tls_versions_applied_without_warnings(low: str, high: str) -> None:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    apply_tls_versions(ctx, low, high)  # type: ignore[arg-type]
    assert (ctx.minimum_version.name, ctx.maximum_version.name) == (low.replace(".", "_"), high.replace(".", "_"))


def test_encode_reply_never_fails() -> None:
    assert encode_reply("250 caf\u00e9") == "250 café".encode()
    assert encode_reply("250 \udcff") == b"250 \xff"  # a client byte aiosmtpd decoded goes back
    assert encode_reply("250 \ud800") == b"250 ?"  # a lone surrogate from scenario text


# -- property tests ---------------------------------------------------------------

_XTEXT_CHARS = [chr(c) for c in range(33, 127) if chr(c) != "="]
_KNOWN = ["REQUIRETLS", "SMTPUTF8", "BODY=7BIT", "BODY=8BITMIME", "RET=FULL", "RET=HDRS"]
_params = st.lists(
    st.one_of(
        st.sampled_from(_KNOWN),
        st.integers(0, 10**12).map(lambda n: f"SIZE={n}"),
        st.text(_XTEXT_CHARS, min_size=1, max_size=100).map(lambda v: f"ENVID={v}"),
    ),
    unique_by=lambda p: p.split("=")[0],
    max_size=6,
)


@given(st.text(max_size=200))
def test_parse_mail_parameters_is_total(text: str) -> None:
    """Returns normalised parameters or raises our error with a 501/555, nothing else."""
    result: tuple[str, ...] | MailParameterError
    try:
        result = parse_mail_parameters(text)
    except MailParameterError as exc:
        result = exc
    if isinstance(result, MailParameterError):
        assert result.code in (SYNTAX_ERROR, PARAM_NOT_RECOGNIZED)
    else:
        assert all(p.split("=")[0].isupper() for p in result)


@given(_params)
def test_parse_mail_parameters_round_trips(params: list[str]) -> None:
    assert parse_mail_parameters(" ".join(params)) == tuple(params)
    # Keywords are case-insensitive (RFC 5321 section 2.4); the result is the same.
    lowered = [p.split("=")[0].lower() + p[len(p.split("=")[0]) :] for p in params]
    assert parse_mail_parameters(" ".join(lowered)) == tuple(params)


@given(st.integers(200, 599), st.lists(st.text(st.characters(blacklist_characters="\r\n"))))
def test_reply_lines_are_well_formed(code: int, lines: list[str]) -> None:
    out = reply_lines(code, "\n".join(lines))
    assert len(out) == max(1, len(lines))
    assert all(line.startswith(f"{code}-") for line in out[:-1])
    assert out[-1] == str(code) or out[-1].startswith(f"{code} ")
