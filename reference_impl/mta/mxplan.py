"""Where to deliver mail for a domain: the MX planner (sans-IO).

Implements RFC 5321 section 5.1 (MX lookup; MX hosts in preference order; the implicit MX,
i.e. the domain's own A/AAAA, when there is no MX record; an MX lookup that fails temporarily
defers) and RFC 7505 sections 3 and 4 (a null MX "0 ." means the domain accepts no mail:
bounce with 5.1.10).

``MxResolution`` is a planner in the style of dnspython's ``_Resolution``: it hands out the
DNS questions to ask (``pending``), takes their answers (``answer``) and ends with a
:class:`Route`. It does no I/O, so tests drive it with made-up answers and
:mod:`reference_impl.mta.resolve` drives it with dnspython.

Ties in preference are ordered by host name. RFC 5321 section 5.1 asks senders to randomise
equal-preference hosts to spread load; a conformance reference needs a deterministic order, and
the ordering is a replaceable function (``MtaVariant.mx_ordering``) for whoever wants the other.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum


class LookupStatus(Enum):
    OK = "ok"  # NOERROR with records of the asked type
    NODATA = "nodata"  # NOERROR, the name exists but has no records of that type
    NXDOMAIN = "nxdomain"  # the name does not exist
    TEMPFAIL = "tempfail"  # SERVFAIL, REFUSED, timeout: ask again later


@dataclass(frozen=True, slots=True)
class MxRecord:
    preference: int
    exchange: str  # lower case, no trailing dot; "" is the root (RFC 7505 null MX)


@dataclass(frozen=True, slots=True)
class DnsQuestion:
    name: str
    rdtype: str  # "MX", "A" or "AAAA"; "TLSA" for DANE (reference_impl.mta.danediscover)


@dataclass(frozen=True, slots=True)
class LookupResult:
    status: LookupStatus
    mx: tuple[MxRecord, ...] = ()
    addresses: tuple[str, ...] = ()
    tlsa: tuple[str, ...] = ()  # TLSA RDATA in presentation form, "u s m hex" (RFC 6698 2.2)
    authenticated: bool = False  # the AD bit of the answer
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class MxHost:
    name: str
    preference: int
    addresses: tuple[str, ...]
    implicit: bool  # the domain itself, used because it has no MX record
    authenticated: bool  # both address answers carried the AD bit


class RouteKind(Enum):
    DELIVER = "deliver"
    DEFER = "defer"
    BOUNCE = "bounce"


@dataclass(frozen=True, slots=True)
class Route:
    kind: RouteKind
    domain: str
    hosts: tuple[MxHost, ...] = ()  # in the order to try, for DELIVER
    status: str = "2.0.0"  # enhanced status code for DEFER / BOUNCE
    reason: str = ""
    mx_authenticated: bool = False  # the MX answer carried the AD bit


MxOrdering = Callable[[Sequence[MxRecord]], tuple[MxRecord, ...]]


def order_by_preference(records: Sequence[MxRecord]) -> tuple[MxRecord, ...]:
    """RFC 5321 section 5.1: lowest preference first; ties by name, for determinism."""
    return tuple(sorted(records, key=lambda r: (r.preference, r.exchange)))


def order_by_reverse_preference(records: Sequence[MxRecord]) -> tuple[MxRecord, ...]:
    """A deliberately wrong ordering (highest preference value first), for mutants."""
    return tuple(reversed(order_by_preference(records)))


def normalize_name(name: str) -> str:
    return name.rstrip(".").lower()


def decide_mx(domain: str, answer: LookupResult) -> Route | tuple[MxRecord, ...]:
    """Turn the MX answer into a final route (bounce/defer) or the MX targets to resolve."""
    domain = normalize_name(domain)
    if answer.status is LookupStatus.NXDOMAIN:
        # The domain does not exist: permanent (RFC 5321 section 5.1; 5.1.2 bad destination).
        return Route(
            RouteKind.BOUNCE,
            domain,
            status="5.1.2",
            reason=f"domain {domain} does not exist (NXDOMAIN)",
        )
    if answer.status is LookupStatus.TEMPFAIL:
        # RFC 5321 section 5.1: a temporary DNS failure queues the message for later.
        return Route(
            RouteKind.DEFER,
            domain,
            status="4.4.3",
            reason=f"MX lookup for {domain} failed: {answer.detail or 'temporary error'}",
        )
    records = answer.mx if answer.status is LookupStatus.OK else ()
    real = tuple(r for r in records if r.exchange)
    if records and not real:
        # RFC 7505 section 4.1: a null MX means no mail; fail at once with 5.1.10.
        return Route(
            RouteKind.BOUNCE,
            domain,
            status="5.1.10",
            reason=f"domain {domain} accepts no mail (null MX, RFC 7505)",
        )
    if not real:
        # RFC 5321 section 5.1: no MX records: the domain itself is the implicit MX.
        return (MxRecord(0, domain),)
    # RFC 7505 section 3: a null MX beside real ones is a misconfiguration; the real ones
    # are the only usable targets, so the null entry is dropped.
    return real


def decide_route(
    domain: str,
    mx_answer: LookupResult,
    targets: Sequence[MxRecord],
    addresses: Mapping[DnsQuestion, LookupResult],
) -> Route:
    """Combine the ordered MX targets with their A/AAAA answers into the final route."""
    domain = normalize_name(domain)
    implicit = mx_answer.status is not LookupStatus.OK or not any(r.exchange for r in mx_answer.mx)
    hosts: list[MxHost] = []
    temporary: list[str] = []
    for record in targets:
        answers = [addresses.get(DnsQuestion(record.exchange, t)) for t in ("A", "AAAA")]
        found: list[str] = []
        for result in answers:
            if result is None:
                continue
            if result.status is LookupStatus.TEMPFAIL:
                temporary.append(f"{record.exchange}: {result.detail or 'temporary DNS error'}")
            found.extend(a for a in result.addresses if a not in found)
        if found:
            hosts.append(
                MxHost(
                    record.exchange,
                    record.preference,
                    tuple(found),
                    implicit,
                    all(r is not None and r.authenticated for r in answers),
                )
            )
    if hosts:
        return Route(RouteKind.DELIVER, domain, tuple(hosts), mx_authenticated=mx_answer.authenticated)
    if temporary:
        return Route(
            RouteKind.DEFER,
            domain,
            status="4.4.3",
            reason="address lookup failed: " + "; ".join(temporary),
        )
    if implicit:
        return Route(
            RouteKind.BOUNCE,
            domain,
            status="5.1.2",
            reason=f"domain {domain} has no MX and no address record",
        )
    names = ", ".join(r.exchange for r in targets)
    return Route(
        RouteKind.BOUNCE,
        domain,
        status="5.4.4",
        reason=f"no MX host of {domain} has an address ({names})",
    )


class MxResolution:
    """The MX planner: ask ``pending()``, feed ``answer()``, until ``route`` is set."""

    def __init__(self, domain: str, ordering: MxOrdering = order_by_preference) -> None:
        self.domain = normalize_name(domain)
        self._ordering = ordering
        self._mx_answer: LookupResult | None = None
        self._targets: tuple[MxRecord, ...] = ()
        self._asked: dict[DnsQuestion, LookupResult | None] = {DnsQuestion(self.domain, "MX"): None}
        self.route: Route | None = None

    def pending(self) -> tuple[DnsQuestion, ...]:
        """Questions still without an answer (they may be asked concurrently)."""
        if self.route is not None:
            return ()
        return tuple(q for q, a in self._asked.items() if a is None)

    def answer(self, question: DnsQuestion, result: LookupResult) -> None:
        if question not in self._asked or self._asked[question] is not None:
            raise ValueError(f"unexpected answer for {question}")
        self._asked[question] = result
        if question.rdtype == "MX":
            self._mx_answer = result
            decided = decide_mx(self.domain, result)
            if isinstance(decided, Route):
                self.route = decided
                return
            ordered = self._ordering(decided)
            # One host listed twice is tried once, at its first place in the order.
            self._targets = tuple(
                r for i, r in enumerate(ordered) if all(o.exchange != r.exchange for o in ordered[:i])
            )
            for record in self._targets:
                for rdtype in ("A", "AAAA"):
                    self._asked.setdefault(DnsQuestion(record.exchange, rdtype), None)
        if self._mx_answer is not None and not self.pending():
            answered = {q: a for q, a in self._asked.items() if a is not None}
            self.route = decide_route(self.domain, self._mx_answer, self._targets, answered)
