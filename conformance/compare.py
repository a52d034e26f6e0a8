"""Comparing two runs: ``mailtls compare OLD.json NEW.json``.

Reads two ``results.json`` files and sorts every scenario id into one bucket:

- **regression**: the verdict got worse;
- **fix**: the verdict got better;
- **changed**: a different verdict of the same severity (PASS <-> N/A, FAIL <-> ERROR);
- **new** / **removed**: the id is only in NEW / only in OLD (the catalog changed, or the
  selection did); listed with their verdict, never counted as regressions;
- unchanged: counted only.

Severity, the rule for worse and better, is a tier, not the per-check ranking that combines
outcomes inside a scenario (``conformance.verdict.worst``):

====  ============  ===================================================================
tier  verdicts      why
====  ============  ===================================================================
0     PASS, N/A     nothing is wrong: N/A means the SUT does not play the role or claim
                    the feature. PASS -> N/A is listed as a change (a feature dropped, a
                    role no longer claimed: worth a look) but fails nothing.
1     WARN          a SHOULD not followed.
2     FAIL, ERROR   what makes ``mailtls run`` exit 1. FAIL -> ERROR is a change, not a
                    regression: the run could not decide, which says nothing new about
                    the SUT; ERROR -> FAIL likewise.
====  ============  ===================================================================

So PASS -> WARN, N/A -> FAIL, WARN -> ERROR are regressions; FAIL -> WARN, ERROR -> PASS are
fixes. Exit status: 1 when there is any regression, 0 otherwise, 2 when a file is unreadable or
malformed (the message names the file and what is wrong).

Both files are read with :func:`conformance.report.results.load_results`, so each must be a
``results.json`` of ``schema_version`` 1 that follows the shipped JSON Schema, as every file
``mailtls run --report`` writes does; a file without ``schema_version`` (or of another
version) is refused, the message naming the file and the JSON path. Of the validated document
only ``results[].id`` and ``results[].verdict`` are compared (an id listed twice is refused:
the schema does not catch that), and ``run.target`` / ``run.started_at`` label the heading.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance.errors import DataFileError
from conformance.report.results import json_path, load_results
from conformance.verdict import Verdict

TIER = {Verdict.PASS: 0, Verdict.NA: 0, Verdict.WARN: 1, Verdict.FAIL: 2, Verdict.ERROR: 2}


@dataclass(frozen=True, slots=True)
class ResultsFile:
    path: Path
    verdicts: dict[str, Verdict]  # id -> verdict, in file order
    target: str = ""
    started_at: str = ""

    @property
    def label(self) -> str:
        about = ", ".join(x for x in (self.target, self.started_at) if x)
        return f"{self.path} ({about})" if about else str(self.path)


@dataclass(frozen=True, slots=True)
class Change:
    id: str
    old: Verdict | None
    new: Verdict | None

    def as_json(self) -> dict[str, str | None]:
        return {
            "id": self.id,
            "old": self.old.value if self.old is not None else None,
            "new": self.new.value if self.new is not None else None,
        }


@dataclass(frozen=True, slots=True)
class Comparison:
    old: ResultsFile
    new: ResultsFile
    regressions: list[Change] = field(default_factory=list)
    fixes: list[Change] = field(default_factory=list)
    changed: list[Change] = field(default_factory=list)
    added: list[Change] = field(default_factory=list)
    removed: list[Change] = field(default_factory=list)
    unchanged: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "old": str(self.old.path),
            "new": str(self.new.path),
            "regressions": [c.as_json() for c in self.regressions],
            "fixes": [c.as_json() for c in self.fixes],
            "changed": [c.as_json() for c in self.changed],
            "new_scenarios": [c.as_json() for c in self.added],
            "removed_scenarios": [c.as_json() for c in self.removed],
            "unchanged": self.unchanged,
        }

    def text(self) -> str:
        lines = [f"old: {self.old.label}", f"new: {self.new.label}"]
        sections = [
            ("regressions", self.regressions),
            ("fixes", self.fixes),
            ("other changes", self.changed),
            ("new scenarios", self.added),
            ("removed scenarios", self.removed),
        ]
        width = max((len(c.id) for _, changes in sections for c in changes), default=0)
        for title, changes in sections:
            if not changes:
                continue
            lines.append(f"{title} ({len(changes)}):")
            for c in changes:
                before = c.old.value if c.old is not None else "-"
                after = c.new.value if c.new is not None else "-"
                lines.append(f"  {c.id:{width}}  {before:>5} -> {after}")
        lines.append(
            f"{len(self.regressions)} regression(s), {len(self.fixes)} fix(es), {len(self.changed)} other change(s), "
            f"{len(self.added)} new, {len(self.removed)} removed, {self.unchanged} unchanged"
        )
        return "\n".join(lines)


def read_results(path: Path) -> ResultsFile:
    """Load and validate a results file (:func:`load_results`), then keep what the comparison needs."""
    document = load_results(path)
    verdicts: dict[str, Verdict] = {}
    for index, row in enumerate(document["results"]):
        scenario_id: str = row["id"]
        if scenario_id in verdicts:
            raise DataFileError(path, None, json_path(["results", index, "id"]), f"{scenario_id!r} appears twice")
        verdicts[scenario_id] = Verdict(row["verdict"])
    run = document["run"]
    return ResultsFile(path=path, verdicts=verdicts, target=run["target"], started_at=run["started_at"])


def compare(old: ResultsFile, new: ResultsFile) -> Comparison:
    buckets: dict[str, list[Change]] = {"regressions": [], "fixes": [], "changed": [], "added": []}
    unchanged = 0
    for scenario_id, after in new.verdicts.items():
        before = old.verdicts.get(scenario_id)
        if before is after:
            unchanged += 1
            continue
        if before is None:
            bucket = "added"
        elif TIER[after] != TIER[before]:
            bucket = "regressions" if TIER[after] > TIER[before] else "fixes"
        else:
            bucket = "changed"
        buckets[bucket].append(Change(scenario_id, before, after))
    removed = [Change(i, v, None) for i, v in old.verdicts.items() if i not in new.verdicts]
    return Comparison(
        old=old,
        new=new,
        regressions=buckets["regressions"],
        fixes=buckets["fixes"],
        changed=buckets["changed"],
        added=buckets["added"],
        removed=removed,
        unchanged=unchanged,
    )
