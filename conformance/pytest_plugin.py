"""The runner as a pytest plugin: ``pytest --mailtls-target reference`` runs the catalog,
one test item per scenario (the scenario id is the test id).

The world and the target live in one event loop on a background thread for the whole
session, like in ``mailtls run``; each item submits its scenario to that loop. FAIL and
ERROR fail the item, N/A skips it, WARN passes with a warning.

The scenarios are chosen as ``mailtls run`` chooses them (``conformance.selection``):
``--mailtls-select``, ``--mailtls-exclude``, ``--mailtls-rfc``, ``--mailtls-level`` and
``--mailtls-role`` are its ``--select``, ``--exclude``, ``--rfc``, ``--level`` and ``--role``.
Each has an ini key (``mailtls_select = smtp/* mta-sts/*``, values separated as in a shell)
used when the option is not given on the command line.
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from conformance.catalog.loader import CatalogEntry, load_catalog
from conformance.catalog.requirements import Inventory, load_inventory
from conformance.errors import UsageError
from conformance.runner import run_scenario
from conformance.selection import LEVEL_CHOICES, ROLE_CHOICES, Selection, parse_level, parse_role
from conformance.targets.base import Target
from conformance.targets.registry import resolve_target
from conformance.verdict import ScenarioResult, Verdict
from conformance.world.world import Ports, World


class MailtlsWarning(UserWarning):
    """A SHOULD not followed (verdict WARN)."""


# The selection options of ``mailtls run`` (conformance.selection), as --mailtls-NAME options
# and mailtls_NAME ini keys: (NAME, how one value is read, metavar, help).
_SELECTION_OPTIONS: tuple[tuple[str, Callable[[str], object], str, str], ...] = (
    ("select", str, "GLOB", "only scenario ids matching GLOB"),
    ("exclude", str, "GLOB", "leave out scenario ids matching GLOB"),
    ("rfc", int, "N", "only scenarios of RFC N"),
    ("level", parse_level, "LEVEL", f"only scenarios of LEVEL ({LEVEL_CHOICES}; MUST includes MUST NOT)"),
    ("role", parse_role, "ROLE", f"only scenarios where the SUT plays ROLE ({ROLE_CHOICES})"),
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mailtls", "MailTLS conformance catalog")
    group.addoption(
        "--mailtls-target",
        dest="mailtls_target",
        default=None,
        help="run the catalog against TARGET: reference, mutant:NAME or a target TOML file",
    )
    for name, parse, metavar, help_text in _SELECTION_OPTIONS:
        group.addoption(
            f"--mailtls-{name}",
            dest=f"mailtls_{name}",
            action="append",
            default=[],
            type=parse,
            metavar=metavar,
            help=f"{help_text} (repeatable; as mailtls run --{name})",
        )
        parser.addini(f"mailtls_{name}", f"default for --mailtls-{name} (space-separated)", type="args", default=[])
    group.addoption("--mailtls-catalog", dest="mailtls_catalog", default=None, help="scenario folder")
    parser.addini("mailtls_target", "default for --mailtls-target", default="")


def _selection_values(config: pytest.Config, name: str, parse: Callable[[str], object]) -> list[Any]:
    """The --mailtls-NAME values, or else the mailtls_NAME ini values read the same way."""
    given: list[Any] = config.getoption(f"mailtls_{name}")
    if given:
        return given
    values = []
    for text in config.getini(f"mailtls_{name}"):
        try:
            values.append(parse(text))
        except argparse.ArgumentTypeError as exc:  # parse_level, parse_role
            raise pytest.UsageError(f"ini mailtls_{name}: {exc}") from None
        except ValueError:  # int
            raise pytest.UsageError(f"ini mailtls_{name}: {text!r} is not a number") from None
    return values


def _selection(config: pytest.Config) -> Selection:
    """The scenario selection, built by conformance.selection as for ``mailtls run``."""
    values = {name: _selection_values(config, name, parse) for name, parse, _, _ in _SELECTION_OPTIONS}
    return Selection.from_args(argparse.Namespace(**values))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "mailtls(rfc, level): a MailTLS conformance scenario")
    if _target_name(config) is not None:
        config.stash[_SELECTION] = _selection(config)


def _target_name(config: pytest.Config) -> str | None:
    value = config.getoption("mailtls_target") or config.getini("mailtls_target")
    return str(value) if value else None


def pytest_report_header(config: pytest.Config) -> list[str]:
    target = _target_name(config)
    if target is None:
        return []
    selection = config.stash[_SELECTION].describe()
    return [f"mailtls: target={target} select={','.join(selection) or '*'}"]


class _LoopThread:
    """An event loop on its own thread holding the world and the target for the session."""

    def __init__(self, target: Target) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="mailtls-world", daemon=True)
        self.thread.start()
        self.target = target
        self.world = World(ports=Ports.unprivileged())
        self.call(self._start())

    async def _start(self) -> None:
        await self.world.start()
        await self.target.start(self.world)

    async def _stop(self) -> None:
        try:
            await self.target.stop()
        finally:
            await self.world.stop()

    def call(self, coro: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result()

    def close(self) -> None:
        try:
            self.call(self._stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=10)
            self.loop.close()


class ScenarioItem(pytest.Item):
    def __init__(self, *, entry: CatalogEntry, inventory: Inventory, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.entry = entry
        self.inventory = inventory
        self.add_marker(pytest.mark.mailtls(entry.rfc, entry.level.value))
        self.result: ScenarioResult | None = None

    def runtest(self) -> None:
        runtime: _LoopThread = self.config.stash[_RUNTIME]
        self.result = runtime.call(run_scenario(self.entry, runtime.world, runtime.target, self.inventory))
        result = self.result
        if result.verdict is Verdict.NA:
            pytest.skip(f"N/A: {result.reason}")
        if result.verdict is Verdict.WARN:
            warnings.warn(
                MailtlsWarning(f"{result.id}: " + "; ".join(o.detail for o in result.outcomes)),
                stacklevel=1,
            )
        if result.verdict.bad:
            raise ScenarioFailed(result)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ScenarioFailed):
            r = excinfo.value.result
            lines = [f"{r.verdict.value}: {r.id} (RFC {r.rfc} section {r.section}, {r.level})"]
            if r.reason:
                lines.append(r.reason)
            lines += [f"  [{o.verdict.value}] {o.requirement}: {o.detail}" for o in r.outcomes]
            lines += ["", *r.evidence[:60]]
            return "\n".join(lines)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.entry.path, self.entry.line - 1, self.entry.id


class ScenarioFailed(Exception):
    def __init__(self, result: ScenarioResult) -> None:
        super().__init__(result.id)
        self.result = result


_RUNTIME = pytest.StashKey[_LoopThread]()
_SELECTION = pytest.StashKey[Selection]()


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    target_name = _target_name(config)
    if target_name is None:
        return
    inventory = load_inventory()
    catalog_dir = config.getoption("mailtls_catalog")
    catalog = load_catalog(inventory, Path(catalog_dir) if catalog_dir else None)
    try:
        entries = config.stash[_SELECTION].apply(catalog)
    except UsageError as exc:
        raise pytest.UsageError(f"mailtls: {exc}") from None  # an RFC no scenario checks
    for entry in entries:
        items.append(ScenarioItem.from_parent(session, name=entry.id, entry=entry, inventory=inventory))


@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session: pytest.Session) -> Iterator[None]:
    target_name = _target_name(session.config)
    if (
        target_name is None
        or session.config.option.collectonly
        or not any(isinstance(i, ScenarioItem) for i in session.items)
    ):
        return (yield)
    runtime = _LoopThread(resolve_target(target_name))
    session.config.stash[_RUNTIME] = runtime
    try:
        return (yield)
    finally:
        runtime.close()
