"""The MX planner's DNS adapter: dnspython's async resolver, never the system's.

Drives :class:`reference_impl.mta.mxplan.MxResolution` (RFC 5321 section 5.1, RFC 7505) with
``dns.asyncresolver.Resolver(configure=False)`` pointed at one configured server, so the
reference MTA only ever sees the world's DNS; the DANE TLSA lookups (RFC 7672 section 2.2.3)
go through the same lookup. It asks with the AD flag set (RFC 6840 section
5.7) and records whether each answer came back with the AD bit; MTA-STS, TLSRPT and DANE
decisions later read it. Every query has a deadline (``lifetime``); a timeout is a temporary
failure, like SERVFAIL.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

import dns.asyncresolver
import dns.exception
import dns.flags
import dns.name
import dns.rdatatype
import dns.resolver

from reference_impl.mta.mxplan import (
    DnsQuestion,
    LookupResult,
    LookupStatus,
    MxOrdering,
    MxRecord,
    MxResolution,
    Route,
    order_by_preference,
)


class DnsLookup(Protocol):
    async def lookup(self, question: DnsQuestion) -> LookupResult: ...


class DnsResolver:
    """One DNS server at (ip, port); no search list, no cache, no /etc/resolv.conf."""

    def __init__(self, ip: str, port: int, *, timeout: float) -> None:
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = [ip]
        resolver.port = port
        resolver.timeout = timeout
        resolver.lifetime = timeout
        resolver.cache = None
        # Ask for the AD bit (RFC 6840 section 5.7) so a validating server can set it.
        resolver.flags = dns.flags.RD | dns.flags.AD
        self._resolver = resolver

    async def lookup(self, question: DnsQuestion) -> LookupResult:
        try:
            name = dns.name.from_text(question.name)
        except dns.exception.DNSException as exc:
            # A name DNS cannot carry can never resolve: permanent.
            return LookupResult(LookupStatus.NXDOMAIN, detail=f"invalid name: {exc}")
        try:
            answer = await self._resolver.resolve(name, question.rdtype, raise_on_no_answer=False, search=False)
        except dns.resolver.NXDOMAIN:
            return LookupResult(LookupStatus.NXDOMAIN, detail="NXDOMAIN")
        except dns.resolver.LifetimeTimeout:
            return LookupResult(LookupStatus.TEMPFAIL, detail="timeout")
        except dns.resolver.NoNameservers as exc:
            return LookupResult(LookupStatus.TEMPFAIL, detail=f"SERVFAIL or REFUSED: {exc}")
        except dns.exception.DNSException as exc:
            return LookupResult(LookupStatus.TEMPFAIL, detail=f"{type(exc).__name__}: {exc}")
        ad = bool(answer.response.flags & dns.flags.AD)
        rrset = answer.rrset
        if rrset is None or len(rrset) == 0:
            return LookupResult(LookupStatus.NODATA, authenticated=ad)
        if question.rdtype == "MX":
            records = tuple(
                MxRecord(
                    int(rd.preference),
                    "" if rd.exchange == dns.name.root else rd.exchange.to_text(omit_final_dot=True).lower(),
                )
                for rd in rrset
            )
            return LookupResult(LookupStatus.OK, mx=records, authenticated=ad)
        if question.rdtype == "TLSA":
            # RFC 6698 2.2 presentation, decimal fields and unbroken lower-case hex (RFC 8460 4.5).
            tlsa = tuple(f"{rd.usage} {rd.selector} {rd.mtype} {rd.cert.hex()}" for rd in rrset)
            return LookupResult(LookupStatus.OK, tlsa=tlsa, authenticated=ad)
        addresses = tuple(sorted(str(rd.address) for rd in rrset))
        return LookupResult(LookupStatus.OK, addresses=addresses, authenticated=ad)


async def resolve_route(domain: str, dns_lookup: DnsLookup, ordering: MxOrdering = order_by_preference) -> Route:
    """Run the MX planner to its route, asking each round's questions concurrently."""
    plan = MxResolution(domain, ordering)
    while plan.route is None:
        questions = plan.pending()
        if not questions:  # cannot happen with MxResolution; a bug must not spin forever
            raise RuntimeError(f"MX planner for {domain} stalled without a route")
        results = await asyncio.gather(*(dns_lookup.lookup(q) for q in questions))
        for question, result in zip(questions, results, strict=True):
            plan.answer(question, result)
    return plan.route
