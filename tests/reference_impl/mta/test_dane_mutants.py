"""Each DANE mutant (reference_impl.mta.dane_mutants) swaps one part, and that part differs."""

from __future__ import annotations

import dataclasses

import pytest

from reference_impl.mta import dane_mutants as mut
from reference_impl.mta import mutants
from reference_impl.mta.config import MtaVariant, keep_record
from reference_impl.mta.danepolicy import DaneParts, DaneStatus
from reference_impl.mta.delivery import TlsAction, TlsSituation, TlsStage
from reference_impl.mta.mxplan import LookupResult, LookupStatus
from reference_impl.mta.records import POLICY_TYPE_STS, POLICY_TYPE_TLSA, TlsResultType, TlsSessionRecord

RECORD = TlsSessionRecord(
    "d.test",
    "mx1.d.test",
    "192.0.2.1",
    TlsResultType.TLSA_INVALID,
    "TLSv1.3",
    None,
    0.0,
    "no TLSA record matches",
    policy_type=POLICY_TYPE_TLSA,
    policy_strings=("3 1 1 ab",),
)


def variant(name: str) -> MtaVariant:
    [found] = [v for v in mut.DANE_MUTANTS if v.name == name]
    return found


def test_every_mutant_swaps_exactly_one_part_and_is_registered() -> None:
    reference = MtaVariant()
    names = [v.name for v in mut.DANE_MUTANTS]
    assert len(names) == len(set(names)) == 5 and set(names) == set(mut.DANE_DESCRIPTIONS)
    assert all("RFC 7672" in d or "RFC 8460" in d for d in mut.DANE_DESCRIPTIONS.values())
    for v in mut.DANE_MUTANTS:
        changed = [f.name for f in dataclasses.fields(MtaVariant) if getattr(v, f.name) != getattr(reference, f.name)]
        assert changed in (["name", "record_hook"], ["name", "dane"]), (v.name, changed)
        if changed[1] == "dane":
            parts = [
                f.name
                for f in dataclasses.fields(DaneParts)
                if getattr(v.dane, f.name) != getattr(reference.dane, f.name)
            ]
            assert len(parts) == 1, (v.name, parts)
    # Exported with the TLSRPT mutants, so the conformance registry names them.
    assert set(names) <= {v.name for v in mutants.TLSRPT_MUTANTS}
    assert {n: mutants.TLSRPT_DESCRIPTIONS[n] for n in names} == mut.DANE_DESCRIPTIONS
    from conformance.targets.mutants import MUTANTS

    assert set(names) <= set(MUTANTS)


def test_dane_as_sts() -> None:
    hook = variant("tlsrpt-dane-as-sts").record_hook
    changed = hook(RECORD)
    assert (changed.policy_type, changed.policy_strings) == (POLICY_TYPE_STS, ())
    other = dataclasses.replace(RECORD, policy_type="no-policy-found", policy_strings=())
    assert hook(other) == other and keep_record(RECORD) == RECORD


def test_tlsa_invalid_as_generic() -> None:
    hook = variant("tlsrpt-tlsa-invalid-as-generic").record_hook
    assert hook(RECORD).result_type is TlsResultType.VALIDATION_FAILURE
    success = dataclasses.replace(RECORD, result_type=TlsResultType.SUCCESS)
    assert hook(success) == success


def test_dnssec_invalid_ignored() -> None:
    decide = variant("tlsrpt-dnssec-invalid-ignored").dane.tlsa_state
    failed = LookupResult(LookupStatus.TEMPFAIL, detail="SERVFAIL")
    assert DaneParts().tlsa_state(failed, False).status is DaneStatus.DNSSEC_INVALID
    assert decide(failed, False).status is DaneStatus.NONE
    assert decide(failed, True).status is DaneStatus.REQUIRED
    found = LookupResult(LookupStatus.OK, tlsa=("3 1 1 ab",), authenticated=True)
    assert decide(found, False).status is DaneStatus.APPLIES


def test_dane_ignored_never_looks_up() -> None:
    assert not variant("dane-ignored").dane.tlsa_wanted(True, True)


@pytest.mark.parametrize(
    ("stage", "action"),
    [
        (TlsStage.CERTIFICATE_INVALID, TlsAction.CONTINUE_PLAINTEXT),
        (TlsStage.NOT_OFFERED, TlsAction.NEXT_HOST),
        (TlsStage.HANDSHAKE_FAILED, TlsAction.NEXT_HOST),
    ],
)
def test_dane_not_enforced_lets_only_a_mismatch_through(stage: TlsStage, action: TlsAction) -> None:
    situation = TlsSituation(stage, "d.test", "mx1.d.test", TlsResultType.TLSA_INVALID, None, False)
    assert variant("dane-not-enforced").dane.enforcement(situation) is action
