"""Which policy an MX host is tried under, and the records of hosts never connected to (RFC 8460 4.3, 4.4)."""

from __future__ import annotations

from reference_impl.mta.danepolicy import DaneStatus, MxDane, enforce_dane
from reference_impl.mta.delivery import opportunistic_tls
from reference_impl.mta.hostpolicy import dane_failure_record, dane_host_policy, mx_mismatch_record, sts_host_policy
from reference_impl.mta.records import MX_MISMATCH, POLICY_TYPE_TLSA, TlsResultType
from reference_impl.mta.stspolicy import NO_POLICY, StsApplied, enforce_tls
from reference_impl.mtasts.policy import Mode, Policy

POLICY = Policy(Mode.ENFORCE, 86400, ("mx1.d.test",))
STS = StsApplied(Mode.ENFORCE, POLICY, ("version: STSv1", "mode: enforce"), "id1")
DANE = MxDane(DaneStatus.APPLIES, (), ("3 1 1 ab",))


def test_sts_policy() -> None:
    enforced = sts_host_policy(STS, enforce_tls, opportunistic_tls)
    assert (enforced.policy_type, enforced.policy_strings, enforced.mx_patterns) == (
        "sts",
        STS.policy_strings,
        ("mx1.d.test",),
    )
    assert enforced.decision is enforce_tls and enforced.enforced and enforced.dane is None
    none = sts_host_policy(NO_POLICY, enforce_tls, opportunistic_tls)
    assert none.decision is opportunistic_tls and not none.enforced and none.policy_type == "no-policy-found"


def test_dane_policy() -> None:
    # RFC 8460 4.4, 4.5: tlsa, the TLSA records as policy strings, no mx-host.
    policy = dane_host_policy(DANE, enforce_dane)
    assert (policy.policy_type, policy.policy_strings, policy.mx_patterns) == (POLICY_TYPE_TLSA, ("3 1 1 ab",), ())
    assert policy.decision is enforce_dane and policy.enforced and policy.dane is DANE and policy.sts_mode is None


def test_records_without_a_session() -> None:
    failed = dane_failure_record("d.test", "mx1.d.test", MxDane(DaneStatus.DNSSEC_INVALID, detail="x" * 900), 5.0)
    assert (failed.result_type, failed.ip, failed.sending_ip, failed.policy_type) == (
        TlsResultType.DNSSEC_INVALID,
        "",
        "",
        POLICY_TYPE_TLSA,
    )
    assert failed.failure_reason == "x" * 500 and failed.policy_strings == () and failed.at == 5.0
    required = dane_failure_record("d.test", "mx1.d.test", MxDane(DaneStatus.REQUIRED, detail="why"), 5.0)
    assert required.result_type is TlsResultType.DANE_REQUIRED
    mismatch = mx_mismatch_record("d.test", "mx9.d.test", STS, 6.0)
    assert (mismatch.result_type, mismatch.failure_reason, mismatch.mx_patterns) == (
        TlsResultType.VALIDATION_FAILURE,
        MX_MISMATCH,
        ("mx1.d.test",),
    )
