"""The report model: frozen records built from one or several results documents.

Rendering (``conformance.report.html``) only reads these; everything computed (counts,
compliance, requirement status, comparison rows) is computed here, in a fixed order, so a
results file always gives the same report.

Compliance: per RFC, the MUST compliance is the share of checks at MUST or MUST NOT level
that passed among the checks of that level that were judged; a scenario that was N/A or
ended in ERROR judged nothing and counts in neither number. SHOULD compliance is the same
over SHOULD and SHOULD NOT checks (a check not followed there gives WARN, not FAIL).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from conformance.verdict import Verdict, worst

VERDICTS: tuple[Verdict, ...] = tuple(Verdict)
MUST_LEVELS = ("MUST", "MUST NOT")
SHOULD_LEVELS = ("SHOULD", "SHOULD NOT")


def section_key(section: str) -> tuple[tuple[int, str], ...]:
    """Natural order of RFC sections: 3.2 < 3.10 < A.1."""
    return tuple((int(p), "") if p.isdigit() else (1 << 30, p) for p in section.split("."))


def anchor(scenario_id: str, prefix: str = "s") -> str:
    """An HTML id for a scenario: ``s-mta-sts-send-x``; stable across runs."""
    return f"{prefix}-" + re.sub(r"[^a-z0-9.-]+", "-", scenario_id.lower())


@dataclass(frozen=True, slots=True)
class Compliance:
    passed: int
    judged: int

    @property
    def percent(self) -> float | None:
        return round(100 * self.passed / self.judged, 1) if self.judged else None


@dataclass(frozen=True, slots=True)
class Tally:
    """Verdict counts of a set of scenarios, and the compliance of their checks."""

    counts: tuple[tuple[Verdict, int], ...]  # every verdict, in VERDICTS order
    total: int
    must: Compliance
    should: Compliance

    def count(self, verdict: Verdict) -> int:
        return dict(self.counts)[verdict]


@dataclass(frozen=True, slots=True)
class Check:
    check: str
    requirement: str
    level: str
    verdict: Verdict
    detail: str
    evidence: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Scenario:
    id: str
    title: str
    rfc: int
    section: str
    level: str
    role: str
    verdict: Verdict
    duration_s: float
    reason: str
    requirements: tuple[tuple[str, str], ...]  # (id, summary) of every requirement it tests
    checks: tuple[Check, ...]
    evidence: tuple[str, ...]
    setup: tuple[str, ...]
    expected_behaviour: tuple[str, ...]
    expected: Verdict | None = None
    expected_reason: str = ""
    unexpected: bool = False

    @property
    def anchor(self) -> str:
        return anchor(self.id)


@dataclass(frozen=True, slots=True)
class ScenarioRef:
    id: str
    verdict: Verdict

    @property
    def anchor(self) -> str:
        return anchor(self.id)


@dataclass(frozen=True, slots=True)
class Requirement:
    id: str
    rfc: int
    section: str
    level: str
    summary: str
    observable: bool
    reason: str
    gap: str
    implied: str
    scenarios: tuple[ScenarioRef, ...]
    in_catalog: int | None = None  # scenarios of the whole catalog that test it; None: not known

    @property
    def status(self) -> str:
        """tested, not-observable, uncovered (no scenario in the catalog, or a known gap) or
        not-run (the catalog tests it, this run left those scenarios out)."""
        if self.scenarios:
            return "tested"
        if not self.observable:
            return "not-observable"
        if self.in_catalog == 0 or (self.in_catalog is None and self.gap):
            return "uncovered"
        return "not-run"

    @property
    def verdict(self) -> Verdict | None:
        """The worst verdict of the scenarios that test it."""
        return worst([s.verdict for s in self.scenarios]) if self.scenarios else None


@dataclass(frozen=True, slots=True)
class RfcSummary:
    rfc: int
    title: str
    tally: Tally
    requirements: int
    observable: int
    tested: int


@dataclass(frozen=True, slots=True)
class Run:
    target: str
    description: str
    version: str
    started_at: str
    duration_s: float
    suite_version: str
    jobs: int
    selection: tuple[str, ...]
    interrupted: bool
    world: str

    @property
    def label(self) -> str:
        return f"{self.target} {self.version}".strip()


@dataclass(frozen=True, slots=True)
class Report:
    """One run: what the single-target report shows."""

    run: Run
    tally: Tally
    rfcs: tuple[RfcSummary, ...]
    requirements: tuple[Requirement, ...]
    scenarios: tuple[Scenario, ...]

    @property
    def levels(self) -> tuple[str, ...]:
        return tuple(sorted({s.level for s in self.scenarios}))

    @property
    def roles(self) -> tuple[str, ...]:
        return tuple(sorted({s.role for s in self.scenarios}))


@dataclass(frozen=True, slots=True)
class Row:
    """One scenario across the compared runs; a cell is None where a run did not have it."""

    id: str
    title: str
    rfc: int
    section: str
    level: str
    role: str
    cells: tuple[Scenario | None, ...]

    @property
    def verdicts(self) -> tuple[str, ...]:
        return tuple(c.verdict.value if c is not None else "" for c in self.cells)

    @property
    def differs(self) -> bool:
        return len(set(self.verdicts)) > 1

    @property
    def anchor(self) -> str:
        return anchor(self.id, "row")


@dataclass(frozen=True, slots=True)
class Comparison:
    """Several runs side by side: one row per scenario, one column per run."""

    reports: tuple[Report, ...]
    rows: tuple[Row, ...]
    rfcs: tuple[tuple[int, str], ...]

    @property
    def levels(self) -> tuple[str, ...]:
        return tuple(sorted({r.level for r in self.rows}))

    @property
    def roles(self) -> tuple[str, ...]:
        return tuple(sorted({r.role for r in self.rows}))


# ---------------------------------------------------------------- building


def tally(scenarios: Iterable[Scenario]) -> Tally:
    items = list(scenarios)
    counts = Counter(s.verdict for s in items)
    checks = [c for s in items for c in s.checks if c.verdict in (Verdict.PASS, Verdict.FAIL, Verdict.WARN)]

    def compliance(levels: Sequence[str]) -> Compliance:
        judged = [c for c in checks if c.level in levels]
        return Compliance(passed=sum(1 for c in judged if c.verdict is Verdict.PASS), judged=len(judged))

    return Tally(
        counts=tuple((v, counts.get(v, 0)) for v in VERDICTS),
        total=len(items),
        must=compliance(MUST_LEVELS),
        should=compliance(SHOULD_LEVELS),
    )


def _run(data: dict[str, Any]) -> Run:
    return Run(
        target=str(data.get("target", "")),
        description=str(data.get("target_description", "")),
        version=str(data.get("target_version", "")),
        started_at=str(data.get("started_at", "")),
        duration_s=float(data.get("duration_s", 0.0)),
        suite_version=str(data.get("suite_version", "")),
        jobs=int(data.get("jobs", 1)),
        selection=tuple(data.get("selection", ())),
        interrupted=bool(data.get("interrupted", False)),
        world=str(data.get("world", "")),
    )


def _scenario(data: dict[str, Any], summaries: dict[str, str]) -> Scenario:
    covers = data.get("covers") or data["requirements"]
    return Scenario(
        id=data["id"],
        title=data["title"],
        rfc=data["rfc"],
        section=data["section"],
        level=data["level"],
        role=data["role"],
        verdict=Verdict(data["verdict"]),
        duration_s=data["duration_s"],
        reason=data["reason"],
        requirements=tuple((req_id, summaries.get(req_id, "")) for req_id in covers),
        checks=tuple(
            Check(
                check=c["check"],
                requirement=c["requirement"],
                level=c["level"],
                verdict=Verdict(c["verdict"]),
                detail=c["detail"],
                evidence=tuple(c["evidence"]),
            )
            for c in data["checks"]
        ),
        evidence=tuple(data["evidence"]),
        setup=tuple(data["setup"]),
        expected_behaviour=tuple(data["expected_behaviour"]),
        expected=Verdict(data["expected"]) if data.get("expected") else None,
        expected_reason=data.get("expected_reason", ""),
        unexpected=bool(data.get("unexpected", False)),
    )


def _scenario_order(s: Scenario) -> tuple[int, str]:
    return (s.rfc, s.id)


def report_from_document(document: dict[str, Any]) -> Report:
    """The model of one results document (as validated by ``results.validate_results``)."""
    summaries = {r["id"]: r["summary"] for r in document["requirements"]}
    scenarios = tuple(sorted((_scenario(r, summaries) for r in document["results"]), key=_scenario_order))
    verdict_of = {s.id: s.verdict for s in scenarios}
    requirements = tuple(
        sorted(
            (
                Requirement(
                    id=r["id"],
                    rfc=r["rfc"],
                    section=r["section"],
                    level=r["level"],
                    summary=r["summary"],
                    observable=r["observable"],
                    reason=r["reason"] or "",
                    gap=r["gap"] or "",
                    implied=r["implied"] or "",
                    scenarios=tuple(ScenarioRef(i, verdict_of[i]) for i in sorted(r["scenarios"]) if i in verdict_of),
                    in_catalog=r.get("in_catalog"),
                )
                for r in document["requirements"]
            ),
            key=lambda r: (r.rfc, section_key(r.section), r.id),
        )
    )
    titles = {r["rfc"]: r["title"] for r in document["rfcs"]}
    rfcs = []
    for rfc in sorted({s.rfc for s in scenarios} | set(titles)):
        reqs = [r for r in requirements if r.rfc == rfc]
        rfcs.append(
            RfcSummary(
                rfc=rfc,
                title=titles.get(rfc, ""),
                tally=tally(s for s in scenarios if s.rfc == rfc),
                requirements=len(reqs),
                observable=sum(1 for r in reqs if r.observable),
                tested=sum(1 for r in reqs if r.scenarios),
            )
        )
    return Report(
        run=_run(document["run"]),
        tally=tally(scenarios),
        rfcs=tuple(rfcs),
        requirements=requirements,
        scenarios=scenarios,
    )


def comparison_from_documents(documents: Sequence[dict[str, Any]]) -> Comparison:
    """Several runs side by side, columns in the order given, rows sorted by RFC and id."""
    reports = tuple(report_from_document(d) for d in documents)
    by_id = [{s.id: s for s in report.scenarios} for report in reports]
    first: dict[str, Scenario] = {}
    for report in reports:
        for scenario in report.scenarios:
            first.setdefault(scenario.id, scenario)
    rows = tuple(
        Row(
            id=s.id,
            title=s.title,
            rfc=s.rfc,
            section=s.section,
            level=s.level,
            role=s.role,
            cells=tuple(index.get(s.id) for index in by_id),
        )
        for s in sorted(first.values(), key=_scenario_order)
    )
    titles: dict[int, str] = {}
    for report in reports:
        for summary in report.rfcs:
            titles[summary.rfc] = titles.get(summary.rfc) or summary.title
    return Comparison(reports=reports, rows=rows, rfcs=tuple(sorted(titles.items())))
