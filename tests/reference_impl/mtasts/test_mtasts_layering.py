"""The MTA-STS parsing core is sans-IO: it imports no I/O or third-party protocol modules."""

from __future__ import annotations

import subprocess
import sys

CORE_MODULES = [
    "reference_impl.mtasts.errors",
    "reference_impl.mtasts.record",
    "reference_impl.mtasts.policy",
    "reference_impl.mtasts.matching",
    "reference_impl.mtasts.lint",
]
FORBIDDEN = ["asyncio", "socket", "ssl", "_ssl", "selectors", "dns", "h11", "http", "urllib.request"]


def test_core_imports_no_io_modules() -> None:
    code = (
        "import sys\n"
        + "".join(f"import {name}\n" for name in CORE_MODULES)
        + f"print(sorted(set({FORBIDDEN!r}) & set(sys.modules)))\n"
    )
    result = subprocess.run(  # noqa: S603 - runs this interpreter on fixed code
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30
    )
    assert result.stdout.strip() == "[]"
