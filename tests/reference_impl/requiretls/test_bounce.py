"""Non-delivery messages of REQUIRETLS messages (RFC 8689 section 5)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from reference_impl.requiretls.bounce import has_requiretls, ndn_mail_params, ndn_return_full
from reference_impl.requiretls.policy import header_makes_tls_optional

PARAMS = st.lists(st.sampled_from(["REQUIRETLS", "requiretls", "RET=FULL", "RET=HDRS", "BODY=8BITMIME", "ENVID=x"]))


@given(PARAMS)
def test_ndn_carries_requiretls_and_never_the_body_of_a_requiretls_message(params: list[str]) -> None:
    if has_requiretls(params):
        assert ndn_mail_params(params) == ("REQUIRETLS",)
        assert ndn_return_full(params) is False  # RET=FULL disregarded
    else:
        assert ndn_mail_params(params) == ()
        assert ndn_return_full(params) == (
            "RET=FULL" in params
            and params.index("RET=FULL") == min((i for i, p in enumerate(params) if p.startswith("RET=")), default=-1)
        )


def test_tls_required_no_only_without_the_parameter() -> None:
    data = b"From: a@b.test\r\nTLS-Required: No\r\n\r\nx\r\n"
    assert header_makes_tls_optional((), data)
    assert not header_makes_tls_optional(("REQUIRETLS",), data)  # RFC 8689 4.1: ignored
    assert not header_makes_tls_optional((), b"From: a@b.test\r\n\r\nx\r\n")
