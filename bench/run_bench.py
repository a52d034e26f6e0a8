"""Benchmark: prints figures, asserts nothing (timings on a shared machine are not a test).

World start-up time, full-catalog wall time against the reference at -j 1 and -j 2,
scenarios per second, per-scenario median and worst, the time to render the report files
(results.json, junit.xml, report.html) of that run and their sizes, and the peak RSS.
Run: ``tox -e bench`` or ``python bench/run_bench.py [--rounds N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import resource
import statistics
import time

from conformance.catalog.loader import load_catalog
from conformance.catalog.requirements import load_inventory
from conformance.report.writers import RunInfo, html_document, junit_document, results_document
from conformance.runner import run_all
from conformance.targets.reference import REFERENCE, ReferenceTarget
from conformance.verdict import ScenarioResult
from conformance.world.world import World


async def world_startup(rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        world = World()
        await world.start()
        times.append(time.perf_counter() - started)
        await world.stop()
    return times


async def catalog_run(jobs: int) -> tuple[float, list[ScenarioResult]]:
    inventory = load_inventory()
    entries = list(load_catalog(inventory).entries)
    async with World() as world:
        target = ReferenceTarget(REFERENCE)
        await target.start(world)
        try:
            started = time.perf_counter()
            results = await run_all(entries, world, target, inventory, jobs=jobs)
            return time.perf_counter() - started, results
        finally:
            await target.stop()


def report_figures(results: list[ScenarioResult]) -> None:
    """Rendering the last run's three report files, and their sizes."""
    run = RunInfo(
        target="reference", target_description="", target_version="", started_at="2026-01-01T00:00:00Z", duration_s=0.0
    )
    inventory = load_inventory()
    timings: dict[str, tuple[float, int]] = {}
    started = time.perf_counter()
    document = json.dumps(results_document(run, results, inventory)).encode()
    timings["results.json"] = (time.perf_counter() - started, len(document))
    started = time.perf_counter()
    junit = junit_document(run, results)
    timings["junit.xml"] = (time.perf_counter() - started, len(junit))
    started = time.perf_counter()
    html = html_document(run, results, inventory).encode()
    timings["report.html"] = (time.perf_counter() - started, len(html))
    shown = ", ".join(f"{name} {1000 * t:.0f} ms ({size / 2**20:.2f} MiB)" for name, (t, size) in timings.items())
    print(f"report of {len(results)} scenarios: {shown}")


def main() -> None:
    # The reference MTA logs what an operator would want (a failed policy refresh); in a
    # benchmark that is noise between the figures, as in `mailtls run`.
    quiet = logging.getLogger("reference_impl")
    quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5, help="world start-ups to time")
    args = parser.parse_args()
    startups = asyncio.run(world_startup(args.rounds))
    print(
        f"world start-up: median {1000 * statistics.median(startups):.1f} ms, "
        f"worst {1000 * max(startups):.1f} ms over {len(startups)} rounds"
    )
    results: list[ScenarioResult] = []
    for jobs in (1, 2):
        wall, results = asyncio.run(catalog_run(jobs))
        durations = sorted(r.duration_s for r in results)
        verdicts = {v: sum(1 for r in results if r.verdict.value == v) for v in {r.verdict.value for r in results}}
        print(
            f"catalog -j {jobs}: {len(results)} scenarios in {wall:.3f} s "
            f"({len(results) / wall:.1f} scenarios/s); per scenario median "
            f"{1000 * statistics.median(durations):.1f} ms, worst {1000 * durations[-1]:.1f} ms; verdicts {verdicts}"
        )
    report_figures(results)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"peak RSS: {peak_kib / 1024:.1f} MiB")


if __name__ == "__main__":
    main()
