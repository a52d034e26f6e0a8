"""Every check can fail: each scenario PASSes on the reference and gives the verdict it
declares (FAIL, or WARN for a SHOULD) on each of its mutants."""

from __future__ import annotations

import asyncio

import pytest

from conformance.catalog.loader import CatalogEntry, load_catalog
from conformance.catalog.requirements import load_inventory
from conformance.runner import run_all
from conformance.targets.mutants import MUTANTS
from conformance.targets.reference import REFERENCE, ReferenceTarget, Variant
from conformance.verdict import ScenarioResult, Verdict
from conformance.world.world import World

INVENTORY = load_inventory()
CATALOG = load_catalog(INVENTORY)


def run_against(variant: Variant, entries: list[CatalogEntry]) -> dict[str, ScenarioResult]:
    async def main() -> list[ScenarioResult]:
        async with World() as world:
            target = ReferenceTarget(variant)
            await target.start(world)
            try:
                return await run_all(entries, world, target, INVENTORY, jobs=4)
            finally:
                await target.stop()

    return {r.id: r for r in asyncio.run(main())}


def explain(result: ScenarioResult) -> str:
    lines = [f"{result.id}: {result.verdict.value} {result.reason}"]
    lines += [f"  [{o.verdict.value}] {o.detail}" for o in result.outcomes]
    return "\n".join(lines + list(result.evidence[:40]))


def test_every_scenario_passes_on_the_reference() -> None:
    results = run_against(REFERENCE, list(CATALOG.entries))
    bad = [explain(r) for r in results.values() if r.verdict is not Verdict.PASS]
    assert bad == [], "\n\n".join(bad)
    assert len(results) == len(CATALOG.entries)


@pytest.mark.parametrize("mutant", sorted(MUTANTS))
def test_each_mutant_is_caught_by_its_scenarios(mutant: str) -> None:
    entries = [e for e in CATALOG.entries if any(m.name == mutant for m in e.scenario.mutants)]
    assert entries, f"no scenario names mutant {mutant}"
    results = run_against(MUTANTS[mutant], entries)
    wrong = []
    for entry in entries:
        expected = next(m.verdict for m in entry.scenario.mutants if m.name == mutant)
        if results[entry.id].verdict.value != expected:
            wrong.append(f"expected {expected}\n" + explain(results[entry.id]))
    assert wrong == [], "\n\n".join(wrong)
