"""The requirement inventory: one entry per normative statement of the RFCs the suite covers.

The inventory is data (``conformance/inventory/rfcNNNN.yaml``), written by reading the RFC
texts; each entry quotes the sentence it stands for, and a test checks every quote against
the RFC text, so an entry cannot drift from the standard. Scenarios cite entries by id.
"""

from __future__ import annotations

from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from conformance.catalog.source import SourceDocument, dotted, load_yaml
from conformance.errors import DataFileError


class Level(StrEnum):
    """BCP 14 levels, normalised (REQUIRED/SHALL -> MUST, RECOMMENDED -> SHOULD, ...)."""

    MUST = "MUST"
    MUST_NOT = "MUST NOT"
    SHOULD = "SHOULD"
    SHOULD_NOT = "SHOULD NOT"
    MAY = "MAY"

    @property
    def mandatory(self) -> bool:
        """A broken MUST/MUST NOT is a FAIL; a SHOULD not followed is a WARN."""
        return self in (Level.MUST, Level.MUST_NOT)


Actor = Literal[
    "sending-mta",
    "receiving-mta",
    "relaying-mta",
    "policy-domain",
    "policy-host",
    "report-generator",
    "report-receiver",
    "dns-publisher",
    "mua",
    "submission-server",
    "imap-server",
    "pop-server",
    "mail-access-server",
    "xmpp-client",
    "xmpp-server",
    "xmpp-entity",
    "tls-implementation",
    "certificate-issuer",
    "operator",
    "any",
]


class Requirement(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^rfc[0-9]+-[0-9a-z][0-9.]*-[a-z0-9]+(-[a-z0-9]+)*$")
    section: str = Field(pattern=r"^[0-9A-Z]+(\.[0-9]+)*$")
    level: Level
    actor: Actor
    summary: str = Field(min_length=5, max_length=160)
    quote: str = Field(min_length=5, max_length=400)
    observable: bool
    how: str | None = None
    reason: str | None = None
    # For an observable requirement no scenario covers yet: why (shown by `mailtls requirements`).
    gap: str | None = None
    # A definition without a BCP 14 keyword whose level follows from it (e.g. what a report
    # field contains, RFC 8460 section 4.4): why the level holds. The quote then has no keyword.
    implied: str | None = None
    rfc: int = 0  # filled in from the file

    @model_validator(mode="after")
    def _explained(self) -> Requirement:
        if self.observable and not self.how:
            raise ValueError("an observable requirement needs `how` (how a scenario observes it)")
        if not self.observable and not self.reason:
            raise ValueError("a requirement that is not observable needs `reason`")
        return self


class InventoryFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    rfc: int = Field(gt=0)
    title: str
    requirements: tuple[Requirement, ...]


class Inventory:
    """All requirements, by id, and per RFC."""

    def __init__(self, files: list[InventoryFile]) -> None:
        self.titles: dict[int, str] = {f.rfc: f.title for f in files}
        self.by_id: dict[str, Requirement] = {}
        for f in files:
            for req in f.requirements:
                self.by_id[req.id] = req.model_copy(update={"rfc": f.rfc})

    def for_rfc(self, rfc: int) -> list[Requirement]:
        return [r for r in self.by_id.values() if r.rfc == rfc]

    @property
    def rfcs(self) -> list[int]:
        return sorted(self.titles)


def default_inventory_dir() -> Path:
    return Path(str(resources.files("conformance") / "inventory"))


def validation_error(doc: SourceDocument, exc: ValidationError, prefix: tuple[str | int, ...] = ()) -> DataFileError:
    """The first schema error of ``exc`` as a DataFileError naming file, line and field."""
    err = exc.errors()[0]
    loc = (*prefix, *(p for p in err["loc"] if isinstance(p, (str, int))))
    # pydantic adds the union member name (e.g. "function-after[...]") into the location;
    # keep only the parts that exist in the document for the line lookup.
    return DataFileError(doc.path, doc.line_of(loc), dotted(loc), err["msg"])


def load_inventory_file(path: Path) -> InventoryFile:
    doc = load_yaml(path)
    try:
        parsed = InventoryFile.model_validate(doc.data)
    except ValidationError as exc:
        raise validation_error(doc, exc) from exc
    expected = f"rfc{parsed.rfc}-"
    seen: set[str] = set()
    for index, req in enumerate(parsed.requirements):
        line = doc.line_of(("requirements", index, "id"))
        if not req.id.startswith(expected):
            raise DataFileError(path, line, f"requirements[{index}].id", f"must start with {expected!r}")
        if req.id in seen:
            raise DataFileError(path, line, f"requirements[{index}].id", f"duplicate id {req.id!r}")
        seen.add(req.id)
    return parsed


def load_inventory(directory: Path | None = None) -> Inventory:
    directory = directory or default_inventory_dir()
    files = [load_inventory_file(p) for p in sorted(directory.glob("rfc*.yaml"))]
    inventory = Inventory(files)
    if len(inventory.by_id) != sum(len(f.requirements) for f in files):
        raise DataFileError(directory, None, "requirements", "the same id appears in two files")
    return inventory
