"""Judging expectations against what the world observed.

Each check looks at a scenario's ``ObservationLog`` and returns a ``Decision`` once the
outcome is settled, or ``None`` while it could still go either way. ``final=True`` is the
last call (the deadline passed, or the SUT reported the message settled): every check must
decide then. Drivers call the checks after each new observation, so a decided outcome never
waits out the deadline.
"""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.message import Message
from typing import Any

from conformance.catalog.model import (
    AnyOf,
    Bounced,
    Contacted,
    Delivered,
    Fact,
    Fetched,
    FirstContact,
    NoPlaintextMessage,
    NotBounced,
    NotContacted,
    NotDelivered,
    NotFetched,
    NoTlsRecord,
    NotQueried,
    Queried,
    SendingCheck,
    TlsRecord,
    TlsSni,
)
from conformance.world.observe import (
    DeliveredMessage,
    DnsQuery,
    HttpRequest,
    MitmAction,
    ObservationLog,
    SmtpSession,
    TlsHandshake,
)
from conformance.world.world import MAILBOX_HOST


@dataclass(frozen=True, slots=True)
class Decision:
    ok: bool
    detail: str
    evidence: tuple[str, ...] = ()
    # A failed check that only shows a deviation the RFC tolerates (a SHOULD, or a form the RFC
    # contradicts itself about): WARN whatever the requirement's level.
    warn_only: bool = False


@dataclass(frozen=True, slots=True)
class SutRecord:
    """A TLS session result the SUT itself recorded (what it will report through TLSRPT)."""

    mx_host: str
    result: str
    at: float = 0.0  # wall-clock time the SUT recorded it (time.time())


@dataclass(frozen=True, slots=True)
class Context:
    """What a check may look at besides the log."""

    expand: Callable[[str], str]
    sut_records: Sequence[SutRecord] | None  # None: the target cannot tell; else this phase's only
    settled: str | None  # the SUT's own word on the message: "delivered", "deferred", "bounced"
    smtp_hosts: frozenset[str] = frozenset()  # the stage's MX host names (connections to others are not contacts)
    claims: frozenset[str] = frozenset()  # the target's claims (an any-of reading it names is the only one)


def _describe(message: DeliveredMessage) -> str:
    tls = f"over {message.tls_version}" if message.tls else "in plaintext"
    if message.tls and message.cipher:
        tls += f" ({message.cipher})"
    params = " ".join(message.mail_options)
    return f"delivered to {message.host} {tls}, MAIL FROM:<{message.mail_from}> {params}".rstrip()


def session_lines(session: SmtpSession, limit: int = 40) -> tuple[str, ...]:
    tls = f"tls={session.tls_version or 'none'}"
    if session.cipher:
        tls += f" cipher={session.cipher}"
    if session.sni:
        tls += f" sni={session.sni}"
    head = f"session {session.client} -> {session.host}: {tls} ({session.close_reason})"
    lines = [head]
    for line in session.lines[:limit]:
        arrow = "C:" if line.direction == "c2s" else "S:"
        lines.append(f"  {arrow} {'[tls] ' if line.tls else ''}{line.text}")
    if len(session.lines) > limit:
        lines.append(f"  ... {len(session.lines) - limit} more lines")
    return tuple(lines)


def _is_bounce(message: DeliveredMessage) -> bool:
    """A delivery status notification the SUT sent back to the scenario's sender: anything at the
    mailbox but TLSRPT report mail, or a message with the null reverse path (RFC 5321 4.5.5) at
    an MX host, when the scenario's sender is in its own recipient domain."""
    if message.host == MAILBOX_HOST:
        return b"application/tlsrpt" not in message.data[:65536]
    return message.mail_from == ""


def _mx_deliveries(log: ObservationLog) -> list[DeliveredMessage]:
    """Messages that reached one of the scenario's MX hosts (not bounces)."""
    return [m for m in log.of(DeliveredMessage) if m.host != MAILBOX_HOST and not _is_bounce(m)]


def _bounces(log: ObservationLog) -> list[DeliveredMessage]:
    return [m for m in log.of(DeliveredMessage) if _is_bounce(m)]


@dataclass(frozen=True, slots=True)
class _Dsn:
    """What a bounce says: the Status fields of its delivery-status part, and what it returns."""

    statuses: tuple[str, ...]
    returns_body: bool  # a message/rfc822 part (the whole message) rather than headers only


def _read_dsn(data: bytes) -> _Dsn:
    message = email.message_from_bytes(data, policy=email.policy.compat32)
    statuses: list[str] = []
    returns_body = False
    for part in message.walk():
        kind = part.get_content_type()
        if kind == "message/delivery-status":
            payload = part.get_payload()
            blocks = payload if isinstance(payload, list) else [part]
            for block in blocks:
                text = block.as_string() if isinstance(block, Message) else str(block)
                statuses += re.findall(r"(?im)^Status:\s*([245]\.\d{1,3}\.\d{1,3})", text)
        elif kind == "message/rfc822":
            returns_body = True
    return _Dsn(tuple(statuses), returns_body)


def check_bounced(check: Bounced, log: ObservationLog, ctx: Context, final: bool) -> Decision | None:
    bounces = _bounces(log)
    if not bounces:
        return Decision(False, "no bounce reached the sender before the deadline") if final else None
    first = bounces[0]
    dsn = _read_dsn(first.data)
    said = (
        f"a bounce from <{first.mail_from}> {' '.join(first.mail_options)} reached the sender at {first.host} "
        f"{'over ' + (first.tls_version or 'TLS') if first.tls else 'in plaintext'} "
        f"({len(first.data)} bytes, status {', '.join(dsn.statuses) or 'none'}"
        f"{', whole message returned' if dsn.returns_body else ''})"
    )
    evidence = (said,)
    host = ctx.expand(check.host) if check.host else None
    if host is not None and first.host != host:
        return Decision(False, f"expected the bounce at {host}; {said}", evidence)
    if check.status is not None and check.status not in dsn.statuses:
        return Decision(False, f"expected status {check.status}; {said}", evidence)
    with_requiretls = any(o.upper() == "REQUIRETLS" for o in first.mail_options)
    if check.requiretls is not None and with_requiretls != check.requiretls:
        how = "with" if check.requiretls else "without"
        return Decision(False, f"expected the bounce sent {how} REQUIRETLS; {said}", evidence)
    if check.headers_only is not None and dsn.returns_body == check.headers_only:
        return Decision(
            False, f"expected {'headers only' if check.headers_only else 'the whole message'}; {said}", evidence
        )
    return Decision(True, said, evidence)


_MESSAGE_COMMANDS = ("MAIL FROM", "RCPT TO", "DATA", "BDAT")


def check_no_plaintext_message(
    check: NoPlaintextMessage, log: ObservationLog, ctx: Context, final: bool
) -> Decision | None:
    """Fails at once on a cleartext MAIL/RCPT/DATA seen by a world peer or a plaintext
    delivery; passes at the end (or once the SUT settled)."""
    for session in log.of(SmtpSession):
        for line in session.lines:
            if line.direction == "c2s" and not line.tls and line.text.upper().startswith(_MESSAGE_COMMANDS):
                shown = f"{session.host}: C: {line.text}"
                return Decision(False, f"the message crossed in cleartext ({shown})", session_lines(session))
    for message in _mx_deliveries(log):
        if not message.tls:
            return Decision(False, f"the message was {_describe(message)}", (_describe(message),))
    if final or ctx.settled is not None:
        sessions = len(log.of(SmtpSession))
        return Decision(True, f"no MAIL, RCPT or DATA in cleartext in {sessions} session(s)")
    return None


def check_not_bounced(check: NotBounced, log: ObservationLog, ctx: Context, final: bool) -> Decision | None:
    bounces = _bounces(log)
    if bounces:
        return Decision(False, f"the SUT bounced the message ({len(bounces)} notification(s) to the sender)")
    if final or ctx.settled in ("deferred", "delivered"):
        how = f"the SUT reports it {ctx.settled}" if ctx.settled else "none before the deadline"
        return Decision(True, f"no bounce ({how})")
    return None


def check_delivered(check: Delivered, log: ObservationLog, ctx: Context, final: bool) -> Decision | None:
    host = ctx.expand(check.host) if check.host else None
    wanted = f"delivery to {host or 'any MX'}" + (
        "" if check.tls is None else (" over TLS" if check.tls else " in plaintext")
    )
    for message in _mx_deliveries(log):
        if host is not None and message.host != host:
            return Decision(
                False,
                f"expected {wanted}; the message was {_describe(message)}",
                (_describe(message),),
            )
        if check.tls is not None and message.tls != check.tls:
            return Decision(
                False,
                f"expected {wanted}; the message was {_describe(message)}",
                (_describe(message),),
            )
        given = {option.partition("=")[0].upper() for option in message.mail_options}
        missing = [p for p in check.mail_params if p.upper() not in given]
        if missing:
            return Decision(
                False,
                f"expected MAIL FROM with {' '.join(missing)}; the message was {_describe(message)}",
                (_describe(message),),
            )
        return Decision(True, _describe(message), (_describe(message),))
    if final or ctx.settled in ("bounced", "deferred"):
        state = f"the SUT reports it {ctx.settled}" if ctx.settled else "nothing arrived before the deadline"
        return Decision(False, f"expected {wanted}; {state}")
    return None


def check_not_delivered(check: NotDelivered, log: ObservationLog, ctx: Context, final: bool) -> Decision | None:
    host = ctx.expand(check.host) if check.host else None
    for message in _mx_deliveries(log):
        if host is None or message.host == host:
            return Decision(
                False,
                f"expected no delivery to {host or 'any MX'}; the message was {_describe(message)}",
                (_describe(message),),
            )
    if ctx.settled == "delivered" and host is None:
        return Decision(False, "expected no delivery; the SUT reports the message delivered")
    if final or ctx.settled is not None:
        how = f"the SUT reports it {ctx.settled}" if ctx.settled else "none before the deadline"
        return Decision(True, f"no delivery to {host or 'any MX'} ({how})")
    return None


def _contacts(log: ObservationLog, smtp_hosts: frozenset[str]) -> list[tuple[float, str]]:
    """(time, host) of every SMTP connection the world saw at the stage's MX hosts, earliest first
    (policy fetches and the bounce mailbox are not contacts)."""
    seen = [(s.started, s.host) for s in log.of(SmtpSession)]
    seen += [(h.at, h.host) for h in log.of(TlsHandshake)]
    seen += [(m.at, m.host) for m in _mx_deliveries(log)]
    seen += [(a.at, a.host) for a in log.of(MitmAction)]
    return sorted((at, host) for at, host in seen if host in smtp_hosts)


def check_first_contact(check: FirstContact, log: ObservationLog, ctx: Context, final: bool) -> Decision | None:
    host = ctx.expand(check.host)
    # Sessions are recorded when they end; once a message is delivered (or the SUT has
    # settled it), every earlier session of the MX walk has ended and been recorded.
    if not (final or ctx.settled is not None or _mx_deliveries(log)):
        return None
    contacts = _contacts(log, ctx.smtp_hosts)
    if not contacts:
        return Decision(False, f"expected the first connection to go to {host}; the SUT connected to no MX")
    first = contacts[0][1]
    order = " -> ".join(dict.fromkeys(h for _, h in contacts))
    return Decision(first == host, f"first connection went to {first} (order: {order})", (order,))


def check_contacted(check: Contacted, log: ObservationLog, ctx: Context, final: bool) -> Decision | None:
    host = ctx.expand(check.host)
    if any(h == host for _, h in _contacts(log, ctx.smtp_hosts)):
        return Decision(True, f"the SUT connected to {host}")
    if final or ctx.settled is not None:
        return Decision(False, f"the SUT never connected to {host}")
    return None


def check_tls_record(check: TlsRecord, log: ObservationLog, ctx: Context, final: bool) -> Decision | None:
    host = ctx.expand(check.host)
    if ctx.sut_records is None:
        return Decision(False, "the target does not expose its TLS session records") if final else None
    records = [r for r in ctx.sut_records if r.mx_host == host]
    shown = tuple(f"{r.mx_host}: {r.result}" for r in records)
    if any(r.result == check.result for r in records):
        return Decision(True, f"the SUT recorded {check.result!r} for {host}", shown)
    if records and (final or ctx.settled is not None):
        return Decision(
            False,
            f"expected {check.result!r} for {host}; the SUT recorded " + ", ".join(repr(r.result) for r in records),
            shown,
        )
    if final or ctx.settled is not None:
        return Decision(False, f"expected {check.result!r} for {host}; the SUT recorded nothing for it")
    return None


def check_not_contacted(check: NotContacted, log: ObservationLog, ctx: Context, final: bool) -> Decision | None:
    host = ctx.expand(check.host)
    if any(h == host for _, h in _contacts(log, ctx.smtp_hosts)):
        return Decision(False, f"the SUT connected to {host}")
    if _settled(log, ctx, final):
        return Decision(True, f"the SUT never connected to {host}")
    return None


def check_no_tls_record(check: NoTlsRecord, log: ObservationLog, ctx: Context, final: bool) -> Decision | None:
    host = ctx.expand(check.host)
    if ctx.sut_records is None:
        return Decision(False, "the target does not expose its TLS session records") if final else None
    found = [r for r in ctx.sut_records if r.mx_host == host and (check.result is None or r.result == check.result)]
    what = f"{check.result!r} " if check.result else ""
    if found:
        return Decision(False, f"the SUT recorded {what}for {host}: " + ", ".join(r.result for r in found))
    if final or ctx.settled is not None:
        return Decision(True, f"no {what}record for {host}")
    return None


def check_tls_sni(check: TlsSni, log: ObservationLog, ctx: Context, final: bool) -> Decision | None:
    host, name = ctx.expand(check.host), ctx.expand(check.name)
    handshakes = [h for h in log.of(TlsHandshake) if h.host == host]
    if handshakes:
        sent = handshakes[0].sni
        return Decision(sent == name, f"the SUT sent SNI {sent!r} to {host} (expected {name!r})")
    if final or ctx.settled is not None or _mx_deliveries(log):
        return Decision(False, f"the SUT made no TLS handshake with {host}")
    return None


def _settled(log: ObservationLog, ctx: Context, final: bool) -> bool:
    """Nothing more will happen for this message: the deadline passed, the SUT said so, or the
    message was delivered (the fetches and lookups that decide delivery come before it)."""
    return final or ctx.settled is not None or bool(_mx_deliveries(log))


def _requests(log: ObservationLog, host: str, path: str | None = None) -> list[HttpRequest]:
    return [r for r in log.of(HttpRequest) if r.host == host and (path is None or r.target.split("?", 1)[0] == path)]


def _describe_request(r: HttpRequest) -> str:
    return f"{r.method} https://{r.host}{r.target} (SNI {r.sni}) -> {r.status if r.status is not None else r.fault}"


def check_fetched(check: Fetched, log: ObservationLog, ctx: Context, final: bool) -> Decision | None:
    host = ctx.expand(check.host)
    requests = _requests(log, host, check.path)
    shown = tuple(_describe_request(r) for r in requests)
    forbidden = {h.lower() for h in check.without_headers}
    for request in requests:
        sent = forbidden & {name for name, _ in request.headers}
        if sent:
            return Decision(False, f"the SUT sent {', '.join(sorted(sent))} when fetching {host}{check.path}", shown)
    if not _settled(log, ctx, final):
        return None
    if not requests:
        return Decision(False, f"the SUT never fetched https://{host}{check.path}")
    if check.count is not None and len(requests) != check.count:
        return Decision(
            False, f"the SUT fetched https://{host}{check.path} {len(requests)} times (expected {check.count})", shown
        )
    return Decision(True, f"the SUT fetched https://{host}{check.path} ({len(requests)} request(s))", shown)


def check_not_fetched(check: NotFetched, log: ObservationLog, ctx: Context, final: bool) -> Decision | None:
    host = ctx.expand(check.host)
    requests = _requests(log, host)
    if requests:
        return Decision(False, f"the SUT fetched from {host}", tuple(_describe_request(r) for r in requests))
    if _settled(log, ctx, final):
        return Decision(True, f"no request to {host}")
    return None


def _queries(log: ObservationLog, name: str, rtype: str | None) -> list[DnsQuery]:
    name = name.lower().rstrip(".")
    return [q for q in log.of(DnsQuery) if q.qname == name and (rtype is None or q.qtype == rtype)]


def check_queried(check: Queried, log: ObservationLog, ctx: Context, final: bool) -> Decision | None:
    name = ctx.expand(check.name)
    what = f"{check.type or 'any'} {name}"
    if _queries(log, name, check.type):
        return Decision(True, f"the SUT looked up {what}")
    if _settled(log, ctx, final):
        return Decision(False, f"the SUT never looked up {what}")
    return None


def check_not_queried(check: NotQueried, log: ObservationLog, ctx: Context, final: bool) -> Decision | None:
    name = ctx.expand(check.name)
    what = f"{check.type or 'any'} {name}"
    found = _queries(log, name, check.type)
    if found:
        return Decision(False, f"the SUT looked up {what} ({len(found)} queries)")
    if _settled(log, ctx, final):
        return Decision(True, f"the SUT never looked up {what}")
    return None


def check_fact(check: Fact, facts: dict[str, Any]) -> Decision:
    if check.fact not in facts:
        return Decision(False, f"the probe did not establish {check.fact!r}")
    value = facts[check.fact]
    if check.equals is not None:
        return Decision(value == check.equals, f"{check.fact} = {value!r} (expected {check.equals!r})")
    if check.one_of is not None:
        return Decision(
            value in check.one_of,
            f"{check.fact} = {value!r} (expected one of {list(check.one_of)!r})",
        )
    if check.contains is not None:
        ok = isinstance(value, list) and check.contains in value
        return Decision(ok, f"{check.fact} = {value!r} (expected to contain {check.contains!r})")
    if check.lacks is not None:
        ok = isinstance(value, list) and check.lacks not in value
        return Decision(ok, f"{check.fact} = {value!r} (must not contain {check.lacks!r})")
    assert check.not_in is not None
    return Decision(
        value not in check.not_in,
        f"{check.fact} = {value!r} (must not be one of {list(check.not_in)!r})",
    )


_SENDING_JUDGES: dict[type[Any], Callable[[Any, ObservationLog, Context, bool], Decision | None]] = {
    Delivered: check_delivered,
    NotDelivered: check_not_delivered,
    FirstContact: check_first_contact,
    Contacted: check_contacted,
    TlsRecord: check_tls_record,
    TlsSni: check_tls_sni,
    Fetched: check_fetched,
    NotFetched: check_not_fetched,
    Queried: check_queried,
    NotQueried: check_not_queried,
    Bounced: check_bounced,
    NotBounced: check_not_bounced,
    NotContacted: check_not_contacted,
    NoTlsRecord: check_no_tls_record,
    NoPlaintextMessage: check_no_plaintext_message,
}


def check_any_of(check: AnyOf, log: ObservationLog, ctx: Context, final: bool) -> Decision | None:
    """Decided PASS as soon as one reading's checks all pass, FAIL once every reading has a
    failing check; the detail names the reading the SUT follows. A target that claims a
    reading's ``claim`` is held to the readings it claims."""
    undecided = False
    failures = []
    claimed = [r for r in check.readings if r.claim is not None and r.claim in ctx.claims]
    for reading in claimed or check.readings:
        decisions = [_SENDING_JUDGES[type(c)](c, log, ctx, final) for c in reading.expect]
        failed = [d for d in decisions if d is not None and not d.ok]
        if failed:
            failures.append(f"{reading.name}: {failed[0].detail}")
        elif all(d is not None for d in decisions):
            shown = tuple(e for d in decisions if d is not None for e in d.evidence)
            return Decision(True, f"the SUT follows the reading {reading.name!r}", shown)
        else:
            undecided = True
    if undecided:
        return None
    if claimed:
        names = ", ".join(repr(r.name) for r in claimed)
        return Decision(
            False, f"the SUT does not follow the reading its target claims ({names}): " + "; ".join(failures)
        )
    return Decision(False, "the SUT follows none of the readings: " + "; ".join(failures))


def evaluate_sending(check: SendingCheck | AnyOf, log: ObservationLog, ctx: Context, final: bool) -> Decision | None:
    if isinstance(check, AnyOf):
        return check_any_of(check, log, ctx, final)
    return _SENDING_JUDGES[type(check)](check, log, ctx, final)
