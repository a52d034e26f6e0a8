"""When to try a failed report delivery again (RFC 8460 section 5.5), sans-IO.

Section 5.5: "In the event of a delivery failure, regardless of the delivery method, a sender
SHOULD attempt redelivery for up to 24 hours after the initial attempt. ... If multiple
retries are attempted, ideally they SHOULD be done with exponential backoff."

:class:`Backoff` answers one question: after the ``attempts``-th failed attempt, made at
``now``, when is the next one (or ``None``: give up)? The delay doubles from
``first_delay_s`` up to ``max_delay_s`` and is measured from the attempt that just failed,
not from a fixed grid, so a sender that was down for hours does not fire a burst of
catch-up attempts when it comes back. No attempt is ever scheduled after ``first + horizon``;
when the next delay would overshoot it, the last attempt is made exactly at the horizon, so
the schedule always "ends 24 hours after the initial attempt".

A ``horizon_s`` of 0 means "never retry" (the ``tlsrpt-no-retry`` mutant).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DAY_S", "Backoff"]

DAY_S = 24 * 3600.0


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff that ends ``horizon_s`` after the first attempt (section 5.5)."""

    first_delay_s: float = 60.0
    factor: float = 2.0
    max_delay_s: float = 4 * 3600.0
    horizon_s: float = DAY_S

    def __post_init__(self) -> None:
        if not (self.first_delay_s > 0 and self.factor >= 1 and self.max_delay_s >= self.first_delay_s):
            raise ValueError("backoff needs a positive first delay, a factor >= 1 and max_delay >= first_delay")
        if not self.horizon_s >= 0:
            raise ValueError("the retry horizon must not be negative")

    def delay_after(self, attempts: int) -> float:
        """The pause after ``attempts`` failed attempts (1 → ``first_delay_s``), capped."""
        delay = self.first_delay_s
        for _ in range(max(attempts, 1) - 1):
            delay *= self.factor
            if delay >= self.max_delay_s:  # stop early: the exponent of a huge count never overflows
                return self.max_delay_s
        return min(delay, self.max_delay_s)

    def next_attempt_at(self, first_attempt_at: float, attempts: int, now: float) -> float | None:
        """The time of the next attempt after ``attempts`` failures, the last one at ``now``;
        ``None`` when the 24-hour window of section 5.5 is used up."""
        deadline = first_attempt_at + self.horizon_s
        if now >= deadline:
            return None
        return min(now + self.delay_after(attempts), deadline)

    def schedule(self, first_attempt_at: float) -> list[float]:
        """Every attempt time when each attempt fails at once (the first one included)."""
        times = [first_attempt_at]
        while (nxt := self.next_attempt_at(first_attempt_at, len(times), times[-1])) is not None:
            times.append(nxt)
        return times
