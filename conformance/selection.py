"""Choosing scenarios: ``--select``/``--exclude`` globs on ids, ``--rfc``, ``--level``, ``--role``.

Every filter given must hold (AND across kinds); the values of one kind are alternatives (OR):
``--rfc 8461 --rfc 8460 --level must`` is the MUST scenarios of either RFC. ``--exclude`` wins
over ``--select``. A level names its family: ``MUST`` also takes the ``MUST NOT`` scenarios
(both are absolute requirements in BCP 14 terms), ``SHOULD`` takes ``SHOULD NOT``; ``MUST NOT``
and ``SHOULD NOT`` take only themselves. Values are case-insensitive; ``must-not`` and
``must_not`` are accepted for ``MUST NOT`` so no quoting is needed on a command line.
"""

from __future__ import annotations

import argparse
import fnmatch
from dataclasses import dataclass

from conformance.catalog.loader import Catalog, CatalogEntry
from conformance.catalog.model import Role
from conformance.catalog.requirements import Level
from conformance.errors import UsageError

LEVEL_CHOICES = ", ".join(level.value for level in Level)
ROLE_CHOICES = ", ".join(role.value for role in Role)

# A family name takes its negative form too (see the module docstring).
_FAMILY = {Level.MUST: {Level.MUST, Level.MUST_NOT}, Level.SHOULD: {Level.SHOULD, Level.SHOULD_NOT}}


def parse_level(text: str) -> Level:
    """argparse ``type=``: a BCP 14 level, case-insensitive."""
    normal = " ".join(text.replace("-", " ").replace("_", " ").split()).upper()
    try:
        return Level(normal)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a level; choose from {LEVEL_CHOICES}") from None


def parse_role(text: str) -> Role:
    """argparse ``type=``: an SUT role, as the catalog spells it (case-insensitive)."""
    try:
        return Role(text.strip().lower().replace("_", "-"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a role; choose from {ROLE_CHOICES}") from None


@dataclass(frozen=True, slots=True)
class Selection:
    select: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    rfcs: tuple[int, ...] = ()
    levels: tuple[Level, ...] = ()
    roles: tuple[Role, ...] = ()

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Selection:
        return cls(
            select=tuple(args.select),
            exclude=tuple(args.exclude),
            rfcs=tuple(args.rfc),
            levels=tuple(args.level),
            roles=tuple(args.role),
        )

    def _levels(self) -> set[Level]:
        return {member for level in self.levels for member in _FAMILY.get(level, {level})}

    def matches(self, entry: CatalogEntry) -> bool:
        if self.select and not any(fnmatch.fnmatchcase(entry.id, p) for p in self.select):
            return False
        if any(fnmatch.fnmatchcase(entry.id, p) for p in self.exclude):
            return False
        if self.rfcs and entry.rfc not in self.rfcs:
            return False
        if self.levels and entry.level not in self._levels():
            return False
        return not self.roles or entry.scenario.role in self.roles

    def apply(self, catalog: Catalog) -> list[CatalogEntry]:
        """The matching entries, in catalog order. An RFC the catalog has no scenario for is a
        usage error (a typo would otherwise select nothing, silently)."""
        known = sorted({e.rfc for e in catalog.entries})
        unknown = [rfc for rfc in self.rfcs if rfc not in known]
        if unknown:
            raise UsageError(
                f"--rfc {unknown[0]}: no scenario checks RFC {unknown[0]}; "
                f"choose from {', '.join(str(rfc) for rfc in known)}"
            )
        return [e for e in catalog.entries if self.matches(e)]

    def describe(self) -> tuple[str, ...]:
        """The selection as recorded in a report: the --select globs, then the other filters
        as ``option:value``."""
        return (
            *self.select,
            *(f"exclude:{p}" for p in self.exclude),
            *(f"rfc:{rfc}" for rfc in self.rfcs),
            *(f"level:{level.value}" for level in self.levels),
            *(f"role:{role.value}" for role in self.roles),
        )

    def __str__(self) -> str:
        parts = [
            *(f"--select {p}" for p in self.select),
            *(f"--exclude {p}" for p in self.exclude),
            *(f"--rfc {rfc}" for rfc in self.rfcs),
            *(f"--level {level.value!r}" for level in self.levels),
            *(f"--role {role.value}" for role in self.roles),
        ]
        return " ".join(parts) or "(everything)"


def add_selection_arguments(parser: argparse.ArgumentParser) -> None:
    """The selection options ``mailtls list`` and ``mailtls run`` share."""
    group = parser.add_argument_group("selecting scenarios (repeat an option for alternatives; all kinds must hold)")
    group.add_argument(
        "--select", action="append", default=[], metavar="GLOB", help="only scenarios whose id matches GLOB"
    )
    group.add_argument("--exclude", action="append", default=[], metavar="GLOB", help="leave out ids matching GLOB")
    group.add_argument("--rfc", type=int, action="append", default=[], metavar="N", help="only scenarios of RFC N")
    group.add_argument(
        "--level",
        type=parse_level,
        action="append",
        default=[],
        metavar="LEVEL",
        help=f"only scenarios of this level ({LEVEL_CHOICES}; case-insensitive; MUST includes MUST NOT)",
    )
    group.add_argument(
        "--role",
        type=parse_role,
        action="append",
        default=[],
        metavar="ROLE",
        help=f"only scenarios where the SUT plays ROLE ({ROLE_CHOICES})",
    )
