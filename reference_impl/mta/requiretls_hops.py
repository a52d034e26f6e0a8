"""What the sender knows of an MX host, as RFC 8689 section 4.2.1 asks it (sans-IO glue).

Builds the :class:`~reference_impl.requiretls.nexthop.NextHop` the qualification checks take:
before connecting (step 2: the MX answer's AD bit, the MTA-STS policy's ``mx`` patterns) and
once the session is as secure as it got (steps 4 and 5: TLS, the chain, the names in the
certificate, the EHLO keywords after TLS); and maps a TLS failure the sender recorded (its
RFC 8460 result type) to the condition that failed. Split from :mod:`reference_impl.mta.sender`.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum

from reference_impl.mta import delivery as decide
from reference_impl.mta.hostpolicy import HostPolicy
from reference_impl.mta.mxplan import MxHost, Route
from reference_impl.mta.queue import DeliveryJob
from reference_impl.mta.records import TlsResultType
from reference_impl.mta.stspolicy import MxMatcher, StsApplied
from reference_impl.mtasts.policy import Mode
from reference_impl.requiretls.nexthop import NextHop, NextHopFailure, cert_names_from_der

__all__ = ["FAILURE_OF_RESULT", "RequireTlsMode", "base_hop", "requiretls_mode", "session_hop"]

# RFC 8460 4.3 result type of a TLS failure -> the RFC 8689 4.2.1 condition it breaks.
FAILURE_OF_RESULT: Mapping[TlsResultType, NextHopFailure] = {
    TlsResultType.STARTTLS_NOT_SUPPORTED: NextHopFailure.NO_TLS,
    TlsResultType.CERTIFICATE_HOST_MISMATCH: NextHopFailure.CERT_NAME_MISMATCH,
    TlsResultType.CERTIFICATE_EXPIRED: NextHopFailure.CERT_UNTRUSTED,
    TlsResultType.CERTIFICATE_NOT_TRUSTED: NextHopFailure.CERT_UNTRUSTED,
    TlsResultType.TLSA_INVALID: NextHopFailure.CERT_UNTRUSTED,
    TlsResultType.VALIDATION_FAILURE: NextHopFailure.NO_TLS,  # handshake failed, old protocol
}


class RequireTlsMode(Enum):
    """How the sender treats a job under RFC 8689."""

    NONE = "none"  # no REQUIRETLS: the ordinary TLS policy (MTA-STS, DANE, opportunistic)
    STRICT = "strict"  # section 4.2.1: every condition, a bounce when no MX qualifies
    # Section 5: the NDN of a REQUIRETLS message "MUST be protected in the same manner as the
    # original message", yet "SHOULD NOT" be discarded because "the next-hop relay does not
    # advertise REQUIRETLS": the 4.2.1 conditions without the keyword, sent with REQUIRETLS
    # where the hop advertises it; with no qualifying MX it is deferred (a null reverse path
    # cannot take a bounce, RFC 5321 6.1).
    PROTECTED_NDN = "protected-ndn"


def requiretls_mode(job: DeliveryJob, protect_ndn: bool = True) -> RequireTlsMode:
    """Section 4.2.1 applies to a job with the REQUIRETLS parameter and a non-empty reverse
    path; a non-delivery message (empty reverse path) follows section 5 instead."""
    if not decide.requires_tls(job.mail_params):
        return RequireTlsMode.NONE
    if job.sender != "":
        return RequireTlsMode.STRICT
    return RequireTlsMode.PROTECTED_NDN if protect_ndn else RequireTlsMode.NONE


def base_hop(host: MxHost, route: Route, sts: StsApplied, matcher: MxMatcher) -> NextHop:
    """What is known of ``host`` before connecting (RFC 8689 4.2.1 step 2)."""
    matches = sts.policy is not None and matcher(sts.policy, host.name)
    return NextHop(
        mx_name=host.name,
        mx_dnssec_validated=route.mx_authenticated,
        implicit_mx=host.implicit,
        sts_mode=sts.mode,
        sts_mx_match=matches,
    )


def session_hop(
    *,
    host: MxHost,
    tls_version: str | None,
    extensions: Mapping[str, str],
    peer_der: bytes | None,
    result: TlsResultType,
    chain_verified_context: bool,
    policy: HostPolicy,
) -> NextHop:
    """RFC 8689 4.2.1 steps 4 and 5: what the session established. The chain counts as trusted
    when the handshake passed the chain-verifying context (``chain_verified_context``; the
    decision gives up any host whose verification failed); under DANE (RFC 7672) a matching
    TLSA record authenticates instead. An enforced MTA-STS policy (RFC 8461 4.2) still wants
    a DNS-ID."""
    tls = tls_version is not None
    success = tls and result is TlsResultType.SUCCESS
    dane_decides = policy.dane is not None and bool(policy.dane.usable)
    return NextHop(
        mx_name=host.name,
        implicit_mx=host.implicit,
        tls_established=tls,
        chain_trusted=success and chain_verified_context and not dane_decides,
        dane_verified=success and dane_decides,
        cert_names=cert_names_from_der(peer_der),
        dns_id_only=policy.dane is None and policy.sts_mode is Mode.ENFORCE,
        ehlo_keywords=frozenset(k.upper() for k in extensions),
    )
