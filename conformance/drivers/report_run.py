"""The report step of a sending phase: ask the SUT for its TLSRPT reports, wait, judge.

RFC 8460 reports cover a UTC day (section 4.1), so no suite can wait for the daily run: the
target says how to trigger one (the reference's report run, a command for an external MTA)
or, lacking a trigger, the suite waits for reports the SUT sends by itself. Checks decide as
soon as the reports settle them; absence (``no-report``, ``absent`` failures) is only decided
when the target says it is done or at the deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass

from conformance.catalog.model import ReportCheck
from conformance.drivers.checks import Decision
from conformance.drivers.reports import ReceivedReport, TxtLookup, collect_reports, judge_report_check, report_evidence
from conformance.targets.base import Target
from conformance.world.observe import ObservationLog
from conformance.world.world import Stage

# After the target reports it is done, the last report may still be on its way through the
# world's peers (a 250 is sent after the peer logged the message, but a POST's log entry and
# the sender's view race); a short grace avoids judging a moment too early.
_DONE_GRACE_S = 0.3
_UNSETTLED_GRACE_S = 1.0


@dataclass(frozen=True, slots=True)
class ReportPhaseOutcome:
    decisions: list[tuple[ReportCheck, Decision]]
    evidence: list[str]


async def run_report_phase(
    checks: Sequence[ReportCheck],
    stage: Stage,
    target: Target,
    txt_lookup: TxtLookup | None,
    timeout_s: float,
) -> ReportPhaseOutcome:
    cap = target.report_wait_s
    wait_s = timeout_s if cap is None else min(cap, timeout_s)
    evidence: list[str] = []
    if target.can_settle:
        # The sending checks may have decided while the SUT was still in session (a message is
        # "delivered" at the peer's 250, before QUIT): the report must see the whole session.
        settled = await target.settled(stage.domain, time.monotonic() + timeout_s)
        evidence.append(f"before the report run the SUT reports the message {settled or 'not settled'}")
    else:
        # A SUT that cannot say when it is done: the sending checks decided at the peer's 250,
        # and the SUT still has to end the session and record its result.
        await asyncio.sleep(_UNSETTLED_GRACE_S)
    evidence.append(await target.request_reports(stage.domain))
    started = time.monotonic()
    deadline = started + wait_s
    cache: dict[int, list[ReceivedReport]] = {}

    def reports(log: ObservationLog) -> list[ReceivedReport]:
        # Validating is not free (gzip, DKIM): only again when the log grew.
        size = len(log.events)
        if size not in cache:
            cache.clear()
            cache[size] = collect_reports(log, txt_lookup)
        return cache[size]

    def decide(log: ObservationLog, final: bool = False) -> list[Decision] | None:
        waited = f"within {time.monotonic() - started:.1f} s of the request"
        received = reports(log)
        decisions = [
            judge_report_check(c, received, domain=stage.domain, expand=stage.expand, final=final, waited=waited)
            for c in checks
        ]
        if all(d is not None for d in decisions):
            return [d for d in decisions if d is not None]
        return None

    waiter = asyncio.ensure_future(stage.phase_log.wait_for(decide, deadline))
    done = asyncio.ensure_future(target.reports_done(stage.domain, deadline))
    try:
        await asyncio.wait({waiter, done}, return_when=asyncio.FIRST_COMPLETED)
        result = waiter.result() if waiter.done() else None
        if result is None and done.done() and done.result():
            await asyncio.sleep(_DONE_GRACE_S)
            evidence.append("the SUT reports its report deliveries done")
            result = decide(stage.phase_log, final=True)
        if result is None:
            result = await stage.phase_log.wait_for(decide, deadline)
        if result is None:
            result = decide(stage.phase_log, final=True)
    finally:
        for task in (waiter, done):
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    assert result is not None
    evidence += report_evidence(reports(stage.phase_log))
    return ReportPhaseOutcome(decisions=list(zip(checks, result, strict=True)), evidence=evidence)
