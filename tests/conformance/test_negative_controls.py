"""Every check can fail: each scenario PASSes on the reference and gives the verdict it
declares (FAIL, or WARN for a SHOULD) on each of its mutants."""

from __future__ import annotations

import pytest

from conformance.catalog.loader import load_catalog
from conformance.catalog.requirements import load_inventory
from conformance.targets.mutants import MUTANTS
from conformance.targets.reference import REFERENCE
from conformance.verdict import Verdict
from tests.conformance.helpers import explain, run_against

INVENTORY = load_inventory()
CATALOG = load_catalog(INVENTORY)


def test_every_scenario_passes_on_the_reference() -> None:
    results = run_against(REFERENCE, list(CATALOG.entries), INVENTORY)
    bad = [explain(r) for r in results.values() if r.verdict is not Verdict.PASS]
    assert bad == [], "\n\n".join(bad)
    assert len(results) == len(CATALOG.entries)


@pytest.mark.parametrize("mutant", sorted(MUTANTS))
def test_each_mutant_is_caught_by_its_scenarios(mutant: str) -> None:
    entries = [e for e in CATALOG.entries if any(m.name == mutant for m in e.scenario.mutants)]
    assert entries, f"no scenario names mutant {mutant}"
    results = run_against(MUTANTS[mutant], entries, INVENTORY)
    wrong = []
    for entry in entries:
        expected = next(m.verdict for m in entry.scenario.mutants if m.name == mutant)
        if results[entry.id].verdict.value != expected:
            wrong.append(f"expected {expected}\n" + explain(results[entry.id]))
    assert wrong == [], "\n\n".join(wrong)
