"""DANE TLSA lookups for the reference MTA's delivery jobs: the asyncio edge (RFC 7672 section 2.2.3).

Per job, after the MX walk is planned (:func:`reference_impl.mta.resolve.resolve_route`),
:func:`discover_dane` asks for ``_25._tcp.<mx host>`` TLSA through the MTA's own DNS lookup
(the one the MX planner uses: dnspython, the configured server only, AD flag set so the
validating resolver's AD bit comes back, RFC 6840 section 5.7), for every host the gate of
:mod:`reference_impl.mta.danepolicy` lets through, concurrently, and turns each answer into that
host's :class:`~reference_impl.mta.danepolicy.MxDane`.
"""

from __future__ import annotations

import asyncio

from reference_impl.mta.danepolicy import NO_DANE, DaneApplied, DaneParts, MxDane, tlsa_name
from reference_impl.mta.mxplan import DnsQuestion, MxHost, Route, RouteKind
from reference_impl.mta.resolve import DnsLookup

__all__ = ["discover_dane"]


async def discover_dane(route: Route, dns: DnsLookup, parts: DaneParts, *, required: bool) -> DaneApplied:
    """The DANE state of each MX host of ``route``; ``required``: DANE is mandatory for the
    recipient domain (RFC 7672 section 6)."""
    if route.kind is not RouteKind.DELIVER:
        return NO_DANE

    async def one(host: MxHost) -> tuple[str, MxDane]:
        if not parts.tlsa_wanted(route.mx_authenticated, host.authenticated):
            return host.name, parts.tlsa_state(None, required)
        answer = await dns.lookup(DnsQuestion(tlsa_name(host.name), "TLSA"))
        return host.name, parts.tlsa_state(answer, required)

    return DaneApplied(tuple(await asyncio.gather(*(one(host) for host in route.hosts))))
