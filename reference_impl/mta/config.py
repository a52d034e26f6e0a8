"""The reference MTA's configuration and its replaceable parts (the variant a mutant swaps).

:class:`MtaConfig` is what a deployment sets (names, ports, files, timeouts, RFC 8461, RFC 7672
RFC 8460 and RFC 8689 settings); :class:`MtaVariant` is the code: every part a conformance mutant replaces,
the reference behaviour by default (see :mod:`reference_impl.mta.mutants`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from reference_impl.mta import delivery
from reference_impl.mta.danepolicy import DaneParts
from reference_impl.mta.delivery import TlsDecision
from reference_impl.mta.errors import MtaConfigError
from reference_impl.mta.mxplan import MxOrdering, normalize_name, order_by_preference
from reference_impl.mta.queue import RetryPolicy
from reference_impl.mta.records import TlsSessionRecord
from reference_impl.mta.reporting import TlsRptConfig
from reference_impl.mta.sender import (
    HostWalk,
    MxContextFactory,
    RecordHook,
    SniChoice,
    verified_mx_context,
    walk_all_hosts,
)
from reference_impl.mta.stsdiscover import DiscoverPolicy, FetcherFactory, StsParts, https_fetcher
from reference_impl.mta.stspolicy import (
    ModeOf,
    MxDecision,
    MxMatcher,
    NoDeliveryDecision,
    PolicyParser,
    RecordSelector,
    enforce_tls,
    mode_in_force,
    mx_decision,
    no_delivery_outcome,
)
from reference_impl.mta.tlsrpt_parts import TlsRptParts
from reference_impl.mtasts.discovery import DiscoveryConfig
from reference_impl.mtasts.fetch import discover_policy
from reference_impl.mtasts.matching import policy_allows_mx
from reference_impl.mtasts.policy import parse_policy
from reference_impl.mtasts.record import select_record
from reference_impl.requiretls.policy import RequireTlsParts
from reference_impl.smtp.client import SmtpClientConnection

__all__ = ["MtaConfig", "MtaVariant", "ServerHandle", "ServerStarter", "keep_record", "mx_name_as_sni"]


class ServerHandle(Protocol):
    address: tuple[str, int]

    async def close(self) -> None: ...


ServerStarter = Callable[..., Awaitable[Any]]  # start_smtp_server's shape


def keep_record(record: TlsSessionRecord) -> TlsSessionRecord:
    return record


def mx_name_as_sni(mx_name: str) -> str | None:
    """RFC 8461 section 7.1: SNI names the MX host."""
    return mx_name


def _default_server_starter() -> ServerStarter:
    from reference_impl.smtp.aio_server import start_smtp_server

    return start_smtp_server


@dataclass(frozen=True, slots=True)
class MtaVariant:
    """The replaceable parts of the MTA. The default is the reference behaviour."""

    name: str = "reference"
    client_connection_factory: Callable[[], SmtpClientConnection] = SmtpClientConnection
    server_connection_factory: Callable[..., Any] | None = None  # None: the server's default
    server_starter: Callable[[], ServerStarter] = _default_server_starter
    mx_ordering: MxOrdering = order_by_preference
    host_walk: HostWalk = walk_all_hosts
    tls_decision: TlsDecision = delivery.opportunistic_tls
    attempt_starttls: bool = True
    record_hook: RecordHook = keep_record
    sni_for: SniChoice = mx_name_as_sni
    # MTA-STS, RFC 8461. Discovery (sections 3, 5.1):
    sts_discover: DiscoverPolicy = discover_policy
    sts_fetcher: FetcherFactory = https_fetcher
    sts_record_selector: RecordSelector = select_record
    sts_policy_parser: PolicyParser = parse_policy
    sts_discovery_config: DiscoveryConfig = field(default_factory=DiscoveryConfig)
    # What the policy means for the MX walk (sections 4, 5, 7.2, 8.4):
    sts_mode_of: ModeOf = mode_in_force
    sts_mx_matcher: MxMatcher = policy_allows_mx
    sts_mx_decision: MxDecision = mx_decision
    sts_enforcement: TlsDecision = enforce_tls
    sts_no_delivery: NoDeliveryDecision = no_delivery_outcome
    mx_tls_context: MxContextFactory = verified_mx_context
    tls_floor: str = "TLSv1.2"  # section 7.2: TLS 1.2 or higher
    # DANE, RFC 7672: which hosts get TLSA lookups, what the answers mean, enforcement, matching.
    dane: DaneParts = field(default_factory=DaneParts)
    # TLSRPT, RFC 8460: report generation and delivery, part by part.
    tlsrpt: TlsRptParts = field(default_factory=TlsRptParts)
    # REQUIRETLS, RFC 8689: relaying (4.2.1), the TLS-Required header (4.2.2), bounces (5).
    requiretls: RequireTlsParts = field(default_factory=RequireTlsParts)

    def sts_parts(self) -> StsParts:
        return StsParts(
            discover=self.sts_discover,
            fetcher=self.sts_fetcher,
            record_selector=self.sts_record_selector,
            policy_parser=self.sts_policy_parser,
            discovery_config=self.sts_discovery_config,
            mode_of=self.sts_mode_of,
        )


@dataclass(frozen=True, slots=True)
class MtaConfig:
    hostname: str  # EHLO name, Reporting-MTA, Received "by"
    state_dir: Path
    resolver: tuple[str, int]  # the only DNS server asked
    mx_port: int = 25
    ca_file: Path | None = None  # trust anchors for MX certificates (None: system store)
    submission_listen: tuple[str, int] | None = ("127.0.0.1", 0)
    inbound_listen: tuple[str, int] | None = ("127.0.0.1", 0)
    inbound_cert_file: Path | None = None  # enables STARTTLS on both listeners
    inbound_key_file: Path | None = None
    dns_timeout_s: float = 5.0
    smtp_timeout_s: float = 30.0  # every SMTP step (connect, reply, handshake)
    session_timeout_s: float = 300.0  # one whole SMTP session
    server_idle_timeout_s: float = 60.0
    max_message_size: int = 10 * 1024 * 1024
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    max_concurrency: int = 8
    poll_interval_s: float = 1.0  # the longest the runner sleeps without a kick
    mta_sts: bool = True  # RFC 8461: discover and apply MTA-STS policies
    sts_port: int = 443  # the port policy hosts are fetched on (section 3.3: HTTPS)
    sts_fetch_timeout_s: float = 60.0  # section 3.3: "Senders MAY impose a timeout"
    sts_max_policy_bytes: int = 64 * 1024  # section 3.3: "a limit on the maximum size"
    dane: bool = True  # RFC 7672: look TLSA up for MX hosts found through DNSSEC-validated answers
    # RFC 7672 section 6, RFC 8460 4.3.2.1 "dane-required": recipient domains whose MX hosts are
    # used only with DNSSEC-validated TLSA records (names compared case-insensitively, no root dot).
    dane_required_domains: frozenset[str] = frozenset()
    tlsrpt: TlsRptConfig | None = None  # RFC 8460 reporting; None: off
    # RFC 8689 4.2.1 step 2: whether an MTA-STS policy in testing mode validates an MX name for a
    # REQUIRETLS message (the RFC does not say; only enforce counts by default).
    requiretls_sts_testing_counts: bool = False
    # RFC 3461: the listeners advertise DSN and so accept NOTIFY/ORCPT/RET/ENVID, which the queue
    # honours for failure notices and relays to DSN-capable hosts (RFC 8689 section 5 needs RET).
    advertise_dsn: bool = True

    def __post_init__(self) -> None:
        if (self.inbound_cert_file is None) != (self.inbound_key_file is None):
            raise MtaConfigError("inbound TLS needs both a certificate and a key file")
        if self.max_concurrency < 1:
            raise MtaConfigError("max_concurrency must be at least 1")
        if self.sts_fetch_timeout_s <= 0 or self.sts_max_policy_bytes < 0:
            raise MtaConfigError("the policy fetch needs a positive timeout and a non-negative size limit")
        if isinstance(self.dane_required_domains, str) or not all(
            isinstance(d, str) and d.strip(".") for d in self.dane_required_domains
        ):
            raise MtaConfigError("dane_required_domains must be a set of domain names")
        if self.dane_required_domains and not self.dane:
            raise MtaConfigError("dane_required_domains needs DANE on (dane=True)")

    def dane_required(self, domain: str) -> bool:
        """RFC 7672 section 6: whether DANE is mandatory for the recipient ``domain``."""
        wanted = normalize_name(domain)
        return any(normalize_name(d) == wanted for d in self.dane_required_domains)
