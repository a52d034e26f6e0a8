"""What a module imports, read from its source: for the tests that keep sans-IO cores free of
networking, event loops, TLS and DNS libraries (STYLE.md, "Sans-IO cores")."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path


def imported(module: str) -> set[str]:
    """The names ``module`` imports itself (``import x`` and ``from x import ...``), not what
    those imports pull in."""
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
