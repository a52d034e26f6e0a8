"""The DANE core is sans-IO: its modules import no networking, event loop, TLS or DNS library and
nothing of the MTA (STYLE.md, "Sans-IO cores"). Checked on the modules' own imports: the
``cryptography`` package they use pulls in ``socket`` by way of ``email.utils``, which is not I/O
done here."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

IO_MODULES = {"asyncio", "socket", "ssl", "_ssl", "selectors", "dns", "dnslib", "h11", "aiosmtpd", "urllib"}


def imported(module: str) -> set[str]:
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin is not None
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize(
    "module",
    ["reference_impl.dane.errors", "reference_impl.dane.der", "reference_impl.dane.chain", "reference_impl.dane.tlsa"],
)
def test_core_imports_no_io(module: str) -> None:
    names = imported(module)
    bad = {
        name for name in names if name.split(".")[0] in IO_MODULES or name.split(".")[:2] == ["reference_impl", "mta"]
    }
    assert bad == set(), f"{module} imports {sorted(bad)}"
