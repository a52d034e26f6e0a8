"""Verdicts and results: what a scenario run decided, and the evidence that decided it."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Verdict(StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"  # a MUST (or MUST NOT) broken
    WARN = "WARN"  # a SHOULD (or SHOULD NOT) not followed
    NA = "N/A"  # the SUT does not claim the feature or role
    ERROR = "ERROR"  # the run could not decide: setup problem, timeout, crash

    @property
    def bad(self) -> bool:
        """Verdicts that make ``mailtls run`` exit 1."""
        return self in (Verdict.FAIL, Verdict.ERROR)


# Combining the outcomes of one scenario's checks: the worst one wins.
_RANK = {Verdict.PASS: 0, Verdict.NA: 1, Verdict.WARN: 2, Verdict.ERROR: 3, Verdict.FAIL: 4}


def worst(verdicts: list[Verdict]) -> Verdict:
    return max(verdicts, key=_RANK.__getitem__) if verdicts else Verdict.PASS


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    """The verdict of one expectation of a scenario."""

    check: str
    requirement: str
    level: str
    verdict: Verdict
    detail: str  # one line: what was expected and what was seen
    evidence: tuple[str, ...] = ()  # transcript lines, queries, requests that decided it


@dataclass(frozen=True, slots=True)
class ScenarioResult:
    id: str
    title: str
    rfc: int
    section: str
    level: str
    role: str
    requirements: tuple[str, ...]
    verdict: Verdict
    duration_s: float
    outcomes: tuple[CheckOutcome, ...] = ()
    evidence: tuple[str, ...] = ()  # the scenario's whole story: sessions, queries, actions
    reason: str = ""  # for N/A and ERROR: why
    started_at: float = 0.0
    extra: dict[str, str] = field(default_factory=dict)
    # N/A because the target file does not declare the role or claim the feature: a fact
    # about the target, not a deviation, so an expected-results file need not list it.
    not_claimed: bool = False
    # Set when the run compares against an expected-results file (``--expect``).
    expected: Verdict | None = None
    expected_reason: str = ""
    # From the catalog entry, for the report: the world the scenario stages (one line each),
    # one line per expectation, and every requirement it tests (its own and its checks').
    setup: tuple[str, ...] = ()
    expected_behaviour: tuple[str, ...] = ()
    covers: tuple[str, ...] = ()

    @property
    def unexpected(self) -> bool:
        return self.expected is not None and self.verdict is not self.expected
