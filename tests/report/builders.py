"""Results for report tests, built from ScenarioResult objects and a small inventory, and
turned into results documents by the real writers."""

from __future__ import annotations

from typing import Any

from conformance.catalog.requirements import Inventory, InventoryFile, Level, Requirement
from conformance.report.writers import RunInfo, results_document
from conformance.verdict import CheckOutcome, ScenarioResult, Verdict

# What a hostile SUT puts in its banner: markup that would run if it were not escaped.
HOSTILE = '220 <script>window.__xss=1</script><img src=x onerror="window.__xss=2">'

RUN = RunInfo(
    target="reference",
    target_description="the embedded reference implementation",
    target_version="0.1",
    started_at="2026-11-29T00:00:00Z",
    duration_s=1.5,
    jobs=2,
    selection=("x/*",),
    world="127.9.0.0/16 dns=127.9.0.53:5353",
)


def _req(rfc: int, name: str, level: Level, **extra: Any) -> Requirement:
    fields: dict[str, Any] = {"observable": True, "how": "a scenario watches"} | extra
    return Requirement(
        id=f"rfc{rfc}-{name}",
        section=name.split("-")[0],
        level=level,
        actor="sending-mta",
        summary=f"summary of {name}",
        quote="The sender MUST do it.",
        **fields,
    )


def inventory() -> Inventory:
    """RFC 9901: two MUSTs and a SHOULD with scenarios, one not observable, one a known gap,
    one left out of the run; RFC 9902: one MUST."""
    return Inventory(
        [
            InventoryFile(
                rfc=9901,
                title="First test RFC",
                requirements=(
                    _req(9901, "3-must-a", Level.MUST),
                    _req(9901, "3.2-must-b", Level.MUST_NOT),
                    _req(9901, "4-should-c", Level.SHOULD),
                    _req(9901, "5-hidden", Level.MUST, observable=False, how=None, reason="inside the SUT"),
                    _req(9901, "6-gap", Level.SHOULD, gap="needs a second SUT"),
                    _req(9901, "10-unrun", Level.MUST),
                ),
            ),
            InventoryFile(rfc=9902, title="Second test RFC", requirements=(_req(9902, "2-must-d", Level.MUST),)),
        ]
    )


def check(requirement: str, level: str, verdict: Verdict, detail: str = "detail") -> CheckOutcome:
    return CheckOutcome("delivered", requirement, level, verdict, detail, (f"evidence of {requirement}",))


def result(
    scenario_id: str,
    verdict: Verdict,
    *,
    rfc: int = 9901,
    level: str = "MUST",
    role: str = "sending-mta",
    requirements: tuple[str, ...] = ("rfc9901-3-must-a",),
    outcomes: tuple[CheckOutcome, ...] | None = None,
    title: str = "A scenario",
    evidence: tuple[str, ...] = ("S: 220 mx1.example.test ESMTP",),
    reason: str = "",
) -> ScenarioResult:
    if outcomes is None:
        outcomes = () if verdict in (Verdict.NA, Verdict.ERROR) else (check(requirements[0], level, verdict),)
    return ScenarioResult(
        id=scenario_id,
        title=title,
        rfc=rfc,
        section="3",
        level=level,
        role=role,
        requirements=requirements,
        verdict=verdict,
        duration_s=0.25,
        outcomes=outcomes,
        evidence=evidence,
        reason=reason,
        setup=("MX 10 mx1.{domain}: STARTTLS offered, certificate valid",),
        expected_behaviour=("delivered host=mx1.{domain} tls=true",),
        covers=requirements,
    )


def sample_results() -> list[ScenarioResult]:
    """Four scenarios of RFC 9901 (PASS, FAIL, WARN, N/A), one of RFC 9902 (ERROR), and one
    with a hostile banner in its title and evidence (FAIL)."""
    return [
        result(
            "x/pass",
            Verdict.PASS,
            requirements=("rfc9901-3-must-a", "rfc9901-4-should-c"),
            outcomes=(
                check("rfc9901-3-must-a", "MUST", Verdict.PASS),
                check("rfc9901-4-should-c", "SHOULD", Verdict.PASS),
            ),
        ),
        result(
            "x/fail",
            Verdict.FAIL,
            requirements=("rfc9901-3.2-must-b",),
            outcomes=(
                check("rfc9901-3.2-must-b", "MUST NOT", Verdict.FAIL, "delivered in plaintext"),
                check("rfc9901-3.2-must-b", "MUST NOT", Verdict.PASS),
            ),
        ),
        result("x/warn", Verdict.WARN, level="SHOULD", requirements=("rfc9901-4-should-c",)),
        result("x/na", Verdict.NA, role="receiving-mta", reason="the target does not play the receiving-mta role"),
        result("y/error", Verdict.ERROR, rfc=9902, requirements=("rfc9902-2-must-d",), reason="no decision within 5 s"),
        result(
            "x/hostile",
            Verdict.FAIL,
            title=f"Banner {HOSTILE}",
            evidence=(f"  S: {HOSTILE}", "  C: EHLO mx.reference.test"),
            outcomes=(check("rfc9901-3-must-a", "MUST", Verdict.FAIL, f"greeting was {HOSTILE}"),),
        ),
    ]


def sample_document(run: RunInfo = RUN, results: list[ScenarioResult] | None = None) -> dict[str, Any]:
    return results_document(run, sample_results() if results is None else results, inventory())
