"""The discovery planner (RFC 8461 sections 3.1, 3.3, 5.1, 10.2): the failure matrix, the
five-minute rule, proactive refresh, and the planner's request/response discipline."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from reference_impl.mtasts.cache import CachedPolicy, FailureNote
from reference_impl.mtasts.discovery import (
    Discovery,
    DiscoveryConfig,
    DiscoveryStateError,
    FetchErrorKind,
    FetchPolicy,
    FetchResult,
    Finished,
    LookupTxt,
    PolicyOutcome,
    StsFailure,
    TxtAnswer,
    needs_refresh,
    policy_domain,
    policy_url,
)
from reference_impl.mtasts.policy import Mode, parse_policy

NOW = 1_700_000_000.0
DAY = 86400.0
ENFORCE = "version: STSv1\nmode: enforce\nmx: mx.example.test\nmax_age: 604800\n"
TESTING = "version: STSv1\r\nmode: testing\r\nmx: *.example.test\r\nmax_age: 1209600\r\n"
NONE_MODE = "version: STSv1\nmode: none\nmax_age: 604800\n"


def txt(*records: str) -> TxtAnswer:
    return TxtAnswer("ok", tuple((r.encode(),) for r in records))


def cached(record_id: str = "old1", text: str = ENFORCE, *, age: float = 0.0, max_age: float = 7 * DAY) -> CachedPolicy:
    fetched_at = NOW - age
    return CachedPolicy("example.test", record_id, text, parse_policy(text), fetched_at, fetched_at + max_age)


@dataclass
class Run:
    requests: list[LookupTxt | FetchPolicy]
    outcome: PolicyOutcome


def run(
    answer: TxtAnswer,
    fetched: FetchResult | None = None,
    *,
    entry: CachedPolicy | None = None,
    note: FailureNote | None = None,
    config: DiscoveryConfig | None = None,
) -> Run:
    plan = Discovery("example.test", cache_entry=entry, last_failure=note, now=NOW, config=config)
    requests: list[LookupTxt | FetchPolicy] = []
    while not isinstance(request := plan.next_request(), Finished):
        requests.append(request)
        if isinstance(request, LookupTxt):
            plan.take_txt(answer)
        else:
            assert fetched is not None, "the planner fetched when the test expected no fetch"
            plan.take_fetch(fetched)
    assert plan.outcome == request.outcome
    return Run(requests, request.outcome)


def fetches(r: Run) -> int:
    return sum(isinstance(q, FetchPolicy) for q in r.requests)


OK_FETCH = FetchResult.success(TESTING.encode())
FAILED_FETCH = FetchResult.failure(FetchErrorKind.CONNECT, "refused")

# -- requests --------------------------------------------------------------------------------


def test_requests_name_the_txt_record_and_the_policy_url() -> None:
    r = run(txt("v=STSv1; id=new1;"), OK_FETCH)
    assert r.requests == [
        LookupTxt("_mta-sts.example.test"),
        FetchPolicy("example.test", "mta-sts.example.test", "https://mta-sts.example.test/.well-known/mta-sts.txt"),
    ]


def test_fresh_policy_is_returned_for_storing() -> None:
    r = run(txt("v=STSv1; id=new1;"), OK_FETCH)
    o = r.outcome
    assert (o.source, o.record_id, o.store, o.failure, o.policy_text) == ("fresh", "new1", True, None, TESTING)
    assert o.policy is not None and o.policy.mode is Mode.TESTING
    assert o.failed_fetch_id is None


# -- the failure matrix (3.1, 3.3, 5.1, RFC-NOTES 1.1) ---------------------------------------

NO_TXT_ANSWERS = [
    pytest.param(TxtAnswer("nxdomain"), id="nxdomain"),
    pytest.param(TxtAnswer("nodata"), id="nodata"),
    pytest.param(txt("v=spf1 -all"), id="unrelated-txt-only"),
    pytest.param(txt("v=STSv1; id=a;", "v=STSv1; id=b;"), id="two-records"),
    pytest.param(txt("v=STSv1; id=bad!id;"), id="invalid-record"),
    pytest.param(TxtAnswer("servfail"), id="servfail"),
    pytest.param(TxtAnswer("timeout"), id="timeout"),
]


@pytest.mark.parametrize("answer", NO_TXT_ANSWERS)
def test_no_usable_txt_and_no_cache_means_no_policy(answer: TxtAnswer) -> None:
    r = run(answer)
    assert fetches(r) == 0
    assert (r.outcome.policy, r.outcome.source, r.outcome.store, r.outcome.failure) == (None, "none", False, None)


@pytest.mark.parametrize("answer", NO_TXT_ANSWERS)
def test_no_usable_txt_keeps_the_unexpired_cache(answer: TxtAnswer) -> None:
    entry = cached(age=DAY / 2)
    r = run(answer, entry=entry)
    assert fetches(r) == 0
    assert (r.outcome.policy, r.outcome.source, r.outcome.record_id) == (entry.policy, "cache", "old1")
    assert not r.outcome.store and r.outcome.failure is None


@pytest.mark.parametrize("answer", NO_TXT_ANSWERS)
def test_expired_cache_is_not_applied(answer: TxtAnswer) -> None:
    r = run(answer, entry=cached(age=8 * DAY))
    assert (r.outcome.policy, r.outcome.source) == (None, "none")
    assert fetches(r) == 0


def test_expiry_is_exclusive_at_max_age() -> None:
    r = run(TxtAnswer("nxdomain"), entry=cached(age=7 * DAY))
    assert r.outcome.source == "none"


def test_same_id_as_unexpired_cache_uses_the_cache_without_fetching() -> None:
    entry = cached("same1", age=DAY / 2)
    r = run(txt("v=STSv1; id=same1;"), entry=entry)
    assert fetches(r) == 0
    assert (r.outcome.source, r.outcome.policy, r.outcome.store) == ("cache", entry.policy, False)


def test_same_id_but_expired_cache_fetches() -> None:
    r = run(txt("v=STSv1; id=same1;"), OK_FETCH, entry=cached("same1", age=8 * DAY))
    assert fetches(r) == 1 and r.outcome.source == "fresh" and r.outcome.store


def test_new_id_fetches_and_replaces_the_cache() -> None:
    r = run(txt("v=STSv1; id=new2;"), OK_FETCH, entry=cached("old1", age=DAY / 2))
    assert fetches(r) == 1
    assert (r.outcome.source, r.outcome.record_id, r.outcome.store) == ("fresh", "new2", True)


def test_new_id_fetch_fails_keeps_the_cache_and_reports() -> None:
    entry = cached("old1", age=DAY / 2)
    r = run(txt("v=STSv1; id=new2;"), FAILED_FETCH, entry=entry)
    o = r.outcome
    assert (o.source, o.policy, o.record_id, o.store) == ("cache", entry.policy, "old1", False)
    assert o.failure is StsFailure.FETCH_ERROR and o.failed_fetch_id == "new2" and o.alert


def test_fetch_fails_without_cache_means_no_policy_but_is_reported() -> None:
    o = run(txt("v=STSv1; id=new2;"), FAILED_FETCH).outcome
    assert (o.policy, o.source, o.store, o.record_id) == (None, "none", False, "new2")
    # RFC 8461 section 6: a fetch failure with a valid TXT record is reportable.
    assert o.failure == "sts-policy-fetch-error" and o.failed_fetch_id == "new2" and not o.alert


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"version: STSv1\nmode: enforce\nmax_age: 86400\n", id="enforce-without-mx"),
        pytest.param(b"<html>hello</html>", id="html"),
        pytest.param(b"version: STSv1\nmode: enforce\nmx: a.test\nmax_age: \xff\n", id="not-utf8"),
    ],
)
def test_invalid_policy_is_a_fetch_failure(body: bytes) -> None:
    entry = cached("old1", age=DAY / 2)
    o = run(txt("v=STSv1; id=new2;"), FetchResult.success(body), entry=entry).outcome
    assert (o.source, o.policy, o.store) == ("cache", entry.policy, False)
    assert o.failure is StsFailure.POLICY_INVALID and o.failed_fetch_id == "new2"
    o = run(txt("v=STSv1; id=new2;"), FetchResult.success(body)).outcome
    assert (o.source, o.policy, o.failure) == ("none", None, StsFailure.POLICY_INVALID)


@pytest.mark.parametrize(
    ("kind", "failure"),
    [
        (FetchErrorKind.DNS, StsFailure.FETCH_ERROR),
        (FetchErrorKind.CONNECT, StsFailure.FETCH_ERROR),
        (FetchErrorKind.TLS, StsFailure.FETCH_ERROR),
        (FetchErrorKind.TLS_VERIFY, StsFailure.WEBPKI_INVALID),
        (FetchErrorKind.HTTP_STATUS, StsFailure.FETCH_ERROR),
        (FetchErrorKind.REDIRECT, StsFailure.FETCH_ERROR),
        (FetchErrorKind.TOO_LARGE, StsFailure.FETCH_ERROR),
        (FetchErrorKind.TIMEOUT, StsFailure.FETCH_ERROR),
        (FetchErrorKind.HTTP_PROTOCOL, StsFailure.FETCH_ERROR),
        (FetchErrorKind.CONTENT_TYPE, StsFailure.POLICY_INVALID),
        (FetchErrorKind.INVALID_POLICY, StsFailure.POLICY_INVALID),
    ],
)
def test_fetch_error_kinds_map_to_rfc8460_result_types(kind: FetchErrorKind, failure: StsFailure) -> None:
    assert kind.result_type is failure
    o = run(txt("v=STSv1; id=x1;"), FetchResult.failure(kind, "detail")).outcome
    assert o.failure is failure and kind.value in o.reason


def test_cached_mode_none_failure_not_alerted() -> None:
    entry = cached("old1", NONE_MODE, age=DAY / 2)
    o = run(txt("v=STSv1; id=new2;"), FAILED_FETCH, entry=entry).outcome
    assert o.source == "cache" and o.policy is not None and o.policy.mode is Mode.NONE
    assert not o.alert  # sections 3.3, 10.2: no alert when the cached mode is "none"
    assert o.failure is StsFailure.FETCH_ERROR  # section 6 first bullet: valid TXT present


def test_switch_to_mode_none_with_new_id_takes_effect() -> None:
    o = run(txt("v=STSv1; id=gone1;"), FetchResult.success(NONE_MODE.encode()), entry=cached("old1")).outcome
    assert o.source == "fresh" and o.policy is not None and o.policy.mode is Mode.NONE and o.store


# -- five minutes per version id after a failure (3.3) ---------------------------------------


@pytest.mark.parametrize(
    ("note", "fetched"),
    [
        pytest.param(FailureNote("example.test", "new2", NOW - 299.0), False, id="same-id-within-5min"),
        pytest.param(FailureNote("example.test", "new2", NOW - 300.0), True, id="same-id-after-5min"),
        pytest.param(FailureNote("example.test", "other", NOW - 10.0), True, id="other-id"),
        pytest.param(None, True, id="no-note"),
    ],
)
def test_five_minute_rule(note: FailureNote | None, fetched: bool) -> None:
    r = run(txt("v=STSv1; id=new2;"), OK_FETCH, note=note)
    assert fetches(r) == int(fetched)
    if not fetched:
        assert (r.outcome.source, r.outcome.failure, r.outcome.failed_fetch_id) == ("none", None, None)
        assert "suppressed" in r.outcome.reason


def test_five_minute_rule_falls_back_to_cache() -> None:
    entry = cached("old1", age=DAY / 2)
    note = FailureNote("example.test", "new2", NOW - 60.0)
    r = run(txt("v=STSv1; id=new2;"), entry=entry, note=note)
    assert fetches(r) == 0 and r.outcome.source == "cache" and r.outcome.policy == entry.policy


def test_retry_interval_is_configurable() -> None:
    note = FailureNote("example.test", "new2", NOW - 60.0)
    r = run(txt("v=STSv1; id=new2;"), OK_FETCH, note=note, config=DiscoveryConfig(retry_after_failure_s=30.0))
    assert fetches(r) == 1


# -- proactive refresh (3.3, 10.2) -----------------------------------------------------------


def test_needs_refresh_near_expiry() -> None:
    entry = cached(age=6.5 * DAY)  # expires in half a day
    assert needs_refresh(entry, NOW, DAY)
    assert not needs_refresh(entry, NOW, DAY / 4)
    assert not needs_refresh(entry, NOW + DAY, DAY)  # expired: a fetch, not a refresh


def test_needs_refresh_daily() -> None:
    entry = cached(age=DAY)
    assert not needs_refresh(entry, NOW, DAY)
    assert needs_refresh(entry, NOW, DAY, refresh_every_s=DAY)
    assert not needs_refresh(replace(entry, fetched_at=NOW - DAY + 1), NOW, DAY, refresh_every_s=DAY)


def test_same_id_refreshes_a_day_old_policy() -> None:
    entry = cached("same1", age=DAY + 1)
    r = run(txt("v=STSv1; id=same1;"), OK_FETCH, entry=entry)
    assert fetches(r) == 1 and r.outcome.source == "fresh" and r.outcome.record_id == "same1" and r.outcome.store


def test_failed_refresh_keeps_cache_and_alerts() -> None:
    entry = cached("same1", age=DAY + 1)
    o = run(txt("v=STSv1; id=same1;"), FAILED_FETCH, entry=entry).outcome
    assert (o.source, o.policy, o.failed_fetch_id, o.alert) == ("cache", entry.policy, "same1", True)


@pytest.mark.parametrize("answer", [TxtAnswer("nxdomain"), TxtAnswer("servfail")])
def test_refresh_happens_regardless_of_txt(answer: TxtAnswer) -> None:
    entry = cached("old1", age=6.5 * DAY)
    r = run(answer, OK_FETCH, entry=entry)
    assert fetches(r) == 1 and r.outcome.source == "fresh" and r.outcome.record_id == "old1"
    o = run(answer, FAILED_FETCH, entry=entry).outcome
    # Not reportable under a valid TXT record, but the cached enforce policy failed to refresh.
    assert (o.source, o.failure, o.alert, o.failed_fetch_id) == ("cache", StsFailure.FETCH_ERROR, True, "old1")


def test_refresh_without_txt_can_be_disabled() -> None:
    config = DiscoveryConfig(refresh_without_txt=False)
    r = run(TxtAnswer("nxdomain"), entry=cached("old1", age=6.5 * DAY), config=config)
    assert fetches(r) == 0 and r.outcome.source == "cache"


def test_daily_refresh_can_be_disabled() -> None:
    config = DiscoveryConfig(refresh_every_s=None)
    r = run(txt("v=STSv1; id=same1;"), entry=cached("same1", age=2 * DAY), config=config)
    assert fetches(r) == 0


@pytest.mark.parametrize(
    "kwargs",
    [{"retry_after_failure_s": -1.0}, {"refresh_before_s": float("nan")}, {"refresh_every_s": 0.0}],
)
def test_config_is_validated(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="interval"):
        DiscoveryConfig(**kwargs)  # type: ignore[arg-type]


# -- planner discipline ----------------------------------------------------------------------


def test_next_request_repeats_until_answered() -> None:
    plan = Discovery("Example.TEST.", cache_entry=None, now=NOW)
    first = plan.next_request()
    assert plan.next_request() == first == LookupTxt("_mta-sts.example.test")
    with pytest.raises(DiscoveryStateError):
        plan.take_fetch(OK_FETCH)
    plan.take_txt(TxtAnswer("nxdomain"))
    done = plan.next_request()
    assert isinstance(done, Finished) and plan.next_request() == done
    with pytest.raises(DiscoveryStateError):
        plan.take_txt(TxtAnswer("nxdomain"))


def test_domain_normalisation() -> None:
    assert policy_domain("Example.Test.") == "example.test"
    assert policy_url("bücher.example") == "https://mta-sts.xn--bcher-kva.example/.well-known/mta-sts.txt"
    for bad in ("", ".", "a..b"):
        with pytest.raises(ValueError, match="domain"):
            policy_domain(bad)


def test_fetch_result_is_consistent() -> None:
    with pytest.raises(ValueError, match="body"):
        FetchResult(True)
    with pytest.raises(ValueError, match="body"):
        FetchResult(False)


@pytest.mark.parametrize("module", ["discovery", "cache"])
def test_planner_and_cache_are_sans_io(module: str) -> None:
    import ast
    import importlib

    source = importlib.import_module(f"reference_impl.mtasts.{module}").__file__
    assert source is not None
    tree = ast.parse(Path(source).read_text(encoding="utf-8"))
    imported = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    imported |= {(node.module or "").split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not imported & {"asyncio", "socket", "ssl", "h11", "dns", "http", "urllib"}
