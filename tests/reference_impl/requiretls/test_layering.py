"""The RFC 8689 cores are sans-IO: no asyncio, sockets, ssl or DNS library."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import reference_impl.requiretls as package

FORBIDDEN = {"asyncio", "socket", "ssl", "dns", "dnslib", "aiosmtpd"}
CORES = ["header.py", "nexthop.py", "bounce.py"]


@pytest.mark.parametrize("name", CORES)
def test_core_imports_no_io(name: str) -> None:
    tree = ast.parse((Path(package.__file__).parent / name).read_text())
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert imported & FORBIDDEN == set()
