"""Running scenarios: stage, stimulate, judge, unstage; concurrently, each under a deadline.

A scenario's failure to run (a setup problem, a crash in a peer, a hung SUT) costs that
scenario an ERROR with the reason, never the run. Cancelling the run (Ctrl-C) stops the
scenarios in flight; the results already decided are kept.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from conformance.catalog.loader import CatalogEntry
from conformance.catalog.model import (
    REPORT_CHECK_TYPES,
    Check,
    CheckDomain,
    Fact,
    MailReport,
    PostReport,
    Probe,
    Role,
    SendMessage,
)
from conformance.catalog.requirements import Inventory, Level
from conformance.drivers.checks import Decision, check_fact
from conformance.drivers.domain_check import DomainCheckConfig, check_domain
from conformance.drivers.probe_requiretls import probe_requiretls
from conformance.drivers.probes import PROBES, ProbeContext, ProbeError, ProbePrecondition
from conformance.drivers.report_receiver import ReceiverDriverError, mail_report, post_report
from conformance.drivers.report_run import run_report_phase
from conformance.drivers.sending import InjectionError, RequireTlsRefused, run_sending
from conformance.drivers.tlsrpt_domain_check import TlsRptCheckConfig, check_tlsrpt_domain
from conformance.errors import WorldError
from conformance.report import describe
from conformance.targets.base import ReportRequestError, Target
from conformance.verdict import CheckOutcome, ScenarioResult, Verdict, worst
from conformance.world.world import Stage, World

# Probes register themselves by name; the REQUIRETLS probe lives in its own module.
assert PROBES["requiretls"] is probe_requiretls

# Added to a scenario's own timeout for staging and tear-down, so a scenario whose checks
# run to their deadline is still judged rather than cut off.
_GRACE_S = 5.0


def _verdict_for(decision: Decision, level: Level) -> Verdict:
    if decision.ok:
        return Verdict.PASS
    return Verdict.FAIL if level.mandatory and not decision.warn_only else Verdict.WARN


def _result(
    entry: CatalogEntry,
    verdict: Verdict,
    started: float,
    *,
    outcomes: Sequence[CheckOutcome] = (),
    evidence: Sequence[str] = (),
    reason: str = "",
) -> ScenarioResult:
    return ScenarioResult(
        id=entry.id,
        title=entry.scenario.title,
        rfc=entry.rfc,
        section=entry.section,
        level=entry.level.value,
        role=entry.scenario.role.value,
        requirements=entry.scenario.requirements,
        verdict=verdict,
        duration_s=round(time.monotonic() - started, 4),
        outcomes=tuple(outcomes),
        evidence=tuple(evidence),
        reason=reason,
        started_at=time.time(),
        setup=describe.setup(entry.scenario),
        expected_behaviour=describe.expected_behaviour(entry.scenario),
        covers=describe.covered_requirements(entry.scenario),
    )


def not_applicable(entry: CatalogEntry, target: Target) -> str | None:
    scenario = entry.scenario
    if scenario.role not in target.roles:
        return f"the target does not play the {scenario.role.value} role"
    missing = [n for n in scenario.needs if n not in target.claims]
    if missing:
        return f"the target does not claim {', '.join(missing)}"
    return None


async def run_scenario(
    entry: CatalogEntry,
    world: World,
    target: Target,
    inventory: Inventory,
    *,
    timeout_cap_s: float | None = None,
) -> ScenarioResult:
    started = time.monotonic()
    reason = not_applicable(entry, target)
    if reason is not None:
        return dataclasses.replace(_result(entry, Verdict.NA, started, reason=reason), not_claimed=True)
    scenario = entry.scenario
    timeout_s = min(scenario.timeout_s, timeout_cap_s) if timeout_cap_s else scenario.timeout_s
    # Staging, injection and restaging take time in every phase, more so on a loaded machine.
    grace_s = min(_GRACE_S, timeout_s) * (1 + len(scenario.then))
    steps = 1 + len(scenario.then) + 2 * scenario.report_phases
    total_s = timeout_s * steps + sum(p.wait_s for p in scenario.then)
    try:
        async with asyncio.timeout(total_s + grace_s):
            spec = target.deployment(scenario.world) if scenario.role is Role.POLICY_DOMAIN else scenario.world
            stage = await world.stage(scenario.id, spec)
            try:
                deadline = time.monotonic() + timeout_s
                pairs: list[tuple[str, str | None, Decision]]
                evidence: list[str]
                if isinstance(scenario.stimulus, SendMessage):
                    pairs, evidence = await _run_phases(entry, world, stage, target, deadline, timeout_s)
                elif isinstance(scenario.stimulus, CheckDomain) and scenario.stimulus.what == "tlsrpt":
                    pairs, evidence = await _run_tlsrpt_domain_check(entry, world, stage, target, deadline)
                elif isinstance(scenario.stimulus, CheckDomain):
                    pairs, evidence = await _run_domain_check(scenario.stimulus, entry, world, stage, target, deadline)
                elif isinstance(scenario.stimulus, PostReport | MailReport):
                    pairs, evidence = await _run_receiver(scenario.stimulus, entry, world, stage, target, deadline)
                else:
                    assert isinstance(scenario.stimulus, Probe)
                    pairs, evidence = await _run_probe(scenario.stimulus, entry, world, target, deadline)
            finally:
                await world.unstage(stage)
    except TimeoutError:
        return _result(
            entry,
            Verdict.ERROR,
            started,
            reason=f"no decision within {total_s + grace_s:.1f} s",
        )
    except ProbePrecondition as exc:
        return _result(entry, Verdict.NA, started, reason=f"precondition not met: {exc}")
    except RequireTlsRefused as exc:
        requirement = inventory.by_id[exc.requirement]
        refused = CheckOutcome(
            check="takes-requiretls",
            requirement=requirement.id,
            level=requirement.level.value,
            verdict=Verdict.FAIL,
            detail=str(exc),
            evidence=tuple(exc.transcript),
        )
        return _result(entry, Verdict.FAIL, started, outcomes=[refused], evidence=exc.transcript)
    except (InjectionError, ProbeError, WorldError, ReceiverDriverError, ReportRequestError) as exc:
        return _result(entry, Verdict.ERROR, started, reason=str(exc))
    except Exception as exc:  # a bug or a peer crash must cost one scenario, not the run
        return _result(
            entry,
            Verdict.ERROR,
            started,
            reason=f"internal error: {exc!r}",
            evidence=traceback.format_exc().splitlines()[-12:],
        )
    outcomes = []
    for check, req_id, decision in pairs:
        requirement = inventory.by_id[req_id] if req_id else entry.primary
        outcomes.append(
            CheckOutcome(
                check=check,
                requirement=requirement.id,
                level=requirement.level.value,
                verdict=_verdict_for(decision, requirement.level),
                detail=decision.detail,
                evidence=decision.evidence,
            )
        )
    verdict = worst([o.verdict for o in outcomes])
    return _result(entry, verdict, started, outcomes=outcomes, evidence=evidence)


async def _run_phases(
    entry: CatalogEntry, world: World, stage: Stage, target: Target, deadline: float, timeout_s: float
) -> tuple[list[tuple[str, str | None, Decision]], list[str]]:
    """The first phase (the scenario's own stimulus and checks), then each ``then`` phase."""
    scenario = entry.scenario
    assert isinstance(scenario.stimulus, SendMessage)
    phases = [(None, scenario.stimulus, scenario.expect)] + [(p, p.stimulus, p.expect) for p in scenario.then]
    pairs: list[tuple[str, str | None, Decision]] = []
    evidence: list[str] = []
    for number, (phase, stimulus, expect) in enumerate(phases, start=1):
        if phase is not None:
            if phase.wait_s:
                await asyncio.sleep(phase.wait_s)
            world.restage(stage, phase.world)
            stage.next_phase()
            deadline = time.monotonic() + timeout_s
            evidence.append(f"--- phase {number}: {phase.title or 'next message'}")
        report_checks = [c for c in expect if isinstance(c, REPORT_CHECK_TYPES)]
        checks = [c for c in expect if not isinstance(c, (Fact, *REPORT_CHECK_TYPES))]
        outcome = await run_sending(stimulus, checks, stage, target, scenario.id, deadline)
        label = "" if len(phases) == 1 else f"phase {number}: "
        pairs += [(label + c.check, c.requirement, _advisory(c, d)) for c, d in outcome.decisions]
        evidence += outcome.evidence
        if report_checks:
            reported = await run_report_phase(
                report_checks,
                stage,
                target,
                world.txt_lookup,
                timeout_s,
            )
            pairs += [(label + c.check, c.requirement, _advisory(c, d)) for c, d in reported.decisions]
            evidence += ["--- reports", *reported.evidence]
    return pairs, evidence


def _advisory(check: Check, decision: Decision) -> Decision:
    """A check the scenario marks ``warn_only`` gives WARN at worst."""
    return dataclasses.replace(decision, warn_only=True) if check.warn_only else decision


def _judge_facts(entry: CatalogEntry, facts: dict[str, Any]) -> list[tuple[str, str | None, Decision]]:
    pairs: list[tuple[str, str | None, Decision]] = []
    for check in entry.scenario.expect:
        assert isinstance(check, Fact)
        pairs.append((check.check, check.requirement, _advisory(check, check_fact(check, facts))))
    return pairs


async def _run_domain_check(
    stimulus: CheckDomain, entry: CatalogEntry, world: World, stage: Stage, target: Target, deadline: float
) -> tuple[list[tuple[str, str | None, Decision]], list[str]]:
    """The policy-domain role: lint the deployment, from the scenario's stage in the world or,
    for a target that names a real domain, from that domain through its resolver."""
    real = target.policy_domain()
    info = world.info
    timeout = max(0.5, deadline - time.monotonic())
    if real is None:
        domain = stage.domain
        config = DomainCheckConfig(
            resolver=info.resolver,
            https_port=info.https[1],
            smtp_port=info.smtp_port,
            ca_file=info.trust_bundle,
            timeout_s=timeout,
            check_mx=stimulus.check_mx,
        )
    else:
        domain = real.domain
        config = DomainCheckConfig(
            resolver=real.resolver,
            https_port=real.https_port,
            smtp_port=real.smtp_port,
            ca_file=real.ca_file,
            timeout_s=timeout,
            check_mx=stimulus.check_mx,
        )
    report = await check_domain(domain, config)
    facts = report.facts()
    evidence = [f"fact {k} = {v!r}" for k, v in sorted(facts.items())]
    evidence += [str(f) for f in report.findings] + report.evidence
    return _judge_facts(entry, facts), evidence


async def _run_tlsrpt_domain_check(
    entry: CatalogEntry, world: World, stage: Stage, target: Target, deadline: float
) -> tuple[list[tuple[str, str | None, Decision]], list[str]]:
    """The policy-domain role for RFC 8460 section 3: lint the ``_smtp._tls`` TXT record."""
    real = target.policy_domain()
    domain, resolver = (stage.domain, world.info.resolver) if real is None else (real.domain, real.resolver)
    config = TlsRptCheckConfig(resolver=resolver, timeout_s=max(0.5, deadline - time.monotonic()))
    report = await check_tlsrpt_domain(domain, config)
    facts: dict[str, Any] = {"ok": report.ok, "errors": report.errors, "warnings": report.warnings}
    evidence = [f"fact {k} = {v!r}" for k, v in sorted(facts.items())]
    evidence += [str(f) for f in report.findings] + list(report.evidence)
    return _judge_facts(entry, facts), evidence


async def _run_receiver(
    stimulus: PostReport | MailReport, entry: CatalogEntry, world: World, stage: Stage, target: Target, deadline: float
) -> tuple[list[tuple[str, str | None, Decision]], list[str]]:
    """The report-receiver role: the suite sends the SUT a report and reads its answer."""
    if isinstance(stimulus, PostReport):
        outcome = await post_report(stimulus, stage, target, deadline)
    else:
        outcome = await mail_report(stimulus, stage, target, world.dkim, deadline)
    evidence = [f"fact {k} = {v!r}" for k, v in sorted(outcome.facts.items())] + outcome.evidence
    return _judge_facts(entry, outcome.facts), evidence


async def _run_probe(
    stimulus: Probe, entry: CatalogEntry, world: World, target: Target, deadline: float
) -> tuple[list[tuple[str, str | None, Decision]], list[str]]:
    endpoint = target.smtp_endpoint()
    if endpoint is None:
        raise ProbeError("the target has no SMTP endpoint")
    fn = PROBES.get(stimulus.probe)
    if fn is None:
        raise ProbeError(f"unknown probe {stimulus.probe!r}")
    trust = endpoint.trust_file or world.info.trust_bundle
    ctx = ProbeContext(
        endpoint=endpoint,
        trust_file=str(trust),
        timeout=max(0.1, deadline - time.monotonic()),
        options=dict(stimulus.options),
    )
    result = await fn(ctx)
    facts = result.facts
    pairs = _judge_facts(entry, facts)
    evidence = [f"fact {k} = {v!r}" for k, v in sorted(facts.items())] + result.evidence
    return pairs, evidence


async def run_all(
    entries: Sequence[CatalogEntry],
    world: World,
    target: Target,
    inventory: Inventory,
    *,
    jobs: int = 1,
    on_result: Callable[[ScenarioResult], None] | None = None,
    timeout_cap_s: float | None = None,
) -> list[ScenarioResult]:
    """Run entries with at most ``jobs`` at once; results in catalog order. On cancellation
    the results decided so far are returned through ``on_result`` before it propagates."""
    semaphore = asyncio.Semaphore(max(1, jobs))
    results: dict[str, ScenarioResult] = {}

    async def one(entry: CatalogEntry) -> None:
        async with semaphore:
            result = await run_scenario(entry, world, target, inventory, timeout_cap_s=timeout_cap_s)
        results[entry.id] = result
        if on_result is not None:
            on_result(result)

    tasks = [asyncio.ensure_future(one(e)) for e in entries]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return [results[e.id] for e in entries if e.id in results]
