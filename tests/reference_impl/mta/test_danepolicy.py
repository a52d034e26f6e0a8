"""DANE decisions of the sending MTA (RFC 7672 2.2, 3, 6; RFC 8460 4.3.2.1)."""

from __future__ import annotations

import pytest

from reference_impl.dane.tlsa import Usage, verify_chain
from reference_impl.mta.danepolicy import (
    NO_DANE,
    NO_DANE_MX,
    DaneApplied,
    DaneParts,
    DaneStatus,
    MxDane,
    enforce_dane,
    secure_destination,
    tlsa_name,
    tlsa_state,
)
from reference_impl.mta.delivery import TlsAction, TlsSituation, TlsStage
from reference_impl.mta.mxplan import LookupResult, LookupStatus
from reference_impl.mta.records import TlsResultType

OK, NODATA, NXDOMAIN, TEMPFAIL = LookupStatus.OK, LookupStatus.NODATA, LookupStatus.NXDOMAIN, LookupStatus.TEMPFAIL
EE = "3 1 1 " + "ab" * 32


def tlsa(*records: str, ad: bool = True) -> LookupResult:
    return LookupResult(OK, tlsa=records, authenticated=ad)


def test_tlsa_name() -> None:
    # RFC 7672 2.2.3, RFC 6698 3: _25._tcp.<TLSA base domain>.
    assert tlsa_name("mx1.d.test") == "_25._tcp.mx1.d.test"
    assert tlsa_name("mx1.d.test.", port=465) == "_465._tcp.mx1.d.test"


@pytest.mark.parametrize(("mx", "host", "wanted"), [(True, True, True), (True, False, False), (False, True, False)])
def test_tlsa_is_looked_up_only_for_hosts_found_securely(mx: bool, host: bool, wanted: bool) -> None:
    assert secure_destination(mx, host) is wanted


# (TLSA answer, DANE required) -> status; None: not looked up (insecure host)
TABLE = [
    (None, False, DaneStatus.NONE),
    (None, True, DaneStatus.REQUIRED),
    (tlsa(EE), False, DaneStatus.APPLIES),
    (tlsa(EE), True, DaneStatus.APPLIES),
    (tlsa(EE, ad=False), False, DaneStatus.NONE),  # insecure: no DANE
    (tlsa(EE, ad=False), True, DaneStatus.REQUIRED),
    (LookupResult(NODATA, authenticated=True), False, DaneStatus.NONE),
    (LookupResult(NXDOMAIN, authenticated=True), False, DaneStatus.NONE),
    (LookupResult(NXDOMAIN, authenticated=True), True, DaneStatus.REQUIRED),
    (LookupResult(TEMPFAIL, detail="SERVFAIL"), False, DaneStatus.DNSSEC_INVALID),
    (LookupResult(TEMPFAIL, detail="timeout"), True, DaneStatus.DNSSEC_INVALID),
]


@pytest.mark.parametrize(("answer", "required", "status"), TABLE)
def test_tlsa_state(answer: LookupResult | None, required: bool, status: DaneStatus) -> None:
    state = tlsa_state(answer, required)
    assert state.status is status
    assert state.blocks is (status in (DaneStatus.REQUIRED, DaneStatus.DNSSEC_INVALID))
    expected = {
        DaneStatus.REQUIRED: TlsResultType.DANE_REQUIRED,
        DaneStatus.DNSSEC_INVALID: TlsResultType.DNSSEC_INVALID,
    }.get(status)
    assert state.result_type is expected
    if state.blocks:
        assert state.detail and state.policy_strings == ()  # RFC 8460 4.3.2.1: no records to show


def test_a_failed_lookup_says_why() -> None:
    assert tlsa_state(LookupResult(TEMPFAIL, detail="SERVFAIL"), False).detail == "TLSA lookup failed: SERVFAIL"
    assert "not DNSSEC-validated" in tlsa_state(tlsa(EE, ad=False), True).detail
    assert "no TLSA records" in tlsa_state(LookupResult(NODATA, authenticated=True), True).detail


def test_the_rrset_becomes_records_and_sorted_policy_strings() -> None:
    state = tlsa_state(tlsa("3 1 1 " + "CD" * 32, "4 0 1 ab", "1 1 1 ef", "2 0 1 01"), False)
    assert state.status is DaneStatus.APPLIES
    # RFC 8460 4.5: every RR of the set, presentation form; an unknown usage is kept as published.
    assert state.policy_strings == ("1 1 1 ef", "2 0 1 01", "3 1 1 " + "cd" * 32, "4 0 1 ab")
    assert [int(r.usage) for r in state.records] == [3, 1, 2]
    assert [r.usage for r in state.usable] == [Usage.DANE_EE, Usage.DANE_TA]


def test_only_unusable_records_still_apply() -> None:
    # RFC 7672 2.2: TLS stays mandatory (the sender does not authenticate the chain then).
    state = tlsa_state(tlsa("1 1 1 ab", "0 0 1 cd"), False)
    assert state.status is DaneStatus.APPLIES and state.usable == ()


def test_applied_per_host() -> None:
    applied = DaneApplied((("mx1.d.test", tlsa_state(tlsa(EE), False)),))
    assert applied.for_host("mx1.d.test").status is DaneStatus.APPLIES
    assert applied.for_host("mx2.d.test") is NO_DANE_MX
    assert NO_DANE.for_host("mx1.d.test") is NO_DANE_MX
    assert MxDane(DaneStatus.NONE).result_type is None


@pytest.mark.parametrize("stage", list(TlsStage))
def test_every_dane_failure_gives_the_host_up(stage: TlsStage) -> None:
    situation = TlsSituation(stage, "d.test", "mx1.d.test", TlsResultType.TLSA_INVALID, None, False)
    assert enforce_dane(situation) is TlsAction.NEXT_HOST


def test_the_reference_parts() -> None:
    parts = DaneParts()
    assert (parts.tlsa_wanted, parts.tlsa_state, parts.enforcement, parts.matcher) == (
        secure_destination,
        tlsa_state,
        enforce_dane,
        verify_chain,
    )
