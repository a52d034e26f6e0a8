"""One SMTP session with one MX address, up to the mail transaction: connect, greeting, EHLO, STARTTLS.

Implements RFC 5321 section 3.1 (a non-220 greeting: try elsewhere) and RFC 3207 sections 4
and 4.2 (STARTTLS, a refusal such as 454, and EHLO again after the handshake), and builds the
session's RFC 8460 TLS session record, with the local address of the session's socket as the
sending MTA's IP (section 4.4 "sending-mta-ip"). Each TLS failure is put to the decision of the
host's policy (:class:`~reference_impl.mta.hostpolicy.HostPolicy`, pure functions of
:mod:`reference_impl.mta.delivery`); this module only talks to the network and obeys it. Split
from :mod:`reference_impl.mta.sender`, which walks the MX hosts and runs the transaction.

MTA-STS (RFC 8461 sections 4, 7.2): at each TLS decision point the enforcement decision is
asked instead of the opportunistic one when the mode is ``enforce``; a session below the TLS
floor (1.2, section 7.2) is a TLS failure. The verifying context matches the MX name against
DNS-IDs only (RFC 8461 section 4.2 by way of RFC 6125: no CN fallback) and refuses protocols
below the floor.

DANE (RFC 7672), for a host DANE applies to: STARTTLS is mandatory, the handshake uses the
non-verifying context (DANE-EE(3) ignores names, expiry and the Web PKI, RFC 7672 3.1.1), and
the presented chain must then match a usable TLSA record; a mismatch is "tlsa-invalid" and the
host is given up. Records made under DANE carry policy-type "tlsa" and the TLSA RRset as
policy strings (RFC 8460 4.4, 4.5).

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

REQUIRETLS (RFC 8689 section 4.2.1), for a message that needs it
(:class:`~reference_impl.mta.requiretls_hops.RequireTlsMode`): every TLS failure gives the host
up (``RequireTlsParts.tls_decision``), and the handshake verifies the chain (a context without
OpenSSL's host name check, so that the MX name may match a DNS-ID or a CN-ID, checked afterwards
by :mod:`reference_impl.mta.sender`).
"""

from __future__ import annotations

from dataclasses import dataclass

from reference_impl.mta import delivery as decide
from reference_impl.mta.delivery import TlsAction, TlsSituation, TlsStage
from reference_impl.mta.dsn import sanitize_field_text
from reference_impl.mta.hostpolicy import HostPolicy
from reference_impl.mta.mxplan import MxHost
from reference_impl.mta.queue import DeliveryJob, RecipientOutcome
from reference_impl.mta.records import POLICY_TYPE_TLSA, TlsResultType, TlsSessionRecord
from reference_impl.mta.requiretls_hops import RequireTlsMode, requiretls_mode
from reference_impl.mta.sender_settings import SenderSettings, SmtpClient
from reference_impl.requiretls.nexthop import NextHopFailure
from reference_impl.smtp.errors import SmtpError, TlsHandshakeFailed
from reference_impl.smtp.replies import Reply

__all__ = ["Attempt", "NotOpened", "open_session", "secure", "session_record"]


@dataclass(slots=True)
class Attempt:
    """What one address attempt produced; ``outcomes`` None means: try the next address."""

    outcomes: tuple[RecipientOutcome, ...] | None = None
    record: TlsSessionRecord | None = None
    error: str = ""
    requiretls_failure: NextHopFailure | None = None  # RFC 8689 4.2.1: the condition that failed

    @property
    def tls_failed(self) -> bool:
        return self.record is not None and self.record.result_type is not TlsResultType.SUCCESS


@dataclass(frozen=True, slots=True)
class NotOpened:
    """Why an address gave no usable session; ``connect_failed``: not even a TCP connection."""

    error: str
    connect_failed: bool = False


async def open_session(host: MxHost, address: str, settings: SenderSettings) -> SmtpClient | NotOpened:
    """Connect, check the greeting, EHLO; why not when this address is unusable."""
    try:
        client = await settings.connector(
            address,
            settings.mx_port,
            timeout=settings.timeout,
            local_hostname=settings.local_hostname,
        )
    except SmtpError as exc:
        return NotOpened(f"connect failed: {exc}", connect_failed=True)
    try:
        if client.greeting.code != 220:
            # RFC 5321 section 3.1: a 554 (or any non-220) greeting: look elsewhere.
            await client.quit()
            return NotOpened("greeting " + decide.reply_text(client.greeting.code, client.greeting.lines))
        reply = await client.ehlo()
        if reply.code != 250:
            await client.quit()
            return NotOpened("EHLO " + decide.reply_text(reply.code, reply.lines))
    except SmtpError as exc:
        await client.close()
        return NotOpened(f"session failed before MAIL: {exc}")
    except BaseException:
        await client.close()
        raise
    return client


def session_record(
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


async def secure(
    client: SmtpClient, job: DeliveryJob, host: MxHost, address: str, settings: SenderSettings, policy: HostPolicy
) -> tuple[SmtpClient, TlsSessionRecord] | Attempt:
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
        return session_record(
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

    def without_tls(stage: TlsStage, detail: str) -> tuple[SmtpClient, TlsSessionRecord] | Attempt:
        """No TLS on this session (not offered, not tried, refused): plaintext or give up."""
        result = TlsResultType.STARTTLS_NOT_SUPPORTED
        record = make_record(result, reason=detail)
        action = tls_decision(situation(stage, result, detail))
        if action is TlsAction.CONTINUE_PLAINTEXT:
            return client, record
        return Attempt(record=record, error=f"{detail}; TLS policy: {action.value}")

    if not settings.attempt_starttls or "STARTTLS" not in client.extensions:
        return without_tls(
            TlsStage.NOT_OFFERED, "STARTTLS not offered" if settings.attempt_starttls else "STARTTLS not tried"
        )

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
        return without_tls(TlsStage.REFUSED, "STARTTLS refused: " + decide.reply_text(reply.code, reply.lines))
    if not decide.version_at_least(client.tls_version, settings.tls_floor):
        # RFC 8461 section 7.2: TLS 1.2 or higher (the contexts refuse less; this is the rule).
        detail = f"{client.tls_version} is below {settings.tls_floor}"
        result = TlsResultType.VALIDATION_FAILURE
        action = tls_decision(situation(TlsStage.PROTOCOL_TOO_OLD, result, detail))
        if action is not TlsAction.CONTINUE_PLAINTEXT:
            return Attempt(record=make_record(result, with_client=client, reason=detail), error=detail)
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
                return Attempt(record=mismatch, error=f"TLSA mismatch ({verdict.reason})")
            # Any other decision goes on in this session: encrypted, not authenticated.
    # RFC 3207 section 4.2: forget what was learnt before TLS and EHLO again.
    ehlo = await client.ehlo()
    session = mismatch or make_record(TlsResultType.SUCCESS, with_client=client)
    if ehlo.code != 250:
        return Attempt(record=session, error="EHLO after STARTTLS " + decide.reply_text(ehlo.code, ehlo.lines))
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
) -> tuple[SmtpClient, TlsSessionRecord] | Attempt:
    """The handshake failed (the client is closed). Reconnect if the decision allows."""
    action, result = failure.action, failure.result

    def record(client: SmtpClient | None = None) -> TlsSessionRecord:
        # The session's record keeps the verification failure: it is what TLSRPT reports,
        # even though the message may now travel over unauthenticated TLS (or none).
        return session_record(
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
        return Attempt(record=record(), error=f"TLS failed ({result.value}: {failure.reason})")
    opened = await open_session(host, address, settings)
    if isinstance(opened, NotOpened):
        return Attempt(record=record(), error=f"TLS failed, then reconnect: {opened.error}")
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
        return Attempt(record=record(), error=f"unverified TLS retry failed: {exc.reason}")
    except (_Unusable, SmtpError) as exc:
        await client.close()
        return Attempt(record=record(), error=f"retry after TLS failure: {exc}")


class _Unusable(Exception):
    """This address cannot be used any further (internal to this module)."""
