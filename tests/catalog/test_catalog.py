"""The catalog lints itself: unique ids, known requirements, a mutant for every scenario,
known probes, and schema errors that name the file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.catalog.loader import load_catalog
from conformance.catalog.model import Probe
from conformance.catalog.requirements import load_inventory
from conformance.drivers.probes import PROBES
from conformance.errors import DataFileError
from conformance.targets.registry import MUTANTS

INVENTORY = load_inventory()
CATALOG = load_catalog(INVENTORY)


def test_the_catalog_is_not_empty() -> None:
    assert len(CATALOG.entries) >= 12


def test_ids_are_unique() -> None:
    ids = [e.id for e in CATALOG.entries]
    assert len(ids) == len(set(ids))


def test_every_cited_requirement_exists_and_is_observable() -> None:
    for entry in CATALOG.entries:
        for req in entry.scenario.requirements:
            assert INVENTORY.by_id[req].observable, f"{entry.id} cites unobservable {req}"


def test_every_scenario_names_a_known_mutant() -> None:
    for entry in CATALOG.entries:
        assert entry.scenario.mutants, entry.id
        for mutant in entry.scenario.mutants:
            assert mutant.name in MUTANTS, f"{entry.id}: unknown mutant {mutant.name}"


def test_every_mutant_is_caught_by_some_scenario() -> None:
    used = {m.name for e in CATALOG.entries for m in e.scenario.mutants}
    assert set(MUTANTS) - used == set()


def test_every_probe_exists() -> None:
    for entry in CATALOG.entries:
        if isinstance(entry.scenario.stimulus, Probe):
            assert entry.scenario.stimulus.probe in PROBES, entry.id


def test_both_directions_are_covered() -> None:
    roles = {e.scenario.role.value for e in CATALOG.entries}
    assert {"sending-mta", "receiving-mta"} <= roles


GOOD = """\
scenarios:
  - id: test/example/one
    title: "An example scenario"
    requirements: [rfc3207-6-server-opportunistic-option]
    role: receiving-mta
    stimulus: {kind: probe, probe: ehlo}
    expect:
      - {check: fact, fact: starttls_offered, equals: true}
    mutants: [no-starttls-offer]
"""


def load_text(tmp_path: Path, text: str) -> None:
    (tmp_path / "x.yaml").write_text(text, encoding="utf-8")
    load_catalog(INVENTORY, tmp_path)


def test_a_good_file_loads(tmp_path: Path) -> None:
    load_text(tmp_path, GOOD)


@pytest.mark.parametrize(
    ("broken", "line", "field"),
    [
        (GOOD.replace("role: receiving-mta", "role: bystander"), 5, "scenarios[0].role"),
        (
            GOOD.replace("    mutants: [no-starttls-offer]\n", "    mutants: []\n"),
            9,
            "scenarios[0].mutants",
        ),
        (GOOD.replace("equals: true", "equals: true, colour: red"), 8, "scenarios[0].expect[0]"),
        (
            GOOD.replace("rfc3207-6-server-opportunistic-option", "rfc9999-1-nothing"),
            4,
            "scenarios[0].requirements[0]",
        ),
        (GOOD.replace("kind: probe, probe: ehlo", "kind: send-message"), 2, "scenarios[0]"),
        (GOOD.replace("id: test/example/one", "id: Not An Id"), 2, "scenarios[0].id"),
    ],
)
def test_schema_errors_name_file_line_and_field(tmp_path: Path, broken: str, line: int, field: str) -> None:
    with pytest.raises(DataFileError) as err:
        load_text(tmp_path, broken)
    assert err.value.path == tmp_path / "x.yaml"
    assert err.value.field.startswith(field), err.value
    assert err.value.line == line, err.value


def test_duplicate_ids_across_files(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(GOOD, encoding="utf-8")
    (tmp_path / "b.yaml").write_text(GOOD, encoding="utf-8")
    with pytest.raises(DataFileError, match="duplicate scenario id"):
        load_catalog(INVENTORY, tmp_path)


async def test_every_world_stages_and_unstages() -> None:
    """Peer configs are valid beyond the schema: every DNS record parses, every certificate
    can be minted, every peer starts, and unstaging leaves nothing behind."""
    from conformance.world.world import World

    async with World() as world:
        for entry in CATALOG.entries:
            stage = await world.stage(entry.id, entry.scenario.world)
            assert stage.domain.endswith(".test")
            await world.unstage(stage)
            assert stage.domain not in world._stages


def test_rfc8461_observable_requirements_are_covered_or_explained() -> None:
    """Issue 3's bar: every observable RFC 8461 requirement has a scenario, or says why not."""
    cited = {r for e in CATALOG.entries for r in e.scenario.requirements}
    cited |= {c.requirement for e in CATALOG.entries for c in e.scenario.expect if c.requirement}
    cited |= {c.requirement for e in CATALOG.entries for p in e.scenario.then for c in p.expect if c.requirement}
    missing = [r.id for r in INVENTORY.for_rfc(8461) if r.observable and r.id not in cited and not r.gap]
    assert missing == []
