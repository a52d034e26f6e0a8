"""Sans-IO delivery decisions: TLS policy, result types, reply classes, parameters."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference_impl.mta import delivery
from reference_impl.mta.delivery import TlsAction, TlsSituation, TlsStage
from reference_impl.mta.queue import OutcomeKind
from reference_impl.mta.records import TlsResultType


def _situation(stage: TlsStage, *, requiretls: bool = False) -> TlsSituation:
    return TlsSituation(stage, "d.test", "mx.d.test", TlsResultType.VALIDATION_FAILURE, None, requiretls)


@pytest.mark.parametrize(
    ("stage", "action"),
    [
        (TlsStage.NOT_OFFERED, TlsAction.CONTINUE_PLAINTEXT),
        (TlsStage.REFUSED, TlsAction.CONTINUE_PLAINTEXT),
        (TlsStage.CERTIFICATE_INVALID, TlsAction.RETRY_UNVERIFIED),
        (TlsStage.HANDSHAKE_FAILED, TlsAction.NEXT_HOST),
    ],
)
def test_opportunistic_tls(stage: TlsStage, action: TlsAction) -> None:
    assert delivery.opportunistic_tls(_situation(stage)) is action


@pytest.mark.parametrize("stage", list(TlsStage))
def test_requiretls_never_downgrades(stage: TlsStage) -> None:
    assert delivery.opportunistic_tls(_situation(stage, requiretls=True)) is TlsAction.NEXT_HOST


@pytest.mark.parametrize(
    ("code", "result"),
    [
        (10, TlsResultType.CERTIFICATE_EXPIRED),
        (62, TlsResultType.CERTIFICATE_HOST_MISMATCH),
        (20, TlsResultType.CERTIFICATE_NOT_TRUSTED),
        (18, TlsResultType.CERTIFICATE_NOT_TRUSTED),
        (19, TlsResultType.CERTIFICATE_NOT_TRUSTED),
        (9, TlsResultType.VALIDATION_FAILURE),  # not yet valid: no dedicated type
        (None, TlsResultType.VALIDATION_FAILURE),
    ],
)
def test_classify_verify_failure(code: int | None, result: TlsResultType) -> None:
    assert delivery.classify_verify_failure(code) is result


@pytest.mark.parametrize(
    ("code", "kind", "status"),
    [
        (250, OutcomeKind.DELIVERED, "2.0.0"),
        (451, OutcomeKind.TEMPORARY, "4.7.1"),
        (550, OutcomeKind.PERMANENT, "5.1.1"),
        (354, OutcomeKind.TEMPORARY, "4.0.0"),
    ],
)
def test_outcome_for_reply(code: int, kind: OutcomeKind, status: str) -> None:
    text = {451: "4.7.1 greylisted", 550: "5.1.1 unknown"}.get(code, "whatever")
    outcome = delivery.outcome_for_reply("x@d.test", code, [text], "mx.d.test")
    assert (outcome.kind, outcome.status, outcome.remote_mta) == (kind, status, "mx.d.test")
    assert outcome.diagnostic == f"{code} {text}"


def test_reply_text_is_one_safe_line() -> None:
    assert delivery.reply_text(550, ["a\r\nX-Evil: 1", "b"]) == "550 a X-Evil: 1 / b"


def test_outbound_mail_params_follow_extensions() -> None:
    params = ("BODY=8BITMIME", "RET=HDRS", "ENVID=x", "SMTPUTF8", "REQUIRETLS", "SIZE=1")
    assert delivery.outbound_mail_params(params, {}, 100) == ()
    everything = {"SIZE": "", "8BITMIME": "", "SMTPUTF8": "", "DSN": "", "REQUIRETLS": ""}
    assert delivery.outbound_mail_params(params, everything, 100) == (
        "SIZE=100",
        "BODY=8BITMIME",
        "SMTPUTF8",
        "RET=HDRS",
        "ENVID=x",
        "REQUIRETLS",
    )


def test_outbound_rcpt_params_only_with_dsn() -> None:
    params = ("NOTIFY=FAILURE", "ORCPT=rfc822;a+40b")
    assert delivery.outbound_rcpt_params(params, {}) == ()
    assert delivery.outbound_rcpt_params(params, {"DSN": ""}) == params


def test_requires_tls() -> None:
    assert delivery.requires_tls(("requiretls",))
    assert not delivery.requires_tls(("BODY=8BITMIME",))


@given(st.integers(200, 559), st.lists(st.text(max_size=20), min_size=1, max_size=3))
def test_outcome_for_any_reply_is_consistent(code: int, lines: list[str]) -> None:
    outcome = delivery.outcome_for_reply("x@d.test", code, lines, None)
    expected = {2: OutcomeKind.DELIVERED, 5: OutcomeKind.PERMANENT}.get(code // 100, OutcomeKind.TEMPORARY)
    assert outcome.kind is expected
    assert (
        outcome.status[0]
        == {OutcomeKind.DELIVERED: "2", OutcomeKind.PERMANENT: "5", OutcomeKind.TEMPORARY: "4"}[expected]
    )
    assert "\n" not in (outcome.diagnostic or "")
