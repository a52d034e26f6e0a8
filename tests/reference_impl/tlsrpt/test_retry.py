"""RFC 8460 section 5.5: redelivery with exponential backoff, ending 24 hours after the first attempt."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference_impl.tlsrpt.retry import DAY_S, Backoff

T0 = 1_700_000_000.0


def test_default_schedule_doubles_and_ends_exactly_24_hours_after_the_first_attempt() -> None:
    times = Backoff().schedule(T0)
    delays = [b - a for a, b in itertools.pairwise(times)]
    assert delays[:4] == [60.0, 120.0, 240.0, 480.0]
    assert max(delays) <= 4 * 3600.0
    assert times[-1] == T0 + DAY_S
    assert len(times) < 30  # a handful of tries, not a flood


def test_no_attempt_after_the_horizon() -> None:
    backoff = Backoff()
    assert backoff.next_attempt_at(T0, 5, T0 + DAY_S) is None
    assert backoff.next_attempt_at(T0, 5, T0 + DAY_S + 1) is None
    # Close to the end, the last attempt is moved onto the horizon instead of past it.
    assert backoff.next_attempt_at(T0, 30, T0 + DAY_S - 10) == T0 + DAY_S


def test_delay_is_measured_from_the_failed_attempt_not_a_grid() -> None:
    # A sender that was down for ten hours tries once more after the usual pause, not in a burst.
    late = T0 + 10 * 3600
    assert Backoff().next_attempt_at(T0, 2, late) == late + 120.0


def test_zero_horizon_never_retries() -> None:
    assert Backoff(horizon_s=0).next_attempt_at(T0, 1, T0) is None
    assert Backoff(horizon_s=0).schedule(T0) == [T0]


@pytest.mark.parametrize(
    "kwargs",
    [{"first_delay_s": 0}, {"factor": 0.5}, {"max_delay_s": 1.0, "first_delay_s": 2.0}, {"horizon_s": -1}],
)
def test_nonsense_settings_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=r"backoff|horizon"):
        Backoff(**kwargs)


backoffs = st.builds(
    Backoff,
    first_delay_s=st.floats(1, 3600),
    factor=st.floats(1, 4),
    max_delay_s=st.just(4 * 3600.0),
    horizon_s=st.floats(0, 2 * DAY_S),
)


@given(backoffs, st.integers(-5, 10**6), st.floats(0, 3 * DAY_S))
def test_next_attempt_is_after_now_and_never_after_the_horizon(backoff: Backoff, attempts: int, elapsed: float) -> None:
    now = T0 + elapsed
    nxt = backoff.next_attempt_at(T0, attempts, now)
    # Compared in absolute time, as the schedule does: a horizon below the resolution of a float
    # around T0 (hypothesis found 1e-41) is no window at all.
    if now >= T0 + backoff.horizon_s:
        assert nxt is None
    else:
        assert nxt is not None and now < nxt <= T0 + backoff.horizon_s


@given(backoffs, st.integers(1, 10**6))
def test_delays_never_shrink_and_stay_capped(backoff: Backoff, attempts: int) -> None:
    assert backoff.first_delay_s <= backoff.delay_after(attempts) <= backoff.delay_after(attempts + 1)
    assert backoff.delay_after(attempts + 1) <= backoff.max_delay_s


@given(st.floats(60, 3600), st.floats(1.5, 4), st.floats(0, DAY_S))
def test_schedule_is_finite_increasing_and_ends_at_the_horizon(first: float, factor: float, horizon: float) -> None:
    backoff = Backoff(first_delay_s=first, factor=factor, max_delay_s=max(first, 4 * 3600.0), horizon_s=horizon)
    times = backoff.schedule(T0)
    assert times[0] == T0
    assert all(a < b for a, b in itertools.pairwise(times))
    assert times[-1] == T0 + horizon
