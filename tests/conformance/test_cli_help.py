"""Every ``mailtls`` command and subcommand explains itself, with at least one example."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from conformance.cli import build_parser, main


def walk(parser: argparse.ArgumentParser, path: tuple[str, ...] = ("mailtls",)) -> Iterator[tuple[str, ...]]:
    yield path
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from walk(child, (*path, name))


def find(path: tuple[str, ...]) -> argparse.ArgumentParser:
    parser = build_parser()
    for name in path[1:]:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = action.choices[name]
    return parser


PATHS = list(walk(build_parser()))


def test_the_walk_finds_every_command() -> None:
    names = {" ".join(p[1:]) for p in PATHS}
    expected = {"list", "run", "requirements", "targets", "world", "compare", "mta-sts", "tlsrpt"}
    assert expected <= names
    assert {"mta-sts check-record", "mta-sts check-policy", "mta-sts check-domain"} <= names
    assert {"tlsrpt check-record", "tlsrpt check-domain", "tlsrpt validate"} <= names


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p))
def test_help_has_a_description_and_examples(path: tuple[str, ...]) -> None:
    parser = find(path)
    assert parser.description, f"{' '.join(path)} has no description"
    text = parser.format_help()
    assert "example" in text.lower(), f"{' '.join(path)} --help has no example"
    # examples are shown as written, one per line
    assert isinstance(parser.formatter_class, type)
    assert issubclass(parser.formatter_class, argparse.RawDescriptionHelpFormatter)


@pytest.mark.parametrize("path", [("mailtls", "run"), ("mailtls", "compare"), ("mailtls", "mta-sts", "check-policy")])
def test_dash_dash_help_prints_and_exits_0(path: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main([*path[1:], "--help"])
    assert caught.value.code == 0
    assert "examples:" in capsys.readouterr().out
