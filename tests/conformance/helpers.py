"""Running catalog entries against a build of the reference, for the project's own tests."""

from __future__ import annotations

import asyncio

from conformance.catalog.loader import CatalogEntry
from conformance.catalog.requirements import Inventory
from conformance.runner import run_all
from conformance.targets.reference import ReferenceTarget, Variant
from conformance.verdict import ScenarioResult
from conformance.world.world import World


def run_against(variant: Variant, entries: list[CatalogEntry], inventory: Inventory) -> dict[str, ScenarioResult]:
    """Run ``entries`` in a fresh world against ``variant``; results by scenario id."""

    async def main() -> list[ScenarioResult]:
        async with World() as world:
            target = ReferenceTarget(variant)
            await target.start(world)
            try:
                return await run_all(entries, world, target, inventory, jobs=4)
            finally:
                await target.stop()

    return {r.id: r for r in asyncio.run(main())}


def explain(result: ScenarioResult) -> str:
    """A result as text for an assertion message: verdict, checks, the start of the evidence."""
    lines = [f"{result.id}: {result.verdict.value} {result.reason}"]
    lines += [f"  [{o.verdict.value}] {o.detail}" for o in result.outcomes]
    return "\n".join(lines + list(result.evidence[:40]))
