"""Delivering one queued job (one message, one recipient domain) over SMTP: the asyncio edge.

Implements RFC 5321 section 5.1 (try the MX hosts and each of their addresses in order until
one accepts responsibility), section 3.1 (a non-220 greeting: try elsewhere), section 4.2.1
(reply classes per recipient), RFC 3207 sections 4 and 4.2 (STARTTLS, and EHLO again after
the handshake) and records one RFC 8460 TLS session result per SMTP session tried, with the
local address of the session's socket as the sending MTA's IP (section 4.4 "sending-mta-ip").
A connection that is refused or times out is a transient failure (section 4.3.4) and is not
recorded, unless the variant's ``transient_result`` says otherwise.

MTA-STS (RFC 8461 sections 4, 5, 7.2, 8.4): the job's :class:`~reference_impl.mta.stspolicy.
StsApplied` says which policy is in force. Each MX host is first checked against its ``mx``
patterns (under ``enforce`` a mismatching host is skipped like an unreachable one and never
connected to; under ``testing`` the mismatch is recorded); at each TLS decision point the
enforcement decision is asked instead of the opportunistic one when the mode is ``enforce``;
a session below the TLS floor (1.2, section 7.2) is a TLS failure. The verifying context
matches the MX name against DNS-IDs only (RFC 8461 section 4.2 by way of RFC 6125: no CN
fallback) and refuses protocols below the floor.

DANE (RFC 7672): the job's :class:`~reference_impl.mta.danepolicy.DaneApplied` says, per MX
host, whether DANE applies (:mod:`reference_impl.mta.danepolicy`). A host whose TLSA lookup
failed in a signed zone, or that lacks validated TLSA records while DANE is required for the
domain, is never connected to and gets a record without a session ("dnssec-invalid",
"dane-required", RFC 8460 4.3.2.1). Where DANE applies it decides alone (MTA-STS is not
consulted for that host, RFC 8461 section 2): STARTTLS is mandatory, the handshake uses the
non-verifying context (DANE-EE(3) ignores names, expiry and the Web PKI, RFC 7672 3.1.1), and
the presented chain must then match a usable TLSA record; a mismatch is "tlsa-invalid" and the
host is given up. Records made under DANE carry policy-type "tlsa" and the TLSA RRset as
policy strings (RFC 8460 4.4, 4.5).

Every decision is taken by a pure function (:mod:`reference_impl.mta.delivery`,
:mod:`reference_impl.mta.mxplan`); this module only talks to the network and obeys them.

Certificate verification, and why two connections: the first STARTTLS handshake uses a
verifying context (CERT_REQUIRED, check_hostname, the configured CA file, SNI = MX name), so
OpenSSL itself does the path validation and name check and reports *why* it failed (its
verify code, mapped to an RFC 8460 result type). When the TLS decision says the session may
proceed unverified (opportunistic mode, RFC 7435), the sender reconnects to the same address
and completes STARTTLS with a non-verifying context. The alternative, one handshake with
CERT_NONE and a home-made check of the leaf afterwards, would need a second path validator
and cannot see intermediate certificates on Python 3.11 (only the leaf is exposed), so chains
with intermediates would be misjudged. The world sees the honest sequence: an aborted
handshake, then a new session.

REQUIRETLS (RFC 8689 section 4.2.1), for a message with the REQUIRETLS MAIL parameter and a
non-empty reverse path (``strict``): each MX host must pass the checks of
:mod:`reference_impl.requiretls.nexthop`. The MX name is checked before connecting (DNSSEC or an
MTA-STS ``mx`` match); every TLS failure gives the host up (``RequireTlsParts.tls_decision``);
the handshake verifies the chain (a context without OpenSSL's host name check, so that the MX
name may match a DNS-ID or a CN-ID, checked afterwards; under an enforced MTA-STS policy DNS-IDs
only), and the EHLO after TLS must list REQUIRETLS. A host that fails gets QUIT and the next is
tried; the message then goes out with ``MAIL FROM:<..> REQUIRETLS``. When no host qualified and
every host tried failed one of those conditions, the message fails permanently at once with
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
import ssl
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from reference_impl.dane.tlsa import verify_chain
from reference_impl.mta import delivery as decide
from reference_impl.mta.clock import Clock
from reference_impl.mta.danepolicy import NO_DANE, ChainMatcher, DaneApplied, DaneStatus, MxDane, enforce_dane
from reference_impl.mta.delivery import TlsAction, TlsDecision, TlsSituation, TlsStage
from reference_impl.mta.dsn import sanitize_field_text
from reference_impl.mta.hostpolicy import (
    HostPolicy,
    dane_failure_record,
    dane_host_policy,
    mx_mismatch_record,
    sts_host_policy,
)
from reference_impl.mta.mxplan import MxHost, Route, RouteKind
from reference_impl.mta.mxtls import MxContextFactory as MxContextFactory  # re-exported
from reference_impl.mta.mxtls import PeerChain, presented_chain
from reference_impl.mta.mxtls import unverified_mx_context as unverified_mx_context  # re-exported
from reference_impl.mta.mxtls import verified_mx_context as verified_mx_context  # re-exported
from reference_impl.mta.queue import DeliveryJob, OutcomeKind, RecipientOutcome
from reference_impl.mta.records import POLICY_TYPE_TLSA, TlsResultType, TlsSessionRecord
from reference_impl.mta.requiretls_hops import (
    FAILURE_OF_RESULT,
    RequireTlsMode,
    base_hop,
    requiretls_mode,
    session_hop,
)
from reference_impl.mta.stspolicy import (
    NO_POLICY,
    MxAction,
    MxDecision,
    MxMatcher,
    NoDelivery,
    NoDeliveryDecision,
    StsApplied,
    enforce_tls,
    mx_decision,
    no_delivery_outcome,
)
from reference_impl.mta.transaction import run_transaction
from reference_impl.mtasts.matching import policy_allows_mx
from reference_impl.requiretls.nexthop import NextHopFailure, QualifyOptions, failure_status
from reference_impl.requiretls.policy import RequireTlsParts
from reference_impl.smtp.errors import SmtpError, TlsHandshakeFailed
from reference_impl.smtp.replies import Reply


class SmtpClient(Protocol):
    """What the sender needs of an SMTP client session (``AsyncSmtpClient`` fits)."""

    greeting: Reply
    extensions: dict[str, str]
    tls_version: str | None
    cipher: str | None

    async def ehlo(self) -> Reply: ...
    async def starttls(self, context: ssl.SSLContext, server_hostname: str | None) -> Reply: ...
    async def mail(self, sender: str, params: Sequence[str] = ()) -> Reply: ...
    async def rcpt(self, recipient: str, params: Sequence[str] = ()) -> Reply: ...
    async def data(self, message: bytes) -> Reply: ...
    async def quit(self) -> None: ...
    async def close(self) -> None: ...


class SmtpConnector(Protocol):
    """Opens a session and reads the greeting (``AsyncSmtpClient.connect`` fits)."""

    def __call__(self, host: str, port: int, *, timeout: float, local_hostname: str) -> Awaitable[SmtpClient]: ...


HostWalk = Callable[[Route], Iterable[tuple[MxHost, str]]]
RecordHook = Callable[[TlsSessionRecord], TlsSessionRecord]
# RFC 8460 section 4.3.4: what a failed connection (refused, timed out) is reported as; None: nothing.
TransientResult = Callable[[str], TlsResultType | None]
LocalIp = Callable[["SmtpClient"], str]
# RFC 8461 section 7.1: the SNI sent to an MX is its host name; a function so mutants can change it.
SniChoice = Callable[[str], str | None]


def no_transient_record(detail: str) -> TlsResultType | None:
    """RFC 8460 section 4.3.4: "Transient errors due to too-busy networks, TCP timeouts, etc.,
    are not required to be reported" - and the reference does not: no TLS session took place."""
    return None


def socket_local_ip(client: SmtpClient) -> str:
    """RFC 8460 section 4.4 "sending-mta-ip": the local address of the session's socket.

    ``AsyncSmtpClient`` has no public accessor for its transport, so it is read defensively
    here (an unknown client type gives ""); a public ``local_address`` there would be better."""
    transport = getattr(getattr(client, "_stream", None), "transport", None)
    get_extra_info = getattr(transport, "get_extra_info", None)
    sockname = get_extra_info("sockname") if callable(get_extra_info) else None
    return str(sockname[0]) if isinstance(sockname, tuple) and sockname else ""


def walk_all_hosts(route: Route) -> Iterable[tuple[MxHost, str]]:
    """RFC 5321 section 5.1: every address of every MX host, in the route's order."""
    for host in route.hosts:
        for address in host.addresses:
            yield host, address


def walk_first_host_only(route: Route) -> Iterable[tuple[MxHost, str]]:
    """A deliberately wrong walk that never falls back to another MX (for mutants)."""
    for host in route.hosts[:1]:
        yield host, host.addresses[0]


@dataclass(frozen=True, slots=True)
class SenderSettings:
    connector: SmtpConnector
    local_hostname: str
    mx_port: int
    timeout: float  # per step: connect, each reply, the handshake
    session_timeout: float  # the whole session with one address
    verified_context: ssl.SSLContext
    unverified_context: ssl.SSLContext
    clock: Clock
    attempt_starttls: bool = True
    tls_decision: TlsDecision = decide.opportunistic_tls
    host_walk: HostWalk = walk_all_hosts
    record_hook: RecordHook = field(default=lambda record: record)
    sni_for: SniChoice = field(default=lambda mx_name: mx_name)
    # MTA-STS (RFC 8461 sections 4, 5, 7.2), see reference_impl.mta.stspolicy.
    sts_enforcement: TlsDecision = enforce_tls
    sts_mx_matcher: MxMatcher = policy_allows_mx
    sts_mx_decision: MxDecision = mx_decision
    sts_no_delivery: NoDeliveryDecision = no_delivery_outcome
    tls_floor: str = "TLSv1.2"
    # RFC 8460 sections 4.3.4 and 4.4 (see the module docstring).
    transient_result: TransientResult = no_transient_record
    local_ip: LocalIp = field(default=socket_local_ip)
    # DANE (RFC 7672 sections 2.2, 3), see reference_impl.mta.danepolicy.
    dane_enforcement: TlsDecision = enforce_dane
    dane_matcher: ChainMatcher = verify_chain
    peer_chain: PeerChain = field(default=presented_chain)
    # REQUIRETLS (RFC 8689 section 4.2.1), see reference_impl.requiretls.
    requiretls: RequireTlsParts = field(default_factory=RequireTlsParts)
    requiretls_options: QualifyOptions = field(default_factory=QualifyOptions)
    requiretls_context: ssl.SSLContext | None = None  # chain-verifying, no host name check


@dataclass(frozen=True, slots=True)
class JobResult:
    outcomes: tuple[RecipientOutcome, ...]
    tls_records: tuple[TlsSessionRecord, ...]


@dataclass(slots=True)
class _Attempt:
    """What one address attempt produced; ``outcomes`` None means: try the next address."""

    outcomes: tuple[RecipientOutcome, ...] | None = None
    record: TlsSessionRecord | None = None
    error: str = ""
    requiretls_failure: NextHopFailure | None = None  # RFC 8689 4.2.1: the condition that failed

    @property
    def tls_failed(self) -> bool:
        return self.record is not None and self.record.result_type is not TlsResultType.SUCCESS


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
) -> _Attempt:
    try:
        async with asyncio.timeout(settings.session_timeout):
            return await _session(job, host, address, settings, policy)
    except TimeoutError:
        return _Attempt(error="session deadline passed")


@dataclass(frozen=True, slots=True)
class _NotOpened:
    """Why an address gave no usable session; ``connect_failed``: not even a TCP connection."""

    error: str
    connect_failed: bool = False


async def _open(host: MxHost, address: str, settings: SenderSettings) -> SmtpClient | _NotOpened:
    """Connect, check the greeting, EHLO; why not when this address is unusable."""
    try:
        client = await settings.connector(
            address,
            settings.mx_port,
            timeout=settings.timeout,
            local_hostname=settings.local_hostname,
        )
    except SmtpError as exc:
        return _NotOpened(f"connect failed: {exc}", connect_failed=True)
    try:
        if client.greeting.code != 220:
            # RFC 5321 section 3.1: a 554 (or any non-220) greeting: look elsewhere.
            await client.quit()
            return _NotOpened("greeting " + decide.reply_text(client.greeting.code, client.greeting.lines))
        reply = await client.ehlo()
        if reply.code != 250:
            await client.quit()
            return _NotOpened("EHLO " + decide.reply_text(reply.code, reply.lines))
    except SmtpError as exc:
        await client.close()
        return _NotOpened(f"session failed before MAIL: {exc}")
    except BaseException:
        await client.close()
        raise
    return client


async def _session(
    job: DeliveryJob, host: MxHost, address: str, settings: SenderSettings, policy: HostPolicy
) -> _Attempt:
    opened = await _open(host, address, settings)
    if isinstance(opened, _NotOpened):
        result = settings.transient_result(opened.error) if opened.connect_failed else None
        if result is None:
            return _Attempt(error=opened.error)  # RFC 8460 section 4.3.4: not reported
        record = _record(job, host, address, None, result, settings, policy, reason=opened.error, sending_ip="")
        return _Attempt(record=record, error=opened.error)
    client = opened
    try:
        try:
            secured = await _secure(client, job, host, address, settings, policy)
        except SmtpError as exc:  # timeout or lost connection around STARTTLS
            return _Attempt(error=f"session failed before MAIL: {exc}")
        mode = requiretls_mode(job, settings.requiretls.ndn_protected)
        if isinstance(secured, _Attempt):
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
                return _Attempt(record=record, error=f"REQUIRETLS: {failure.value}", requiretls_failure=failure)
        outcomes = await run_transaction(client, job, host)
        return _Attempt(outcomes=outcomes, record=record)
    finally:
        await client.close()


async def _quit_quietly(client: SmtpClient) -> None:
    with contextlib.suppress(SmtpError):  # the session is given up anyway
        await client.quit()


def _record(
    job: DeliveryJob,
    host: MxHost,
    address: str,
    greeting: Reply | None,  # None: no greeting came (the connection failed)
    result: TlsResultType,
    settings: SenderSettings,
    policy: HostPolicy,
    *,
    client: SmtpClient | None = None,
    reason: str | None = None,
    sending_ip: str,
) -> TlsSessionRecord:
    helo_words = greeting.lines[0].split() if greeting is not None and greeting.lines else []
    return TlsSessionRecord(
        # RFC 8460 section 3 ("Policy Domain"): for DANE, the TLSA base domain (RFC 7672 2.2.3),
        # here the MX host name (no CNAME expansion); for MTA-STS and no policy, the recipient domain.
        policy_domain=host.name if policy.policy_type == POLICY_TYPE_TLSA else job.domain,
        mx_host=host.name,
        ip=address,
        result_type=result,
        tls_version=client.tls_version if client is not None else None,
        cipher=client.cipher if client is not None else None,
        at=settings.clock.now(),
        failure_reason=reason,
        mx_helo=sanitize_field_text(helo_words[0], 255) if helo_words else None,
        policy_type=policy.policy_type,
        policy_strings=policy.policy_strings,
        mx_patterns=policy.mx_patterns,
        sending_ip=sending_ip,
    )


async def _secure(
    client: SmtpClient, job: DeliveryJob, host: MxHost, address: str, settings: SenderSettings, policy: HostPolicy
) -> tuple[SmtpClient, TlsSessionRecord] | _Attempt:
    """Bring the session to the TLS state the decision function allows; returns the client
    to continue with (maybe a new one) and the session's TLS record, or a finished attempt."""
    requiretls = requiretls_mode(job, settings.requiretls.ndn_protected) is not RequireTlsMode.NONE
    greeting = client.greeting
    local_ip = settings.local_ip(client)  # read now: a failed handshake closes the socket
    # RFC 8689 4.2.1: for a REQUIRETLS message every TLS failure is the REQUIRETLS decision's.
    tls_decision = settings.requiretls.tls_decision if requiretls else policy.decision

    def situation(stage: TlsStage, result: TlsResultType, detail: str) -> TlsSituation:
        return TlsSituation(stage, job.domain, host.name, result, detail, requiretls, policy.sts_mode)

    def make_record(
        result: TlsResultType, *, with_client: SmtpClient | None = None, reason: str | None = None
    ) -> TlsSessionRecord:
        return _record(
            job,
            host,
            address,
            greeting,
            result,
            settings,
            policy,
            client=with_client,
            reason=reason,
            sending_ip=local_ip,
        )

    if not settings.attempt_starttls or "STARTTLS" not in client.extensions:
        detail = "STARTTLS not offered" if settings.attempt_starttls else "STARTTLS not tried"
        result = TlsResultType.STARTTLS_NOT_SUPPORTED
        record = make_record(result, reason=detail)
        action = tls_decision(situation(TlsStage.NOT_OFFERED, result, detail))
        if action is TlsAction.CONTINUE_PLAINTEXT:
            return client, record
        return _Attempt(record=record, error=f"{detail}; TLS policy: {action.value}")

    # RFC 7672 section 3: under DANE the TLSA records authenticate the server, not the Web PKI;
    # with only unusable records nothing would, and a REQUIRETLS message (RFC 8689 4.2.1) then
    # needs the Web PKI after all.
    tlsa_decides = policy.dane is not None and (bool(policy.dane.usable) or not requiretls)
    context = settings.unverified_context if tlsa_decides else settings.verified_context
    if requiretls and not tlsa_decides:
        # RFC 8689 4.2.1 step 4: the chain is verified here; the name (DNS-ID or CN-ID) after.
        chain_only = settings.requiretls_context or settings.verified_context
        context = chain_only if settings.requiretls.verify_certificate else settings.unverified_context
    try:
        reply = await client.starttls(context, settings.sni_for(host.name))
    except TlsHandshakeFailed as exc:
        if exc.verify_code is not None:
            stage, result = (
                TlsStage.CERTIFICATE_INVALID,
                decide.classify_verify_failure(exc.verify_code),
            )
        else:
            stage, result = TlsStage.HANDSHAKE_FAILED, TlsResultType.VALIDATION_FAILURE
        action = tls_decision(situation(stage, result, exc.reason))
        failure = _HandshakeFailure(action, result, greeting, exc.reason, local_ip)
        return await _after_failed_handshake(job, host, address, settings, policy, failure)
    if reply.code != 220:
        # RFC 3207 section 4: e.g. 454 "TLS not available due to temporary reason".
        detail = "STARTTLS refused: " + decide.reply_text(reply.code, reply.lines)
        result = TlsResultType.STARTTLS_NOT_SUPPORTED
        record = make_record(result, reason=detail)
        action = tls_decision(situation(TlsStage.REFUSED, result, detail))
        if action is TlsAction.CONTINUE_PLAINTEXT:
            return client, record
        return _Attempt(record=record, error=f"{detail}; TLS policy: {action.value}")
    if not decide.version_at_least(client.tls_version, settings.tls_floor):
        # RFC 8461 section 7.2: TLS 1.2 or higher (the contexts refuse less; this is the rule).
        detail = f"{client.tls_version} is below {settings.tls_floor}"
        result = TlsResultType.VALIDATION_FAILURE
        action = tls_decision(situation(TlsStage.PROTOCOL_TOO_OLD, result, detail))
        if action is not TlsAction.CONTINUE_PLAINTEXT:
            return _Attempt(record=make_record(result, with_client=client, reason=detail), error=detail)
    mismatch: TlsSessionRecord | None = None
    if policy.dane is not None and policy.dane.usable:
        # RFC 7672 section 3: the presented chain must match one usable TLSA record (with
        # only unusable records, section 2.2: TLS is mandatory but unauthenticated).
        verdict = settings.dane_matcher(policy.dane.usable, settings.peer_chain(client), (host.name,))
        if not verdict.ok:
            result = TlsResultType.TLSA_INVALID  # RFC 8460 section 4.3.2.1
            mismatch = make_record(result, with_client=client, reason=verdict.reason)
            action = tls_decision(situation(TlsStage.CERTIFICATE_INVALID, result, verdict.reason))
            if action is TlsAction.NEXT_HOST:
                return _Attempt(record=mismatch, error=f"TLSA mismatch ({verdict.reason})")
            # Any other decision goes on in this session: encrypted, not authenticated.
    # RFC 3207 section 4.2: forget what was learnt before TLS and EHLO again.
    ehlo = await client.ehlo()
    session = mismatch or make_record(TlsResultType.SUCCESS, with_client=client)
    if ehlo.code != 250:
        return _Attempt(record=session, error="EHLO after STARTTLS " + decide.reply_text(ehlo.code, ehlo.lines))
    return client, session


@dataclass(frozen=True, slots=True)
class _HandshakeFailure:
    """A failed STARTTLS handshake: what the TLS decision said, and what to record."""

    action: TlsAction
    result: TlsResultType
    greeting: Reply
    reason: str
    sending_ip: str


async def _after_failed_handshake(
    job: DeliveryJob,
    host: MxHost,
    address: str,
    settings: SenderSettings,
    policy: HostPolicy,
    failure: _HandshakeFailure,
) -> tuple[SmtpClient, TlsSessionRecord] | _Attempt:
    """The handshake failed (the client is closed). Reconnect if the decision allows."""
    action, result = failure.action, failure.result

    def record(client: SmtpClient | None = None) -> TlsSessionRecord:
        # The session's record keeps the verification failure: it is what TLSRPT reports,
        # even though the message may now travel over unauthenticated TLS (or none).
        return _record(
            job,
            host,
            address,
            failure.greeting,
            result,
            settings,
            policy,
            client=client,
            reason=failure.reason,
            sending_ip=failure.sending_ip,
        )

    if action is TlsAction.NEXT_HOST:
        return _Attempt(record=record(), error=f"TLS failed ({result.value}: {failure.reason})")
    opened = await _open(host, address, settings)
    if isinstance(opened, _NotOpened):
        return _Attempt(record=record(), error=f"TLS failed, then reconnect: {opened.error}")
    client = opened
    try:
        if action is TlsAction.RETRY_UNVERIFIED and "STARTTLS" in client.extensions:
            reply = await client.starttls(settings.unverified_context, settings.sni_for(host.name))
            if reply.code == 220:
                ehlo = await client.ehlo()  # RFC 3207 section 4.2
                if ehlo.code != 250:
                    raise _Unusable("EHLO after STARTTLS " + decide.reply_text(ehlo.code, ehlo.lines))
        return client, record(client)
    except TlsHandshakeFailed as exc:
        return _Attempt(record=record(), error=f"unverified TLS retry failed: {exc.reason}")
    except (_Unusable, SmtpError) as exc:
        await client.close()
        return _Attempt(record=record(), error=f"retry after TLS failure: {exc}")


class _Unusable(Exception):
    """This address cannot be used any further (internal to this module)."""
