"""Ctrl-C stops a run cleanly and still writes what was decided; `mailtls world` starts and stops."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path


async def _hung_sut() -> tuple[asyncio.Server, tuple[str, int]]:
    async def never_greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.read()  # wait for the client to go away
        finally:
            writer.close()

    server = await asyncio.start_server(never_greet, "127.0.0.1", 0)
    host, port = server.sockets[0].getsockname()[:2]
    return server, (host, port)


async def test_sigint_writes_the_decided_results(tmp_path: Path) -> None:
    server, (host, port) = await _hung_sut()
    target = tmp_path / "sut.toml"
    target.write_text(
        f'name = "hung"\nroles = ["receiving-mta"]\n[receiving]\naddress = "{host}:{port}"\nmx_name = "mx.hung.test"\n',
        encoding="utf-8",
    )
    report = tmp_path / "report"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "conformance.cli",
        "run",
        "--target",
        str(target),
        "--report",
        str(report),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        # The first line appears when the first scenario (N/A: a sending scenario) is decided;
        # the receiving scenarios then hang on the silent SUT until the interrupt.
        first = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert first
        proc.send_signal(signal.SIGINT)
        _out, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        server.close()
        await server.wait_closed()
    assert proc.returncode == 130, err.decode()
    document = json.loads((report / "results.json").read_text())
    assert document["run"]["interrupted"] is True
    assert document["results"], "the scenarios decided before the interrupt are kept"
    assert not list(report.glob(".mailtls-*")), "no temporary files left behind"


async def test_world_command_prints_the_sut_configuration() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "conformance.cli",
        "world",
        "--seconds",
        "0.2",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    text = out.decode()
    assert "resolver (DNS)" in text and "trust this CA" in text
    assert "127." in text
