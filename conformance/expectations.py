"""Expected-results files: the verdicts a known implementation gives where it deviates.

A real SUT is rarely perfect. Its expected-results file lists, per scenario, the verdict it
is known to give when that verdict is not PASS, and why. A run with ``--expect FILE`` then
fails only on surprises, in either direction: a listed deviation that is now a PASS fails too,
so the file cannot silently go stale (the model is tlsfuzzer's and WPT's expectation files).

Example::

    target: postfix
    expectations:
      - id: smtp/send/starttls-stripped-recorded
        verdict: "N/A"
        reason: "Postfix does not expose its TLS session records to the suite."

``mailtls run --write-expect FILE`` writes such a file from a run, with the placeholder reason
``"TODO: say why"`` for every entry; the loader refuses a reason that starts with ``TODO``, so
a baseline cannot be adopted without someone writing down why each deviation is acceptable.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from conformance.catalog.requirements import validation_error
from conformance.catalog.source import load_yaml
from conformance.errors import DataFileError
from conformance.verdict import ScenarioResult, Verdict


class _Expectation(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1)
    verdict: Verdict
    reason: str = Field(min_length=5)


class _ExpectationFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    target: str = Field(min_length=1)
    expectations: tuple[_Expectation, ...] = ()


@dataclass(frozen=True, slots=True)
class Expectations:
    path: Path
    target: str
    verdicts: dict[str, tuple[Verdict, str]]  # scenario id -> (verdict, reason)

    def expected(self, result: ScenarioResult) -> Verdict:
        """The listed verdict; else PASS, or N/A when the target file itself rules the
        scenario out (role not played, feature not claimed)."""
        if result.id in self.verdicts:
            return self.verdicts[result.id][0]
        return Verdict.NA if result.not_claimed else Verdict.PASS

    def annotate(self, result: ScenarioResult) -> ScenarioResult:
        reason = self.verdicts.get(result.id, (None, ""))[1]
        return dataclasses.replace(result, expected=self.expected(result), expected_reason=reason)


def load_expectations(path: Path, known_ids: set[str]) -> Expectations:
    doc = load_yaml(path)
    try:
        parsed = _ExpectationFile.model_validate(doc.data)
    except ValidationError as exc:
        raise validation_error(doc, exc) from exc
    verdicts: dict[str, tuple[Verdict, str]] = {}
    for index, item in enumerate(parsed.expectations):
        line = doc.line_of(("expectations", index, "id"))
        if item.id not in known_ids:
            raise DataFileError(path, line, f"expectations[{index}].id", f"no scenario {item.id!r} in the catalog")
        if item.id in verdicts:
            raise DataFileError(path, line, f"expectations[{index}].id", f"{item.id!r} listed twice")
        if item.verdict is Verdict.PASS:
            raise DataFileError(
                path,
                line,
                f"expectations[{index}].verdict",
                "list only deviations; PASS is what every unlisted scenario is expected to give",
            )
        if item.reason.strip().upper().startswith("TODO"):
            raise DataFileError(
                path,
                doc.line_of(("expectations", index, "reason")),
                f"expectations[{index}].reason",
                f"{item.reason!r} is a placeholder: write why {parsed.target} gives {item.verdict.value} "
                f"for {item.id} (or fix the target and remove the entry)",
            )
        verdicts[item.id] = (item.verdict, item.reason)
    return Expectations(path=path, target=parsed.target, verdicts=verdicts)


PLACEHOLDER_REASON = "TODO: say why"


def expectations_yaml(target: str, results: list[ScenarioResult], *, header: str = "") -> str:
    """An expected-results file listing every verdict of ``results`` other than PASS.

    Left out: N/A that the target file itself decides (role not played, feature not claimed),
    which need not be listed. A reason carried by the result (a run with ``--expect`` whose
    file already listed the same verdict) is kept; every other entry gets
    :data:`PLACEHOLDER_REASON`, which :func:`load_expectations` refuses until it is replaced.
    """
    entries = []
    for result in results:
        if result.verdict is Verdict.PASS or (result.verdict is Verdict.NA and result.not_claimed):
            continue
        known = result.expected is result.verdict and result.expected_reason
        entries.append(
            {
                "id": result.id,
                "verdict": result.verdict.value,
                "reason": result.expected_reason if known else PLACEHOLDER_REASON,
            }
        )
    body = yaml.safe_dump({"target": target, "expectations": entries}, sort_keys=False, allow_unicode=True, width=1000)
    comments = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    return comments + body
