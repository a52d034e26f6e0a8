"""The receiver's decision cores are sans-IO (RFC 8460 sections 5.4, 5.6; house style)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

IO_MODULES = ["asyncio", "socket", "ssl", "_ssl", "selectors", "dns", "h11", "http", "urllib.request"]
EVENT_LOOP_MODULES = ["asyncio", "h11"]


def imported(module: str, watched: list[str]) -> list[str]:
    code = f"import json, sys\nimport {module}\nprint(json.dumps(sorted(set({watched!r}) & set(sys.modules))))\n"
    result = subprocess.run(  # noqa: S603 - runs this interpreter on fixed code
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return list(json.loads(result.stdout))


@pytest.mark.parametrize(
    "module",
    [
        "reference_impl.tlsrpt.receiver_http",
        "reference_impl.tlsrpt.receiver_variant",
        "reference_impl.tlsrpt.receiver_judges",
        "reference_impl.tlsrpt.receiver_store",
        "reference_impl.tlsrpt.receiver_mutants",
    ],
)
def test_core_imports_no_io_modules(module: str) -> None:
    assert imported(module, IO_MODULES) == []


@pytest.mark.parametrize("module", ["reference_impl.tlsrpt.receiver_mail", "reference_impl.tlsrpt.receiver_dkim"])
def test_mail_intake_runs_without_an_event_loop(module: str) -> None:
    # dkimpy imports dnspython (and so socket) at import time; its lookups go through the
    # injected txt_lookup, so the intake is sans-IO apart from that callable.
    assert imported(module, EVENT_LOOP_MODULES) == []
