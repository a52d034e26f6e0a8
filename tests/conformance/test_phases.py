"""Multi-phase scenarios: the world changes between messages, each phase judged on its own."""

from __future__ import annotations

import asyncio
from pathlib import Path

from conformance.catalog.loader import load_catalog
from conformance.catalog.requirements import load_inventory
from conformance.runner import run_all
from conformance.targets.reference import REFERENCE, ReferenceTarget
from conformance.verdict import Verdict
from conformance.world.world import World

INVENTORY = load_inventory()

SCENARIO = """\
scenarios:
  - id: test/phases/mx-moves
    title: "The MX record changes between two messages"
    requirements: [rfc5321-5.1-mx-preference-sort]
    role: sending-mta
    world:
      mx:
        - {name: "mx1.{domain}", preference: 10}
        - {name: "mx2.{domain}", preference: 10, publish_mx: false}
    stimulus: {kind: send-message}
    expect:
      - {check: delivered, host: "mx1.{domain}"}
      - {check: queried, name: "{domain}", type: MX}
    then:
      - title: "MX now names mx2"
        world:
          dns:
            set:
              - {name: "{domain}", type: MX, value: "10 mx2.{domain}"}
        stimulus: {kind: send-message}
        expect:
          - {check: delivered, host: "mx2.{domain}"}
          - {check: not-fetched, host: "mx1.{domain}"}
    mutants: [mx-reverse-order]
"""


def test_each_phase_sees_only_its_own_traffic(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(SCENARIO, encoding="utf-8")
    entries = list(load_catalog(INVENTORY, tmp_path).entries)

    async def main() -> Verdict:
        async with World() as world:
            target = ReferenceTarget(REFERENCE)
            await target.start(world)
            try:
                [result] = await run_all(entries, world, target, INVENTORY)
            finally:
                await target.stop()
        assert [o.check for o in result.outcomes] == [
            "phase 1: delivered",
            "phase 1: queried",
            "phase 2: delivered",
            "phase 2: not-fetched",
        ], result
        assert "--- phase 2: MX now names mx2" in result.evidence
        return result.verdict

    assert asyncio.run(main()) is Verdict.PASS
