"""Errors of the runner. Every error a user can cause names where it came from."""

from __future__ import annotations

from pathlib import Path


class ConformanceError(Exception):
    """Base of every error the runner raises on purpose."""


class UsageError(ConformanceError):
    """Bad command line or bad combination of options (exit status 2)."""


class DataFileError(ConformanceError):
    """A scenario, requirement, target or expectations file is malformed.

    The message names the file, the line (when known), the field and the rule broken:
    ``scenarios/smtp/receiving.yaml:14: scenarios[2].world.mx[0].preference: must be >= 0``.
    """

    def __init__(self, path: Path, line: int | None, field: str, problem: str) -> None:
        self.path = path
        self.line = line
        self.field = field
        self.problem = problem
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {field}: {problem}")


class WorldError(ConformanceError):
    """The simulated world could not start or could not stage a scenario."""


class TargetError(ConformanceError):
    """The target (reference, mutant or external SUT) could not be set up."""
