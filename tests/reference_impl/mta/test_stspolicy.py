"""The MTA-STS enforcement decisions (RFC 8461 4, 5, 7.2, 8.4) and the mutants' swapped parts."""

from __future__ import annotations

import pytest

from reference_impl.mta import stsmutants as mut
from reference_impl.mta.delivery import TlsAction, TlsSituation, TlsStage, opportunistic_tls, version_at_least
from reference_impl.mta.queue import OutcomeKind
from reference_impl.mta.records import TlsResultType
from reference_impl.mta.stspolicy import (
    MxAction,
    NoDelivery,
    applied_from,
    canonical_fetch,
    canonical_txt,
    enforce_tls,
    mode_in_force,
    mx_decision,
    no_delivery_outcome,
    policy_strings,
)
from reference_impl.mtasts.discovery import FetchResult, PolicyOutcome, TxtAnswer
from reference_impl.mtasts.policy import Mode, Policy, PolicyReadings, parse_policy
from reference_impl.mtasts.record import RecordReadings, select_record

ENFORCE = Policy(Mode.ENFORCE, 86400, ("mx1.d.test", "*.w.d.test"))


def _action(mode: Mode | None, stage: TlsStage | None, version: str) -> str:
    """What the sender does with one MX session, composed as sender.py composes the decisions."""
    decide = enforce_tls if mode is Mode.ENFORCE else opportunistic_tls
    if stage is not None:
        situation = TlsSituation(stage, "d.test", "mx1.d.test", TlsResultType.VALIDATION_FAILURE, None, False, mode)
        action = decide(situation)
        if action is not TlsAction.RETRY_UNVERIFIED:
            return "plaintext" if action is TlsAction.CONTINUE_PLAINTEXT else "next-host"
        return "deliver-unverified"
    if not version_at_least(version, "TLSv1.2"):
        situation = TlsSituation(
            TlsStage.PROTOCOL_TOO_OLD, "d.test", "mx", TlsResultType.VALIDATION_FAILURE, None, False, mode
        )
        return "deliver" if decide(situation) is TlsAction.CONTINUE_PLAINTEXT else "next-host"
    return "deliver"


# mode x STARTTLS/certificate outcome x TLS version -> what happens to the session
TABLE = [
    (Mode.ENFORCE, None, "TLSv1.3", "deliver"),
    (Mode.ENFORCE, None, "TLSv1.2", "deliver"),
    (Mode.ENFORCE, None, "TLSv1.1", "next-host"),
    (Mode.ENFORCE, TlsStage.NOT_OFFERED, "", "next-host"),
    (Mode.ENFORCE, TlsStage.REFUSED, "", "next-host"),
    (Mode.ENFORCE, TlsStage.CERTIFICATE_INVALID, "", "next-host"),
    (Mode.ENFORCE, TlsStage.HANDSHAKE_FAILED, "", "next-host"),
    (Mode.TESTING, None, "TLSv1.3", "deliver"),
    (Mode.TESTING, TlsStage.NOT_OFFERED, "", "plaintext"),
    (Mode.TESTING, TlsStage.REFUSED, "", "plaintext"),
    (Mode.TESTING, TlsStage.CERTIFICATE_INVALID, "", "deliver-unverified"),
    (None, TlsStage.NOT_OFFERED, "", "plaintext"),
    (None, TlsStage.CERTIFICATE_INVALID, "", "deliver-unverified"),
    (None, None, "TLSv1.2", "deliver"),
]


@pytest.mark.parametrize(("mode", "stage", "version", "expected"), TABLE)
def test_session_decision_table(mode: Mode | None, stage: TlsStage | None, version: str, expected: str) -> None:
    assert _action(mode, stage, version) == expected


@pytest.mark.parametrize(
    ("mode", "matches", "expected"),
    [
        (Mode.ENFORCE, True, MxAction.DELIVER),
        (Mode.ENFORCE, False, MxAction.SKIP),
        (Mode.TESTING, True, MxAction.DELIVER),
        (Mode.TESTING, False, MxAction.REPORT_AND_DELIVER),
        (None, False, MxAction.DELIVER),
    ],
)
def test_mx_decision(mode: Mode | None, matches: bool, expected: MxAction) -> None:
    assert mx_decision(mode, matches) is expected


def test_mode_none_is_no_policy() -> None:
    assert mode_in_force(Policy(Mode.NONE, 86400, ())) is None
    assert mode_in_force(None) is None
    assert mode_in_force(ENFORCE) is Mode.ENFORCE


def test_policy_failure_is_temporary() -> None:
    assert no_delivery_outcome(NoDelivery(Mode.ENFORCE, 2, "x")) == (OutcomeKind.TEMPORARY, "4.7.5")
    assert no_delivery_outcome(NoDelivery(None, 0, "x")) == (OutcomeKind.TEMPORARY, "4.4.1")
    assert mut.bounce_on_policy_failure(NoDelivery(Mode.ENFORCE, 1, "x"))[0] is OutcomeKind.PERMANENT


def test_applied_keeps_policy_lines_and_type() -> None:
    text = "version: STSv1\r\nmode: enforce\r\nmx: mx1.d.test\r\nmax_age: 86400\r\n"
    policy = parse_policy(text)
    applied = applied_from(PolicyOutcome(policy, "fresh", "1", True, None, "ok", text), text, mode_in_force)
    assert applied.policy_strings == ("version: STSv1", "mode: enforce", "mx: mx1.d.test", "max_age: 86400")
    assert applied.policy_type == "sts"
    assert applied.mx_patterns == ("mx1.d.test",)
    assert policy_strings(None) == ()
    none = applied_from(PolicyOutcome(None, "none", None, False, None, "no TXT"), None, mode_in_force)
    assert none.policy_type == "no-policy-found" and none.mode is None


def test_canonical_txt_passes_agreeing_readings() -> None:
    answer = TxtAnswer("ok", ((b"v=STSv1; id=1;",),))
    assert canonical_txt(answer, mut.first_txt_wins, RecordReadings()) is answer
    two = TxtAnswer("ok", ((b"v=STSv1; id=1;",), (b"v=STSv1; id=2;",)))
    chosen = canonical_txt(two, mut.first_txt_wins, RecordReadings())
    record = select_record(chosen.rrs)
    assert record is not None and record.id == "1"
    lower = canonical_txt(TxtAnswer("ok", ((b"v=stsv1; id=7;",),)), mut.txt_case_insensitive, RecordReadings())
    assert select_record(lower.rrs) is not None


def test_canonical_fetch() -> None:
    lf = b"version: STSv1\nmode: enforce\nmx: mx1.d.test\nmax_age: 86400\n"
    rejected = canonical_fetch(FetchResult.success(lf), mut.crlf_only, PolicyReadings())
    assert not rejected.ok
    assert canonical_fetch(FetchResult.success(lf), parse_policy, PolicyReadings()).body == lf
    upper = lf.replace(b"enforce", b"Enforce")
    read = canonical_fetch(FetchResult.success(upper), mut.lenient_policy, PolicyReadings())
    assert read.body is not None and parse_policy(read.body).mode is Mode.ENFORCE
    dup = b"version: STSv1\nmode: testing\nmode: enforce\nmx: mx1.d.test\nmax_age: 86400\n"
    assert parse_policy(dup).mode is Mode.TESTING
    assert mut.last_duplicate_wins(dup, PolicyReadings()).mode is Mode.ENFORCE


@pytest.mark.parametrize(
    ("matcher", "host", "reference", "mutant"),
    [
        (mut.multi_label_wildcard, "a.b.w.d.test", False, True),
        (mut.wildcard_matches_apex, "w.d.test", False, True),
        (mut.mx_case_sensitive, "MX1.d.test", True, False),
        (mut.any_mx, "elsewhere.test", False, True),
    ],
)
def test_mutant_matchers(matcher: mut.MxMatcherFn, host: str, reference: bool, mutant: bool) -> None:
    from reference_impl.mtasts.matching import policy_allows_mx

    assert policy_allows_mx(ENFORCE, host) is reference
    assert matcher(ENFORCE, host) is mutant


def test_mutant_enforcement_decisions() -> None:
    def situation(stage: TlsStage) -> TlsSituation:
        return TlsSituation(stage, "d", "mx", TlsResultType.VALIDATION_FAILURE, None, False, Mode.ENFORCE)

    assert mut.enforce_unverified(situation(TlsStage.CERTIFICATE_INVALID)) is TlsAction.RETRY_UNVERIFIED
    assert mut.enforce_without_starttls(situation(TlsStage.NOT_OFFERED)) is TlsAction.CONTINUE_PLAINTEXT
    assert mut.enforce_without_starttls(situation(TlsStage.CERTIFICATE_INVALID)) is TlsAction.NEXT_HOST


def test_every_sts_mutant_is_registered_and_differs_from_the_reference() -> None:
    from conformance.targets.mutants import MUTANTS
    from reference_impl.mta.mta import MtaVariant

    reference = MtaVariant()
    for variant in mut.STS_MUTANTS:
        assert variant.name in MUTANTS
        assert variant.sts_parts() != reference.sts_parts() or variant != MtaVariant(name=variant.name)
