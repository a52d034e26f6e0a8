"""Choosing scenarios: --select/--exclude globs, --rfc, --level, --role, and their errors."""

from __future__ import annotations

import argparse
import json

import pytest

from conformance.catalog.loader import Catalog, load_catalog
from conformance.catalog.model import Role
from conformance.catalog.requirements import Level, load_inventory
from conformance.cli import main
from conformance.errors import UsageError
from conformance.selection import Selection, parse_level, parse_role


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(load_inventory())


def ids(catalog: Catalog, selection: Selection) -> list[str]:
    return [e.id for e in selection.apply(catalog)]


def test_no_filter_is_the_whole_catalog_in_order(catalog: Catalog) -> None:
    assert ids(catalog, Selection()) == [e.id for e in catalog.entries]


def test_select_and_exclude_globs(catalog: Catalog) -> None:
    selected = ids(catalog, Selection(select=("requiretls/*",)))
    assert selected and all(i.startswith("requiretls/") for i in selected)
    kept = ids(catalog, Selection(select=("requiretls/*",), exclude=("requiretls/relay/*",)))
    assert kept == [i for i in selected if not i.startswith("requiretls/relay/")]
    assert len(kept) < len(selected)
    # --exclude alone takes from the whole catalog
    assert not any(i.startswith("smtp/") for i in ids(catalog, Selection(exclude=("smtp/*",))))


def test_kinds_combine_with_and_values_with_or(catalog: Catalog) -> None:
    both = Selection(rfcs=(8461, 8460))
    assert {e.rfc for e in both.apply(catalog)} == {8461, 8460}
    narrow = Selection(rfcs=(8461,), roles=(Role.SENDING_MTA,), levels=(Level.MUST,))
    entries = narrow.apply(catalog)
    assert entries
    for e in entries:
        assert e.rfc == 8461 and e.scenario.role is Role.SENDING_MTA and e.level in (Level.MUST, Level.MUST_NOT)


def test_a_level_takes_its_negative_form_too(catalog: Catalog) -> None:
    must = {e.level for e in Selection(levels=(Level.MUST,)).apply(catalog)}
    assert must <= {Level.MUST, Level.MUST_NOT} and Level.MUST in must
    must_not = Selection(levels=(Level.MUST_NOT,)).apply(catalog)
    assert all(e.level is Level.MUST_NOT for e in must_not)
    should = {e.level for e in Selection(levels=(Level.SHOULD,)).apply(catalog)}
    assert Level.SHOULD in should and should <= {Level.SHOULD, Level.SHOULD_NOT}


def test_an_rfc_without_scenarios_is_usage_naming_the_choices(catalog: Catalog) -> None:
    with pytest.raises(UsageError, match=r"--rfc 1234: .*choose from .*8461"):
        Selection(rfcs=(1234,)).apply(catalog)


@pytest.mark.parametrize(
    ("text", "level"),
    [("must", Level.MUST), ("Must-Not", Level.MUST_NOT), ("should_not", Level.SHOULD_NOT), ("MAY", Level.MAY)],
)
def test_levels_are_case_insensitive(text: str, level: Level) -> None:
    assert parse_level(text) is level


def test_bad_level_and_role_name_the_choices() -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="MUST, MUST NOT, SHOULD, SHOULD NOT, MAY"):
        parse_level("REQUIRED-ish")
    with pytest.raises(argparse.ArgumentTypeError, match="sending-mta, receiving-mta"):
        parse_role("client")
    assert parse_role("Receiving_MTA") is Role.RECEIVING_MTA


def test_describe_records_every_filter() -> None:
    selection = Selection(
        select=("a/*",), exclude=("a/b",), rfcs=(8461,), levels=(Level.MUST_NOT,), roles=(Role.POLICY_DOMAIN,)
    )
    assert selection.describe() == ("a/*", "exclude:a/b", "rfc:8461", "level:MUST NOT", "role:policy-domain")
    assert str(Selection()) == "(everything)"


def test_list_takes_the_selection_options(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["list", "--json", "--rfc", "8689", "--level", "must", "--role", "receiving-mta", "--exclude", "*/tls-*"]
    assert main(argv) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows
    for row in rows:
        assert row["rfc"] == 8689 and row["level"] in ("MUST", "MUST NOT") and row["role"] == "receiving-mta"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["list", "--level", "sometimes"], "choose from MUST, MUST NOT, SHOULD, SHOULD NOT, MAY"),
        (["list", "--role", "mua"], "choose from sending-mta, receiving-mta, policy-domain, report-receiver"),
        (["list", "--rfc", "9999"], "--rfc 9999: no scenario checks RFC 9999; choose from"),
        (["list", "--rfc", "MTA-STS"], "--rfc: invalid int value"),
        (["run", "--role", "mua"], "choose from sending-mta"),
        (["run", "--select", "smtp/*", "--exclude", "smtp/*"], "no scenario matches --select smtp/* --exclude smtp/*"),
    ],
)
def test_bad_selection_exits_2_naming_what_to_fix(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err
