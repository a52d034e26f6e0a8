"""The requirement inventory stays true to the RFC texts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conformance.catalog.requirements import Level, load_inventory

RFC_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "rfcs"
_PAGE_BREAK = re.compile(r"\n[^\n]*\[Page \d+\]\n\f\n[^\n]*\n")


def _collapse(text: str) -> str:
    return " ".join(text.replace("\ufeff", "").split())


def rfc_text(rfc: int) -> str | None:
    path = RFC_DIR / f"rfc{rfc}.txt"
    return _collapse(path.read_text(encoding="utf-8")) if path.exists() else None


INVENTORY = load_inventory()


@pytest.mark.parametrize("rfc", INVENTORY.rfcs)
def test_every_quote_occurs_in_the_rfc(rfc: int) -> None:
    text = rfc_text(rfc)
    if text is None:
        pytest.skip(f"rfc{rfc}.txt is not in the RFC collection")
    missing = [r.id for r in INVENTORY.for_rfc(rfc) if _collapse(r.quote) not in text]
    assert missing == []


@pytest.mark.parametrize("rfc", INVENTORY.rfcs)
def test_every_quote_carries_its_level_keyword(rfc: int) -> None:
    synonyms = {
        Level.MUST: ("MUST", "REQUIRED", "SHALL"),
        Level.MUST_NOT: ("MUST NOT", "SHALL NOT"),
        Level.SHOULD: ("SHOULD", "RECOMMENDED"),
        Level.SHOULD_NOT: ("SHOULD NOT", "NOT RECOMMENDED"),
        Level.MAY: ("MAY", "OPTIONAL"),
    }
    wrong = [r.id for r in INVENTORY.for_rfc(rfc) if not r.implied and not any(k in r.quote for k in synonyms[r.level])]
    assert wrong == []


def test_the_six_rfcs_of_the_mission_are_inventoried() -> None:
    assert {8461, 8460, 8689, 8314, 7817, 7590} <= set(INVENTORY.rfcs)


def test_ids_name_their_rfc_and_section() -> None:
    for req in INVENTORY.by_id.values():
        assert req.id.startswith(f"rfc{req.rfc}-{req.section.lower()}-"), req.id
