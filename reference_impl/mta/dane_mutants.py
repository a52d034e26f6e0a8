"""DANE mutants of the reference MTA (RFC 7672, and RFC 8460 4.3.2.1 / 4.4 for its reports).

Each swaps one part of :class:`~reference_impl.mta.config.MtaVariant`: a part of ``DaneParts``
(which hosts get a TLSA lookup, what a TLSA answer means, what a DANE failure does) or the
record hook (what a DANE session is recorded as for TLSRPT). Nothing in the reference branches
on a flag. Each is observable from outside: the world sees a delivery that should not happen
(or none that should), a TLSA query that never comes, or a report that says something else.

They are exported with the TLSRPT mutants (``reference_impl.mta.mutants.TLSRPT_MUTANTS`` and
``TLSRPT_DESCRIPTIONS``), so the conformance registry names them with their descriptions.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from reference_impl.mta.config import MtaVariant
from reference_impl.mta.danepolicy import DaneParts, MxDane, tlsa_state
from reference_impl.mta.delivery import TlsAction, TlsSituation, TlsStage
from reference_impl.mta.mxplan import LookupResult, LookupStatus
from reference_impl.mta.records import POLICY_TYPE_STS, POLICY_TYPE_TLSA, TlsResultType, TlsSessionRecord

__all__ = ["DANE_DESCRIPTIONS", "DANE_MUTANTS"]


def tlsa_as_sts(record: TlsSessionRecord) -> TlsSessionRecord:
    """RFC 8460 4.4, 4.5: a session under DANE recorded as policy-type sts, without the TLSA records."""
    if record.policy_type != POLICY_TYPE_TLSA:
        return record
    return dataclasses.replace(record, policy_type=POLICY_TYPE_STS, policy_strings=())


def tlsa_invalid_as_generic(record: TlsSessionRecord) -> TlsSessionRecord:
    """RFC 8460 4.3.2.1: a TLSA mismatch recorded as the 4.3.3 catch-all validation-failure."""
    if record.result_type is not TlsResultType.TLSA_INVALID:
        return record
    return dataclasses.replace(record, result_type=TlsResultType.VALIDATION_FAILURE)


def failed_lookup_as_no_tlsa(answer: LookupResult | None, required: bool) -> MxDane:
    """RFC 7672 2.2.3, RFC 8460 4.3.2.1: a TLSA lookup that failed (SERVFAIL) taken as "no TLSA
    records": the MX is used without DANE and nothing is recorded as dnssec-invalid."""
    if answer is not None and answer.status is LookupStatus.TEMPFAIL:
        answer = LookupResult(LookupStatus.NODATA, authenticated=answer.authenticated)
    return tlsa_state(answer, required)


def never_look_up(mx_authenticated: bool, host_authenticated: bool) -> bool:
    """RFC 7672 2.2.3: TLSA records are never looked up, so DANE never applies."""
    return False


def deliver_on_mismatch(situation: TlsSituation) -> TlsAction:
    """RFC 7672 3: a chain that matches no TLSA record is used anyway (the session goes on,
    encrypted but not authenticated); every other DANE failure still gives the host up."""
    if situation.stage is TlsStage.CERTIFICATE_INVALID:
        return TlsAction.CONTINUE_PLAINTEXT  # under DANE: "go on in this session as it is"
    return TlsAction.NEXT_HOST


def _m(name: str, **parts: Any) -> MtaVariant:
    """The reference with one ``MtaVariant`` field swapped."""
    return dataclasses.replace(MtaVariant(name=name), **parts)


def _dane(name: str, **parts: Any) -> MtaVariant:
    """The reference with one ``DaneParts`` field swapped."""
    return MtaVariant(name=name, dane=DaneParts(**parts))


DANE_MUTANTS = (
    _m("tlsrpt-dane-as-sts", record_hook=tlsa_as_sts),
    _m("tlsrpt-tlsa-invalid-as-generic", record_hook=tlsa_invalid_as_generic),
    _dane("tlsrpt-dnssec-invalid-ignored", tlsa_state=failed_lookup_as_no_tlsa),
    _dane("dane-ignored", tlsa_wanted=never_look_up),
    _dane("dane-not-enforced", enforcement=deliver_on_mismatch),
)

DANE_DESCRIPTIONS: dict[str, str] = {
    "tlsrpt-dane-as-sts": "sessions under DANE are reported as policy-type sts without the TLSA records "
    "(RFC 8460 4.4, 4.5)",
    "tlsrpt-tlsa-invalid-as-generic": "a TLSA mismatch is reported as validation-failure, not tlsa-invalid "
    "(RFC 8460 4.3.2.1)",
    "tlsrpt-dnssec-invalid-ignored": "a failed TLSA lookup in a signed zone is taken as no TLSA: delivered, "
    "no dnssec-invalid (RFC 8460 4.3.2.1, RFC 7672 2.2.3)",
    "dane-ignored": "never looks TLSA records up (RFC 7672 2.2.3)",
    "dane-not-enforced": "delivers to an MX whose certificate matches no TLSA record (RFC 7672 3)",
}
