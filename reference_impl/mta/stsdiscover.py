"""MTA-STS discovery for the reference MTA's delivery jobs: the asyncio edge (RFC 8461 3, 5.1, 6).

Per job (one recipient domain), before the MX walk, :class:`StsAgent` runs the discovery
driver (:func:`reference_impl.mtasts.fetch.discover_policy` by default: TXT record, HTTPS
fetch, the persistent :class:`~reference_impl.mtasts.cache.PolicyCache`) and turns its
outcome into the job's :class:`~reference_impl.mta.stspolicy.StsApplied` plus the policy
records TLSRPT needs (RFC 8461 section 6: a discovery failure is reported with its RFC 8460
section 4.3.2.2 result type).

The TXT lookup and the policy host's addresses go through the MTA's own DNS server (never the
system's); the policy host's certificate is checked against the MTA's trust anchors; the
fetch uses the configured port (443, or the world's unprivileged port in tests).

Section 3.4: the Policy Domain is the recipient domain itself, never a parent (the job's
domain is used as is).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import dns.asyncresolver
import dns.flags

from reference_impl.mta.clock import Clock
from reference_impl.mta.records import TlsResultType, TlsSessionRecord
from reference_impl.mta.stspolicy import (
    NO_POLICY,
    ModeOf,
    PolicyParser,
    RecordSelector,
    StsApplied,
    applied_from,
    canonical_fetch,
    canonical_txt,
    mode_in_force,
)
from reference_impl.mtasts.cache import PolicyCache
from reference_impl.mtasts.discovery import DiscoveryConfig, FetchResult, PolicyOutcome, TxtAnswer, policy_domain
from reference_impl.mtasts.fetch import (
    Fetcher,
    Resolve,
    TxtLookup,
    address_resolver,
    discover_policy,
    fetch_policy,
    txt_lookup,
)
from reference_impl.mtasts.policy import parse_policy, render_policy
from reference_impl.mtasts.record import select_record

log = logging.getLogger(__name__)


class DiscoverPolicy(Protocol):
    """The discovery driver's shape (:func:`reference_impl.mtasts.fetch.discover_policy`)."""

    async def __call__(
        self,
        domain: str,
        *,
        cache: PolicyCache,
        lookup: TxtLookup,
        fetch: Fetcher,
        clock: Clock,
        config: DiscoveryConfig | None = None,
    ) -> PolicyOutcome: ...


@dataclass(frozen=True, slots=True)
class FetchSettings:
    """What every policy fetch of one MTA shares (RFC 8461 section 3.3)."""

    port: int
    ca_file: Path | None
    timeout_s: float
    max_bytes: int
    resolve: Resolve


class FetcherFactory(Protocol):
    def __call__(self, settings: FetchSettings) -> Fetcher: ...


def https_fetcher(settings: FetchSettings) -> Fetcher:
    """The reference fetch: :func:`reference_impl.mtasts.fetch.fetch_policy` (section 3.3)."""
    return functools.partial(
        fetch_policy,
        port=settings.port,
        ca_file=settings.ca_file,
        timeout_s=settings.timeout_s,
        max_bytes=settings.max_bytes,
        resolve=settings.resolve,
    )


@dataclass(frozen=True, slots=True)
class StsParts:
    """The MTA-STS discovery parts of an :class:`~reference_impl.mta.mta.MtaVariant`."""

    discover: DiscoverPolicy = discover_policy
    fetcher: FetcherFactory = https_fetcher
    record_selector: RecordSelector = select_record
    policy_parser: PolicyParser = parse_policy
    discovery_config: DiscoveryConfig = field(default_factory=DiscoveryConfig)
    mode_of: ModeOf = mode_in_force


def dns_resolver(server: tuple[str, int], timeout: float) -> dns.asyncresolver.Resolver:
    """A dnspython resolver that asks only ``server`` (the MTA's configured DNS)."""
    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = [server[0]]
    resolver.port = server[1]
    resolver.timeout = timeout
    resolver.lifetime = timeout
    resolver.cache = None
    resolver.flags = dns.flags.RD | dns.flags.AD
    return resolver


class StsAgent:
    """Discovery for delivery jobs, with one cache, one TXT lookup and one fetcher."""

    def __init__(
        self,
        *,
        cache: PolicyCache,
        lookup: TxtLookup,
        fetch: Fetcher,
        clock: Clock,
        parts: StsParts,
    ) -> None:
        self._cache = cache
        self._clock = clock
        self._parts = parts
        config = parts.discovery_config
        selector, parser = parts.record_selector, parts.policy_parser

        async def read_txt(name: str) -> TxtAnswer:
            return canonical_txt(await lookup(name), selector, config.record_readings)

        async def read_policy(domain: str) -> FetchResult:
            return canonical_fetch(await fetch(domain), parser, config.policy_readings)

        self._lookup: TxtLookup = read_txt
        self._fetch: Fetcher = read_policy

    @classmethod
    def over_dns(
        cls,
        *,
        cache: PolicyCache,
        resolver: dns.asyncresolver.Resolver,
        fetch_settings: tuple[int, Path | None, float, int],
        clock: Clock,
        parts: StsParts,
    ) -> StsAgent:
        """An agent whose lookups and policy host addresses go through ``resolver``."""
        port, ca_file, timeout_s, max_bytes = fetch_settings
        settings = FetchSettings(port, ca_file, timeout_s, max_bytes, address_resolver(resolver))
        return cls(cache=cache, lookup=txt_lookup(resolver), fetch=parts.fetcher(settings), clock=clock, parts=parts)

    async def apply(self, domain: str) -> tuple[StsApplied, tuple[TlsSessionRecord, ...]]:
        """Discover the policy of ``domain`` (section 5.1 step 1); the job's state and records."""
        try:
            name = policy_domain(domain)
        except ValueError:
            return NO_POLICY, ()
        parts = self._parts
        outcome = await parts.discover(
            name,
            cache=self._cache,
            lookup=self._lookup,
            fetch=self._fetch,
            clock=self._clock,
            config=parts.discovery_config,
        )
        text = outcome.policy_text
        if outcome.policy is not None and text is None:
            entry = self._cache.get(name)
            same = entry is not None and entry.record_id == outcome.record_id and entry.policy == outcome.policy
            text = entry.policy_text if entry is not None and same else render_policy(outcome.policy)
        applied = applied_from(outcome, text, parts.mode_of)
        if outcome.alert:
            # Sections 3.3, 10.2: a failed refresh of a policy in force is worth an alert.
            log.warning("MTA-STS policy refresh for %s failed: %s", name, outcome.reason)
        return applied, self._failure_records(domain, applied)

    def _failure_records(self, domain: str, applied: StsApplied) -> tuple[TlsSessionRecord, ...]:
        if applied.failure is None:
            return ()
        # RFC 8461 section 6, RFC 8460 section 4.3.2.2: a policy failure, with no MX session.
        return (
            TlsSessionRecord(
                policy_domain=domain,
                mx_host="",
                ip="",
                result_type=TlsResultType(applied.failure.value),
                tls_version=None,
                cipher=None,
                at=self._clock.now(),
                failure_reason=applied.reason[:500],
                policy_type=applied.policy_type,
                policy_strings=applied.policy_strings,
                mx_patterns=applied.mx_patterns,
            ),
        )
