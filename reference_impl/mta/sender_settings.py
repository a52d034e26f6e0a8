"""What the sender is configured with, and the SMTP client it drives (the asyncio edge's types).

:class:`SenderSettings` holds the reference behaviour by default; a variant or mutant replaces
fields: the MX walk (RFC 5321 section 5.1, :func:`walk_all_hosts`), the TLS decisions (RFC 7435,
:mod:`reference_impl.mta.delivery`; MTA-STS, RFC 8461 sections 4, 5, 7.2; DANE, RFC 7672
sections 2.2, 3; REQUIRETLS, RFC 8689 section 4.2.1), the SNI (RFC 8461 section 7.1) and the
RFC 8460 reporting hooks. A connection that is refused or times out is a transient failure
(RFC 8460 section 4.3.4) and is not recorded (:func:`no_transient_record`) unless the variant's
``transient_result`` says otherwise; the sending MTA's IP of a record is the local address of
the session's socket (section 4.4 "sending-mta-ip", :func:`socket_local_ip`).
:class:`SmtpClient` and :class:`SmtpConnector` are what :mod:`reference_impl.mta.sender` and
:mod:`reference_impl.mta.securing` need of an SMTP client. Split from
:mod:`reference_impl.mta.sender`.
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from reference_impl.dane.tlsa import verify_chain
from reference_impl.mta import delivery as decide
from reference_impl.mta.clock import Clock
from reference_impl.mta.danepolicy import ChainMatcher, enforce_dane
from reference_impl.mta.delivery import TlsDecision
from reference_impl.mta.mxplan import MxHost, Route
from reference_impl.mta.mxtls import PeerChain, presented_chain
from reference_impl.mta.records import TlsResultType, TlsSessionRecord
from reference_impl.mta.stspolicy import (
    MxDecision,
    MxMatcher,
    NoDeliveryDecision,
    enforce_tls,
    mx_decision,
    no_delivery_outcome,
)
from reference_impl.mtasts.matching import policy_allows_mx
from reference_impl.requiretls.nexthop import QualifyOptions
from reference_impl.requiretls.policy import RequireTlsParts
from reference_impl.smtp.replies import Reply

__all__ = [
    "HostWalk",
    "LocalIp",
    "RecordHook",
    "SenderSettings",
    "SmtpClient",
    "SmtpConnector",
    "SniChoice",
    "TransientResult",
    "no_transient_record",
    "socket_local_ip",
    "walk_all_hosts",
    "walk_first_host_only",
]


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
