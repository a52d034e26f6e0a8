"""Driver for scenarios where the SUT is a sending MTA.

The driver injects one message into the SUT's submission endpoint, then watches the world:
which MX hosts the SUT connected to, over what TLS, where the message arrived. It decides
each check as soon as the observations settle it; the SUT's own word that a message is
settled (when the target can give it) ends the wait early too.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate

from conformance.catalog.model import AnyOf, SendingCheck, SendMessage
from conformance.drivers.checks import Context, Decision, evaluate_sending, session_lines
from conformance.drivers.smtpwire import WireClient, WireError, unverified_context
from conformance.targets.base import Target
from conformance.world.observe import (
    DeliveredMessage,
    DnsQuery,
    HttpRequest,
    MitmAction,
    ObservationLog,
    SmtpSession,
)
from conformance.world.world import MAILBOX_HOST, Stage


def requires_tls(mail_params: tuple[str, ...]) -> bool:
    """The REQUIRETLS MAIL parameter (RFC 8689 section 4) is among the stimulus's parameters."""
    return any(p.partition("=")[0].upper() == "REQUIRETLS" for p in mail_params)


class InjectionError(Exception):
    """The SUT did not accept the scenario's message for delivery: the verdict is ERROR."""


class RequireTlsRefused(InjectionError):
    """A SUT that claims REQUIRETLS did not take a REQUIRETLS message: no STARTTLS on its
    submission endpoint, no REQUIRETLS in the EHLO after it, or the MAIL parameter refused.
    That is the SUT's failure, not the run's: FAIL against ``requirement`` (RFC 8689 2, 4.1)."""

    def __init__(self, message: str, requirement: str, transcript: list[str]) -> None:
        super().__init__(message)
        self.requirement = requirement
        self.transcript = transcript


@dataclass(frozen=True, slots=True)
class SendingOutcome:
    decisions: list[tuple[SendingCheck | AnyOf, Decision]]
    evidence: list[str]


# A check can decide at the 250 after DATA, before the SUT's QUIT ends the session whose
# transcript is the evidence: wait this long at most for those sessions to close.
_TRANSCRIPT_WAIT_S = 1.0


async def _sessions_closed(log: ObservationLog, deadline: float) -> None:
    # The shared mailbox's sessions belong to no stage: only the MX hosts' count.
    at_mx = sum(1 for m in log.of(DeliveredMessage) if m.host != MAILBOX_HOST)

    def closed(log: ObservationLog) -> bool | None:
        in_sessions = sum(len(s.delivered) for s in log.of(SmtpSession))
        return True if in_sessions >= at_mx else None

    await log.wait_for(closed, deadline)


def build_message(stimulus: SendMessage, stage: Stage, scenario_id: str) -> tuple[str, list[str], bytes, str]:
    sender = stage.expand(stimulus.sender)
    recipients = [stage.expand(r) for r in stimulus.recipients]
    message_id = f"<{secrets.token_hex(8)}.{stage.domain}@mailtls.test>"
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Subject"] = f"{stimulus.subject} [{scenario_id}]"
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = message_id
    for name, value in stimulus.headers:
        msg[name] = value
    msg.set_content(stimulus.body)
    raw = b"".join(line.encode("utf-8") + b"\r\n" for line in stimulus.raw_headers)
    return sender, recipients, raw + msg.as_bytes().replace(b"\n", b"\r\n"), message_id


async def inject(
    endpoint: tuple[str, int],
    sender: str,
    recipients: list[str],
    data: bytes,
    params: tuple[str, ...],
    timeout: float,
    *,
    tls: bool = False,
) -> list[str]:
    """Submit the message as a user would: SMTP to the submission endpoint, after STARTTLS when
    ``tls`` (RFC 8689 4.1: a server takes REQUIRETLS only over TLS). The SUT's certificate is
    not judged here: this is the user's side, not a scenario's check."""
    try:
        client = await WireClient.connect(*endpoint, timeout=timeout)
    except WireError as exc:
        raise InjectionError(str(exc)) from exc
    try:
        greeting = await client.reply()
        if greeting.code != 220:
            raise InjectionError(f"submission greeting {greeting.code} {greeting.text}")
        if (reply := await client.command("EHLO inject.mailtls.test")).code != 250:
            raise InjectionError(f"EHLO refused: {reply.code} {reply.text}")
        requiretls = requires_tls(params)

        def refused(what: str, requirement: str) -> RequireTlsRefused:
            return RequireTlsRefused(
                f"the SUT claims REQUIRETLS but {what}, so it cannot take a REQUIRETLS message",
                requirement,
                list(client.transcript),
            )

        if tls:
            if (reply := await client.command("STARTTLS")).code != 220:
                what = f"its submission endpoint refuses STARTTLS ({reply.code} {reply.text})"
                if requiretls:
                    raise refused(what, "rfc8689-4.1-tag-on-mail-param")
                raise InjectionError(what)
            await client.starttls(unverified_context(), None)
            if (reply := await client.command("EHLO inject.mailtls.test")).code != 250:
                raise InjectionError(f"EHLO after STARTTLS refused: {reply.code} {reply.text}")
            if requiretls and "REQUIRETLS" not in reply.keywords():
                raise refused("its EHLO after STARTTLS does not list it", "rfc8689-2-server-advertises-after-starttls")
        mail = f"MAIL FROM:<{sender}>" + "".join(" " + p for p in params)
        if (reply := await client.command(mail)).code != 250:
            if requiretls and 500 <= reply.code < 600:
                raise refused(f"it refuses {mail!r} with {reply.code} {reply.text}", "rfc8689-4.1-tag-on-mail-param")
            raise InjectionError(f"MAIL refused: {reply.code} {reply.text}")
        for rcpt in recipients:
            if (reply := await client.command(f"RCPT TO:<{rcpt}>")).code not in (250, 251):
                raise InjectionError(f"RCPT refused: {reply.code} {reply.text}")
        if (reply := await client.command("DATA")).code != 354:
            raise InjectionError(f"DATA refused: {reply.code} {reply.text}")
        body = b"\r\n".join(b"." + line if line.startswith(b".") else line for line in data.split(b"\r\n"))
        if not body.endswith(b"\r\n"):
            body += b"\r\n"
        await client.send_raw(body + b".\r\n")
        if (reply := await client.reply()).code != 250:
            raise InjectionError(f"message refused: {reply.code} {reply.text}")
        with contextlib.suppress(WireError):
            await client.command("QUIT")
        return [f"injected via {endpoint[0]}:{endpoint[1]}: {reply.code} {reply.text}"]
    except WireError as exc:
        raise InjectionError(f"submission failed: {exc}") from exc
    finally:
        await client.close()


def story(log: ObservationLog, certificates: Mapping[str, str] | None = None) -> list[str]:
    """The evidence of a sending scenario: what the SUT asked DNS, fetched, and said to whom,
    and the certificate each MX offered in a session that reached TLS."""
    lines: list[str] = []
    shown: set[str] = set()
    for event in log.events:
        if isinstance(event, DnsQuery):
            lines.append(f"dns {event.transport} {event.qtype} {event.qname} -> {event.rcode} ({event.answers})")
        elif isinstance(event, HttpRequest):
            lines.append(f"https {event.method} https://{event.host}{event.target} sni={event.sni} -> {event.status}")
        elif isinstance(event, MitmAction):
            lines.append(f"attacker at {event.host}: {event.action} {event.detail}".rstrip())
        elif isinstance(event, SmtpSession):
            lines.extend(session_lines(event))
            offered = (certificates or {}).get(event.host)
            # Offered once STARTTLS was asked for, even when the SUT then refused it.
            asked = any(line.direction == "c2s" and line.text.upper() == "STARTTLS" for line in event.lines)
            if offered and asked and event.host not in shown:
                shown.add(event.host)
                lines.append(f"  certificate offered by {event.host}: {offered}")
    return lines


async def run_sending(
    stimulus: SendMessage,
    checks: list[SendingCheck | AnyOf],
    stage: Stage,
    target: Target,
    scenario_id: str,
    deadline: float,
) -> SendingOutcome:
    endpoint = target.submission_endpoint()
    if endpoint is None:
        raise InjectionError("the target has no submission endpoint")
    phase_started = time.time()
    sender, recipients, data, _message_id = build_message(stimulus, stage, scenario_id)
    evidence = await inject(
        endpoint,
        sender,
        recipients,
        data,
        stimulus.mail_params,
        timeout=max(0.1, deadline - time.monotonic()),
        tls=stimulus.tls if stimulus.tls is not None else requires_tls(stimulus.mail_params),
    )
    settled: str | None = None

    def context(final: bool) -> Context:
        records = target.tls_records(stage.domain)
        if records is not None:
            records = [r for r in records if r.at >= phase_started]  # this phase's sessions only
        return Context(
            expand=stage.expand,
            sut_records=records,
            settled=settled,
            smtp_hosts=stage.smtp_hosts,
            claims=target.claims,
        )

    def decide(log: ObservationLog, final: bool = False) -> list[Decision] | None:
        ctx = context(final)
        decisions = [evaluate_sending(c, log, ctx, final) for c in checks]
        if all(d is not None for d in decisions):
            return [d for d in decisions if d is not None]
        return None

    waiter = asyncio.ensure_future(stage.phase_log.wait_for(decide, deadline))
    settle = asyncio.ensure_future(target.settled(stage.domain, deadline)) if target.can_settle else None
    try:
        pending = {waiter} | ({settle} if settle else set())
        done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        result = waiter.result() if waiter in done else None
        if result is None and settle is not None and settle in done:
            settled = settle.result()
            result = decide(stage.phase_log, final=settled is None)
            if result is None:
                # Settled, yet a check still waits for something (e.g. a TLS record being
                # written): give the log until the deadline, then judge what is there.
                result = await stage.phase_log.wait_for(decide, deadline)
        if result is None:
            result = decide(stage.phase_log, final=True)
    finally:
        for task in (waiter, settle):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    assert result is not None
    await _sessions_closed(stage.phase_log, min(deadline, time.monotonic() + _TRANSCRIPT_WAIT_S))
    evidence += story(stage.phase_log, stage.certificates)
    if settled:
        evidence.append(f"the SUT reports the message {settled}")
    return SendingOutcome(decisions=list(zip(checks, result, strict=True)), evidence=evidence)
