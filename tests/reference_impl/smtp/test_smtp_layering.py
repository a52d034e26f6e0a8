"""The sans-IO cores import no asyncio, socket or ssl (STYLE: sans-IO cores)."""

from __future__ import annotations

import subprocess
import sys

CORE_MODULES = [
    "reference_impl.smtp.errors",
    "reference_impl.smtp.replies",
    "reference_impl.smtp.commands",
    "reference_impl.smtp.events",
    "reference_impl.smtp.params",
    "reference_impl.smtp.data",
    "reference_impl.smtp.server_events",
    "reference_impl.smtp.client",
    "reference_impl.smtp.server",
]


def test_cores_import_no_io_modules() -> None:
    code = (
        "import sys\n"
        + "".join(f"import {name}\n" for name in CORE_MODULES)
        + "print(sorted({'asyncio', 'socket', 'ssl', '_ssl', 'selectors'} & set(sys.modules)))\n"
    )
    result = subprocess.run(  # noqa: S603 - runs this interpreter on fixed code
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30
    )
    assert result.stdout.strip() == "[]"
