"""The MX planner (RFC 5321 section 5.1, RFC 7505), driven with made-up answers."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from reference_impl.mta.mxplan import (
    DnsQuestion,
    LookupResult,
    LookupStatus,
    MxRecord,
    MxResolution,
    Route,
    RouteKind,
    decide_mx,
    order_by_preference,
    order_by_reverse_preference,
)

OK, NODATA, NX, TEMP = (LookupStatus.OK, LookupStatus.NODATA, LookupStatus.NXDOMAIN, LookupStatus.TEMPFAIL)


def _mx(*records: tuple[int, str], ad: bool = False) -> LookupResult:
    return LookupResult(OK, mx=tuple(MxRecord(p, n) for p, n in records), authenticated=ad)


def _addr(*addresses: str, ad: bool = False) -> LookupResult:
    return LookupResult(OK, addresses=addresses, authenticated=ad)


def _drive(domain: str, mx: LookupResult, answers: dict[tuple[str, str], LookupResult]) -> Route:
    plan = MxResolution(domain)
    assert plan.pending() == (DnsQuestion(domain, "MX"),)
    plan.answer(DnsQuestion(domain, "MX"), mx)
    while plan.route is None:
        for question in plan.pending():
            plan.answer(question, answers.get((question.name, question.rdtype), LookupResult(NODATA)))
    return plan.route


def test_hosts_in_preference_order_with_addresses() -> None:
    route = _drive(
        "d.test",
        _mx((20, "mx2.d.test"), (10, "mx1.d.test")),
        {
            ("mx1.d.test", "A"): _addr("127.0.0.2"),
            ("mx1.d.test", "AAAA"): _addr("::1"),
            ("mx2.d.test", "A"): _addr("127.0.0.3"),
        },
    )
    assert route.kind is RouteKind.DELIVER
    assert [(h.name, h.addresses) for h in route.hosts] == [
        ("mx1.d.test", ("127.0.0.2", "::1")),
        ("mx2.d.test", ("127.0.0.3",)),
    ]


def test_ties_are_ordered_by_name() -> None:
    records = [MxRecord(10, "b.test"), MxRecord(10, "a.test"), MxRecord(5, "z.test")]
    assert [r.exchange for r in order_by_preference(records)] == ["z.test", "a.test", "b.test"]
    assert [r.exchange for r in order_by_reverse_preference(records)] == ["b.test", "a.test", "z.test"]


def test_no_mx_uses_the_implicit_mx() -> None:
    route = _drive("d.test", LookupResult(NODATA), {("d.test", "A"): _addr("127.0.0.9")})
    assert route.kind is RouteKind.DELIVER
    (host,) = route.hosts
    assert host.name == "d.test" and host.implicit and host.addresses == ("127.0.0.9",)


def test_implicit_mx_without_address_bounces() -> None:
    route = _drive("d.test", LookupResult(NODATA), {})
    assert (route.kind, route.status) == (RouteKind.BOUNCE, "5.1.2")


def test_null_mx_bounces() -> None:
    decided = decide_mx("d.test", _mx((0, "")))
    assert isinstance(decided, Route)
    assert (decided.kind, decided.status) == (RouteKind.BOUNCE, "5.1.10")


def test_null_mx_beside_real_ones_is_ignored() -> None:
    assert decide_mx("d.test", _mx((0, ""), (10, "mx.d.test"))) == (MxRecord(10, "mx.d.test"),)


def test_nxdomain_bounces_and_servfail_defers() -> None:
    bounce = decide_mx("d.test", LookupResult(NX))
    defer = decide_mx("d.test", LookupResult(TEMP, detail="timeout"))
    assert isinstance(bounce, Route) and isinstance(defer, Route)
    assert (bounce.kind, bounce.status) == (RouteKind.BOUNCE, "5.1.2")
    assert (defer.kind, defer.status) == (RouteKind.DEFER, "4.4.3")
    assert "timeout" in defer.reason


def test_mx_hosts_without_addresses() -> None:
    temp = _drive("d.test", _mx((10, "mx.d.test")), {("mx.d.test", "A"): LookupResult(TEMP)})
    assert temp.kind is RouteKind.DEFER
    gone = _drive("d.test", _mx((10, "mx.d.test")), {("mx.d.test", "A"): LookupResult(NX)})
    assert (gone.kind, gone.status) == (RouteKind.BOUNCE, "5.4.4")


def test_one_unresolvable_host_is_skipped() -> None:
    route = _drive(
        "d.test",
        _mx((10, "mx1.d.test"), (20, "mx2.d.test")),
        {
            ("mx1.d.test", "A"): LookupResult(TEMP),
            ("mx2.d.test", "A"): _addr("127.0.0.3"),
        },
    )
    assert [h.name for h in route.hosts] == ["mx2.d.test"]


def test_ad_bits_are_recorded() -> None:
    route = _drive(
        "d.test",
        _mx((10, "mx.d.test"), ad=True),
        {
            ("mx.d.test", "A"): _addr("127.0.0.2", ad=True),
            ("mx.d.test", "AAAA"): LookupResult(NODATA, authenticated=True),
        },
    )
    assert route.mx_authenticated and route.hosts[0].authenticated
    route = _drive("d.test", _mx((10, "mx.d.test")), {("mx.d.test", "A"): _addr("127.0.0.2")})
    assert not route.mx_authenticated and not route.hosts[0].authenticated


def test_duplicate_mx_host_is_tried_once() -> None:
    route = _drive("d.test", _mx((10, "mx.d.test"), (20, "mx.d.test")), {("mx.d.test", "A"): _addr("127.0.0.2")})
    assert [(h.name, h.preference) for h in route.hosts] == [("mx.d.test", 10)]


def test_domain_is_normalised() -> None:
    assert MxResolution("D.Test.").pending() == (DnsQuestion("d.test", "MX"),)


_records = st.lists(
    st.builds(MxRecord, st.integers(0, 65535), st.from_regex(r"[a-c]{1,3}\.test", fullmatch=True)),
    max_size=8,
)


@given(_records)
def test_ordering_is_a_sorted_permutation(records: list[MxRecord]) -> None:
    ordered = order_by_preference(records)
    assert sorted(ordered, key=repr) == sorted(records, key=repr)
    assert [r.preference for r in ordered] == sorted(r.preference for r in records)
    assert order_by_preference(list(reversed(records))) == ordered


@given(_records, st.sampled_from(list(LookupStatus)), st.booleans())
def test_planner_always_ends_with_a_route(
    records: list[MxRecord], address_status: LookupStatus, with_address: bool
) -> None:
    plan = MxResolution("d.test")
    plan.answer(DnsQuestion("d.test", "MX"), LookupResult(OK, mx=tuple(records)))
    for question in plan.pending():
        addresses = ("127.0.0.2",) if with_address and address_status is OK else ()
        plan.answer(question, LookupResult(address_status, addresses=addresses))
    assert plan.route is not None
    if plan.route.kind is RouteKind.DELIVER:
        prefs = [h.preference for h in plan.route.hosts]
        assert prefs == sorted(prefs)
