"""A hostile or hung SUT costs a scenario an ERROR (or FAIL), never the run."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from conformance.catalog.loader import load_catalog
from conformance.catalog.requirements import load_inventory
from conformance.runner import run_all
from conformance.targets.external import ExternalTarget
from conformance.verdict import Verdict
from conformance.world.world import World

INVENTORY = load_inventory()
CATALOG = load_catalog(INVENTORY)

Behaviour = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"\x00\xffHELLO this is not SMTP\r\n" * 3)
    await writer.drain()
    writer.close()


async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(30)  # never greets; the runner's deadline must end this
    writer.close()


async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.transport.abort()
    writer.close()


async def flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"220 ok\r\n")
    try:
        for _ in range(200):
            writer.write(b"250-" + b"x" * 8000 + b"\r\n")
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    writer.close()


@pytest.fixture
async def hostile(request: pytest.FixtureRequest) -> AsyncIterator[tuple[str, int]]:
    behaviour: Behaviour = request.param
    writers: list[asyncio.StreamWriter] = []
    tasks: set[asyncio.Task[Any]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        await behaviour(reader, writer)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    host, port = server.sockets[0].getsockname()[:2]
    yield host, port
    server.close()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for writer in writers:
        writer.close()
    await server.wait_closed()


def target_file(tmp_path: Path, address: tuple[str, int]) -> Path:
    path = tmp_path / "sut.toml"
    path.write_text(
        f"""name = "hostile"
roles = ["sending-mta", "receiving-mta"]
[sending]
submission = "{address[0]}:{address[1]}"
[receiving]
address = "{address[0]}:{address[1]}"
mx_name = "mx.hostile.test"
""",
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize("hostile", [garbage, hang, reset, flood], indirect=True, ids=lambda f: f.__name__)
async def test_each_scenario_gets_a_verdict_and_the_run_finishes(hostile: tuple[str, int], tmp_path: Path) -> None:
    target = ExternalTarget(target_file(tmp_path, hostile))
    entries = list(CATALOG.entries)
    async with World() as world:
        results = await run_all(entries, world, target, INVENTORY, jobs=8, timeout_cap_s=0.5)
    assert [r.id for r in results] == [e.id for e in entries]
    for result in results:
        # N/A only where a scenario needs a claim the external target does not make.
        assert result.verdict in (Verdict.ERROR, Verdict.FAIL, Verdict.NA), result
        assert result.reason or result.outcomes
