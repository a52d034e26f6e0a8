"""Loading the catalog: every scenario file under ``scenarios/``, validated and cross-checked.

Schema errors name the file, the line and the field. Cross-references are checked at load
too (requirement ids exist in the inventory, ids are unique across files), so a run never
starts on a catalog it would trip over halfway.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from pydantic import ValidationError

from conformance.catalog.model import CatalogFile, Scenario
from conformance.catalog.requirements import Inventory, Level, Requirement, validation_error
from conformance.catalog.source import load_yaml
from conformance.errors import DataFileError


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    """A scenario with where it came from and its primary requirement resolved."""

    scenario: Scenario
    path: Path
    line: int
    primary: Requirement

    @property
    def id(self) -> str:
        return self.scenario.id

    @property
    def rfc(self) -> int:
        return self.primary.rfc

    @property
    def section(self) -> str:
        return self.primary.section

    @property
    def level(self) -> Level:
        return self.primary.level


@dataclass(frozen=True, slots=True)
class Catalog:
    entries: tuple[CatalogEntry, ...]

    def select(self, patterns: list[str]) -> list[CatalogEntry]:
        """Entries whose id matches any glob (all when no pattern is given), catalog order."""
        if not patterns:
            return list(self.entries)
        return [e for e in self.entries if any(fnmatch.fnmatchcase(e.id, p) for p in patterns)]

    def scenarios_by_requirement(self) -> dict[str, list[str]]:
        """Requirement id -> the ids of the scenarios that cite it (their own requirements and
        those their checks cite, in every phase), catalog order."""
        covered: dict[str, list[str]] = {}
        for entry in self.entries:
            checks = [*entry.scenario.expect, *(c for phase in entry.scenario.then for c in phase.expect)]
            cited = dict.fromkeys([*entry.scenario.requirements, *(c.requirement for c in checks if c.requirement)])
            for req in cited:
                covered.setdefault(req, []).append(entry.id)
        return covered

    def by_id(self, scenario_id: str) -> CatalogEntry:
        for entry in self.entries:
            if entry.id == scenario_id:
                return entry
        raise KeyError(scenario_id)


def default_catalog_dir() -> Path:
    return Path(str(resources.files("scenarios")))


def load_catalog_file(path: Path, inventory: Inventory) -> list[CatalogEntry]:
    doc = load_yaml(path)
    try:
        parsed = CatalogFile.model_validate(doc.data)
    except ValidationError as exc:
        raise validation_error(doc, exc) from exc
    entries = []
    for index, scenario in enumerate(parsed.scenarios):
        at = ("scenarios", index)
        for r_index, req_id in enumerate(scenario.requirements):
            if req_id not in inventory.by_id:
                loc = (*at, "requirements", r_index)
                raise DataFileError(
                    path,
                    doc.line_of(loc),
                    f"scenarios[{index}].requirements[{r_index}]",
                    f"unknown requirement {req_id!r} (not in the inventory)",
                )
        for e_index, check in enumerate(scenario.expect):
            if check.requirement is not None and check.requirement not in inventory.by_id:
                check_loc = (*at, "expect", e_index, "requirement")
                raise DataFileError(
                    path,
                    doc.line_of(check_loc),
                    f"scenarios[{index}].expect[{e_index}].requirement",
                    f"unknown requirement {check.requirement!r}",
                )
        entries.append(
            CatalogEntry(
                scenario=scenario,
                path=path,
                line=doc.line_of(at) or 1,
                primary=inventory.by_id[scenario.requirements[0]],
            )
        )
    return entries


def load_catalog(inventory: Inventory, directory: Path | None = None) -> Catalog:
    directory = directory or default_catalog_dir()
    if not directory.is_dir():
        raise DataFileError(directory, None, "catalog", "not a directory")
    entries: list[CatalogEntry] = []
    first_seen: dict[str, CatalogEntry] = {}
    for path in sorted(directory.rglob("*.yaml")):
        for entry in load_catalog_file(path, inventory):
            if entry.id in first_seen:
                other = first_seen[entry.id]
                raise DataFileError(
                    path,
                    entry.line,
                    "id",
                    f"duplicate scenario id {entry.id!r} (first at {other.path}:{other.line})",
                )
            first_seen[entry.id] = entry
            entries.append(entry)
    return Catalog(entries=tuple(entries))
