"""Which policy one MX host is tried under, and the policy records without a session (sans-IO).

RFC 8461 section 2 and RFC 7672: where DANE applies to an MX host (a DNSSEC-validated TLSA
RRset, :mod:`reference_impl.mta.danepolicy`) it decides alone; for other hosts the job's MTA-STS
state does (:mod:`reference_impl.mta.stspolicy`). :class:`HostPolicy` is what the sender needs
of either: the TLS decision to ask, whether a TLS failure excludes the host, and what the host's
records say for RFC 8460 section 4.4 "policies" (policy type, policy strings, ``mx`` patterns).

The records of a host that is never connected to (RFC 8460 sections 4.3.2.1 and 4.3.3) are
built here too: an MX the MTA-STS policy's ``mx`` patterns exclude (``validation-failure``,
reason ``mx-mismatch``) and an MX DANE does not let us use (``dnssec-invalid``,
``dane-required``); neither has an IP or a sending IP.
"""

from __future__ import annotations

from dataclasses import dataclass

from reference_impl.mta.danepolicy import MxDane
from reference_impl.mta.delivery import TlsDecision
from reference_impl.mta.records import MX_MISMATCH, POLICY_TYPE_TLSA, TlsResultType, TlsSessionRecord
from reference_impl.mta.stspolicy import StsApplied
from reference_impl.mtasts.policy import Mode

__all__ = ["HostPolicy", "dane_failure_record", "dane_host_policy", "mx_mismatch_record", "sts_host_policy"]


@dataclass(frozen=True, slots=True)
class HostPolicy:
    """The policy one MX host is tried under: DANE where it applies, else the job's MTA-STS
    state; what its records say (RFC 8460 section 4.4) and which TLS decision is asked."""

    policy_type: str
    policy_strings: tuple[str, ...]
    mx_patterns: tuple[str, ...]
    decision: TlsDecision
    sts_mode: Mode | None
    enforced: bool  # a TLS failure excludes the host (counts for the no-delivery outcome)
    dane: MxDane | None = None  # DANE applies: STARTTLS mandatory, the chain matched (RFC 7672 3)


def sts_host_policy(sts: StsApplied, enforcement: TlsDecision, opportunistic: TlsDecision) -> HostPolicy:
    """RFC 8461 section 5: under enforce the policy decides; otherwise opportunistic TLS."""
    enforce = sts.mode is Mode.ENFORCE
    decision = enforcement if enforce else opportunistic
    return HostPolicy(sts.policy_type, sts.policy_strings, sts.mx_patterns, decision, sts.mode, enforce)


def dane_host_policy(mx_dane: MxDane, enforcement: TlsDecision) -> HostPolicy:
    """RFC 7672 sections 2.2, 3; RFC 8460 sections 4.4, 4.5: policy-type tlsa, the RRset as
    policy strings, no mx-host; every TLS failure is the DANE decision's."""
    return HostPolicy(POLICY_TYPE_TLSA, mx_dane.policy_strings, (), enforcement, None, True, mx_dane)


def dane_failure_record(domain: str, mx_host: str, mx_dane: MxDane, at: float) -> TlsSessionRecord:
    """RFC 8460 section 4.3.2.1: "dnssec-invalid" or "dane-required" for an MX never connected to.
    The Policy Domain of a DANE result is the TLSA base domain (RFC 8460 section 3), the MX host;
    ``domain`` (the recipient domain) is kept in the signature for the callers' symmetry."""
    del domain
    return TlsSessionRecord(
        policy_domain=mx_host,
        mx_host=mx_host,
        ip="",
        result_type=mx_dane.result_type or TlsResultType.VALIDATION_FAILURE,
        tls_version=None,
        cipher=None,
        at=at,
        failure_reason=mx_dane.detail[:500] or None,
        policy_type=POLICY_TYPE_TLSA,
        policy_strings=mx_dane.policy_strings,
    )


def mx_mismatch_record(domain: str, mx_host: str, sts: StsApplied, at: float) -> TlsSessionRecord:
    """RFC 8461 section 6, RFC 8460 4.3.3: an MX that matches none of the policy's ``mx`` patterns."""
    return TlsSessionRecord(
        policy_domain=domain,
        mx_host=mx_host,
        ip="",
        result_type=TlsResultType.VALIDATION_FAILURE,
        tls_version=None,
        cipher=None,
        at=at,
        failure_reason=MX_MISMATCH,
        policy_type=sts.policy_type,
        policy_strings=sts.policy_strings,
        mx_patterns=sts.mx_patterns,
    )
