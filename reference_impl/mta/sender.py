"""Delivering one queued job (one message, one recipient domain) over SMTP: the MX walk.

Implements RFC 5321 section 5.1 (try the MX hosts and each of their addresses in order until
one accepts responsibility) and section 4.2.1 (reply classes per recipient, by way of
:mod:`reference_impl.mta.transaction`), and records one RFC 8460 TLS session result per SMTP
session tried. A connection that is refused or times out is a transient failure (section
4.3.4) and is not recorded, unless the variant's ``transient_result`` says otherwise. Opening
a session with one address and bringing it to TLS (RFC 5321 section 3.1, RFC 3207, the
certificate checks) is :mod:`reference_impl.mta.securing`; the settings and the SMTP client
this module drives are :mod:`reference_impl.mta.sender_settings`.

MTA-STS (RFC 8461 sections 4, 5, 8.4): the job's :class:`~reference_impl.mta.stspolicy.
StsApplied` says which policy is in force. Each MX host is first checked against its ``mx``
patterns (under ``enforce`` a mismatching host is skipped like an unreachable one and never
connected to; under ``testing`` the mismatch is recorded); the host is then tried under the
policy's TLS decision (:func:`~reference_impl.mta.hostpolicy.sts_host_policy`), and when no
host took the message the policy's failures decide the outcome (section 5).

DANE (RFC 7672): the job's :class:`~reference_impl.mta.danepolicy.DaneApplied` says, per MX
host, whether DANE applies (:mod:`reference_impl.mta.danepolicy`). A host whose TLSA lookup
failed in a signed zone, or that lacks validated TLSA records while DANE is required for the
domain, is never connected to and gets a record without a session ("dnssec-invalid",
"dane-required", RFC 8460 4.3.2.1). Where DANE applies it decides alone (MTA-STS is not
consulted for that host, RFC 8461 section 2; how the session is then secured:
:mod:`reference_impl.mta.securing`).

Every decision is taken by a pure function (:mod:`reference_impl.mta.delivery`,
:mod:`reference_impl.mta.mxplan`); this module only talks to the network and obeys them.

REQUIRETLS (RFC 8689 section 4.2.1), for a message with the REQUIRETLS MAIL parameter and a
non-empty reverse path (``strict``): each MX host must pass the checks of
:mod:`reference_impl.requiretls.nexthop`. The MX name is checked before connecting (DNSSEC or an
MTA-STS ``mx`` match); every TLS failure gives the host up and the handshake verifies the chain
(:mod:`reference_impl.mta.securing`); the MX name must then match a DNS-ID or a CN-ID of the
certificate (under an enforced MTA-STS policy DNS-IDs only), and the EHLO after TLS must list
REQUIRETLS. A host that fails gets QUIT and the next is tried; the message then goes out with
``MAIL FROM:<..> REQUIRETLS``. When no host qualified and every host tried failed one of those
conditions, the message fails permanently at once with
5.7.30 (the last failure was a missing REQUIRETLS) or 5.7.10 (anything else): section 4.2.1's
"MUST NOT transmit" and "MUST send a non-delivery notification". A host that could not be asked
at all (refused connection, timeout, 4xx greeting) leaves the question open: the message is
deferred as usual. A non-delivery message (empty reverse path) of a REQUIRETLS message is
"protected in the same manner as the original" (section 5): the same conditions except the
REQUIRETLS keyword (it "SHOULD NOT" be discarded because the next hop lacks it), sent with
REQUIRETLS whenever the next hop advertises it, and deferred when no MX qualifies
(:class:`~reference_impl.mta.requiretls_hops.RequireTlsMode`).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from reference_impl.mta import delivery as decide
from reference_impl.mta.danepolicy import NO_DANE, DaneApplied, DaneStatus, MxDane
from reference_impl.mta.hostpolicy import (
    HostPolicy,
    dane_failure_record,
    dane_host_policy,
    mx_mismatch_record,
    sts_host_policy,
)
from reference_impl.mta.mxplan import MxHost, Route, RouteKind
from reference_impl.mta.mxtls import MxContextFactory as MxContextFactory  # re-exported
from reference_impl.mta.mxtls import unverified_mx_context as unverified_mx_context  # re-exported
from reference_impl.mta.mxtls import verified_mx_context as verified_mx_context  # re-exported
from reference_impl.mta.queue import DeliveryJob, OutcomeKind, RecipientOutcome
from reference_impl.mta.records import TlsSessionRecord
from reference_impl.mta.requiretls_hops import (
    FAILURE_OF_RESULT,
    RequireTlsMode,
    base_hop,
    requiretls_mode,
    session_hop,
)
from reference_impl.mta.securing import Attempt, NotOpened, open_session, secure, session_record
from reference_impl.mta.sender_settings import HostWalk as HostWalk  # re-exported
from reference_impl.mta.sender_settings import LocalIp as LocalIp  # re-exported
from reference_impl.mta.sender_settings import RecordHook as RecordHook  # re-exported
from reference_impl.mta.sender_settings import SenderSettings as SenderSettings  # re-exported
from reference_impl.mta.sender_settings import SmtpClient as SmtpClient  # re-exported
from reference_impl.mta.sender_settings import SmtpConnector as SmtpConnector  # re-exported
from reference_impl.mta.sender_settings import SniChoice as SniChoice  # re-exported
from reference_impl.mta.sender_settings import TransientResult as TransientResult  # re-exported
from reference_impl.mta.sender_settings import no_transient_record as no_transient_record  # re-exported
from reference_impl.mta.sender_settings import socket_local_ip as socket_local_ip  # re-exported
from reference_impl.mta.sender_settings import walk_all_hosts as walk_all_hosts  # re-exported
from reference_impl.mta.sender_settings import walk_first_host_only as walk_first_host_only  # re-exported
from reference_impl.mta.stspolicy import (
    NO_POLICY,
    MxAction,
    NoDelivery,
    StsApplied,
)
from reference_impl.mta.transaction import run_transaction
from reference_impl.requiretls.nexthop import NextHopFailure, failure_status
from reference_impl.smtp.errors import SmtpError


@dataclass(frozen=True, slots=True)
class JobResult:
    outcomes: tuple[RecipientOutcome, ...]
    tls_records: tuple[TlsSessionRecord, ...]


def route_outcomes(job: DeliveryJob, route: Route) -> tuple[RecipientOutcome, ...] | None:
    """Outcomes decided by the route alone (bounce or defer), or None to go deliver."""
    addresses = [r.address for r in job.recipients]
    if route.kind is RouteKind.BOUNCE:
        return decide.outcomes_for_all(addresses, OutcomeKind.PERMANENT, route.status, route.reason)
    if route.kind is RouteKind.DEFER:
        return decide.outcomes_for_all(addresses, OutcomeKind.TEMPORARY, route.status, route.reason)
    return None


async def deliver_job(
    job: DeliveryJob, route: Route, settings: SenderSettings, sts: StsApplied = NO_POLICY, dane: DaneApplied = NO_DANE
) -> JobResult:
    """Deliver ``job`` along ``route`` under the MTA-STS state ``sts`` and the DANE state
    ``dane``; every recipient gets exactly one outcome."""
    decided = route_outcomes(job, route)
    if decided is not None:
        return JobResult(decided, ())
    records: list[TlsSessionRecord] = []
    errors: list[str] = []
    checked: dict[str, MxAction] = {}
    enforced_failures = 0
    rt = settings.requiretls
    mode = requiretls_mode(job, rt.ndn_protected)
    strict = mode is not RequireTlsMode.NONE
    last_failure: NextHopFailure | None = None
    unanswered = False  # a host that could not be asked whether it qualifies
    for host, address in settings.host_walk(route):
        mx_dane = dane.for_host(host.name)
        if strict:
            # RFC 8689 4.2.1 step 2: the MX name is trusted (DNSSEC or MTA-STS) or not used.
            hop = base_hop(host, route, sts, settings.sts_mx_matcher)
            failure = rt.mx_name_check(hop, settings.requiretls_options)
            if failure is not None:
                last_failure = failure
                errors.append(f"{host.name}[{address}]: REQUIRETLS: {failure.value}")
                continue
        action = checked.get(host.name)
        if action is None:
            action = checked[host.name] = _check_host(job, host, settings, sts, mx_dane, records)
        if action is MxAction.SKIP:
            # RFC 8461 sections 5 and 8.4, RFC 7672 2.2.3 and 6: treated as unreachable.
            enforced_failures += 1
            why = mx_dane.detail if mx_dane.blocks else "not a valid MX for the MTA-STS policy"
            errors.append(f"{host.name}[{address}]: {why}")
            continue
        if mx_dane.status is DaneStatus.APPLIES:
            policy = dane_host_policy(mx_dane, settings.dane_enforcement)
        else:
            policy = sts_host_policy(sts, settings.sts_enforcement, settings.tls_decision)
        attempt = await _attempt_address(job, host, address, settings, policy)
        if strict and attempt.outcomes is None:
            if attempt.requiretls_failure is not None:
                last_failure = attempt.requiretls_failure
            else:
                unanswered = True
        if attempt.record is not None:
            records.append(settings.record_hook(attempt.record))
            if policy.enforced and attempt.outcomes is None and attempt.tls_failed:
                enforced_failures += 1
        if attempt.outcomes is not None:
            return JobResult(attempt.outcomes, tuple(records))
        errors.append(f"{host.name}[{address}]: {attempt.error}")
    # RFC 5321 section 4.5.4.1: no host took the message; queue it for a later try
    # (RFC 8461 section 5: a policy failure too, see stspolicy.no_delivery_outcome).
    reason = "no MX host accepted the connection: " + "; ".join(errors)
    kind, status = settings.sts_no_delivery(NoDelivery(sts.mode, enforced_failures, reason))
    if mode is RequireTlsMode.STRICT and last_failure is not None and not unanswered:
        # RFC 8689 4.2.1: no MX qualified: a non-delivery notice (5.7.30 / 5.7.10).
        reason = "no MX host qualified for REQUIRETLS: " + "; ".join(errors)
        kind, status = rt.no_hop_outcome(last_failure)
    elif mode is RequireTlsMode.PROTECTED_NDN and last_failure is not None:
        # RFC 8689 section 5: the NDN waits for a protected path (it cannot itself bounce).
        reason = "no MX host qualified for the NDN of a REQUIRETLS message: " + "; ".join(errors)
        kind, status = OutcomeKind.TEMPORARY, "4" + failure_status(last_failure)[1:]
    addresses = [r.address for r in job.recipients]
    outcomes = decide.outcomes_for_all(addresses, kind, status, reason[:900])
    return JobResult(outcomes, tuple(records))


def _check_host(
    job: DeliveryJob,
    host: MxHost,
    settings: SenderSettings,
    sts: StsApplied,
    mx_dane: MxDane,
    records: list[TlsSessionRecord],
) -> MxAction:
    """Whether the host may be connected to at all (asked once per host). A policy record
    without a session goes to ``records`` when it may not, and when MTA-STS testing lets a
    host that fails the ``mx`` patterns through."""
    if mx_dane.blocks:
        # RFC 7672 2.2.3 and 6, RFC 8460 4.3.2.1: dnssec-invalid or dane-required; not used.
        records.append(settings.record_hook(dane_failure_record(job.domain, host.name, mx_dane, settings.clock.now())))
        return MxAction.SKIP
    if mx_dane.status is DaneStatus.APPLIES:
        return MxAction.DELIVER  # RFC 8461 section 2: DANE decides; the mx patterns are not asked
    matches = sts.policy is None or settings.sts_mx_matcher(sts.policy, host.name)
    action = settings.sts_mx_decision(sts.mode, matches)
    if action is not MxAction.DELIVER:
        # RFC 8461 section 6, RFC 8460 4.3.3: the MX is not valid for the policy.
        records.append(settings.record_hook(mx_mismatch_record(job.domain, host.name, sts, settings.clock.now())))
    return action


async def _attempt_address(
    job: DeliveryJob, host: MxHost, address: str, settings: SenderSettings, policy: HostPolicy
) -> Attempt:
    try:
        async with asyncio.timeout(settings.session_timeout):
            return await _session(job, host, address, settings, policy)
    except TimeoutError:
        return Attempt(error="session deadline passed")


async def _session(
    job: DeliveryJob, host: MxHost, address: str, settings: SenderSettings, policy: HostPolicy
) -> Attempt:
    opened = await open_session(host, address, settings)
    if isinstance(opened, NotOpened):
        result = settings.transient_result(opened.error) if opened.connect_failed else None
        if result is None:
            return Attempt(error=opened.error)  # RFC 8460 section 4.3.4: not reported
        record = session_record(job, host, address, None, result, settings, policy, reason=opened.error, sending_ip="")
        return Attempt(record=record, error=opened.error)
    client = opened
    try:
        try:
            secured = await secure(client, job, host, address, settings, policy)
        except SmtpError as exc:  # timeout or lost connection around STARTTLS
            return Attempt(error=f"session failed before MAIL: {exc}")
        mode = requiretls_mode(job, settings.requiretls.ndn_protected)
        if isinstance(secured, Attempt):
            if mode is not RequireTlsMode.NONE:
                if secured.record is not None:
                    secured.requiretls_failure = FAILURE_OF_RESULT.get(secured.record.result_type)
                await _quit_quietly(client)  # RFC 8689 4.2.1: "MUST issue a QUIT" (if still open)
            return secured
        client, record = secured
        if mode is not RequireTlsMode.NONE:
            der = getattr(client, "peer_certificate_der", None)
            hop = session_hop(
                host=host,
                tls_version=client.tls_version,
                extensions=client.extensions,
                peer_der=der if isinstance(der, bytes) else None,
                result=record.result_type,
                chain_verified_context=settings.requiretls.verify_certificate,
                policy=policy,
            )
            failure = settings.requiretls.session_check(hop)
            if (
                mode is RequireTlsMode.PROTECTED_NDN
                and failure is NextHopFailure.NO_REQUIRETLS
                and not settings.requiretls.ndn_needs_keyword
            ):
                failure = None  # RFC 8689 section 5: the NDN goes on without the keyword
            if failure is not None:
                # RFC 8689 4.2.1: "the client MUST issue a QUIT" and try the next MX.
                await _quit_quietly(client)
                return Attempt(record=record, error=f"REQUIRETLS: {failure.value}", requiretls_failure=failure)
        outcomes = await run_transaction(client, job, host)
        return Attempt(outcomes=outcomes, record=record)
    finally:
        await client.close()


async def _quit_quietly(client: SmtpClient) -> None:
    with contextlib.suppress(SmtpError):  # the session is given up anyway
        await client.quit()
