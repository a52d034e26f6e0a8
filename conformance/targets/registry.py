"""Turning a ``--target`` argument into a Target."""

from __future__ import annotations

from pathlib import Path

from conformance.errors import UsageError
from conformance.targets.base import Target
from conformance.targets.external import ExternalTarget
from conformance.targets.mutants import MUTANTS
from conformance.targets.reference import REFERENCE, ReferenceTarget

__all__ = ["MUTANTS", "resolve_target"]


def resolve_target(spec: str) -> Target:
    """``reference``, ``mutant:NAME``, or the path of a target TOML file."""
    if spec == "reference":
        return ReferenceTarget(REFERENCE)
    if spec.startswith("mutant:"):
        name = spec.removeprefix("mutant:")
        if name not in MUTANTS:
            known = ", ".join(sorted(MUTANTS))
            raise UsageError(f"unknown mutant {name!r}; known: {known}")
        return ReferenceTarget(MUTANTS[name])
    path = Path(spec)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise UsageError(f"target file {spec!r} does not exist")
        return ExternalTarget(path)
    raise UsageError(f"unknown target {spec!r}: use reference, mutant:NAME or a target TOML file")
