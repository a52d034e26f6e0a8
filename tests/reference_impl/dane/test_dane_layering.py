"""The DANE core is sans-IO: its modules import no networking, event loop, TLS or DNS library and
nothing of the MTA (STYLE.md, "Sans-IO cores"). Checked on the modules' own imports: the
``cryptography`` package they use pulls in ``socket`` by way of ``email.utils``, which is not I/O
done here."""

from __future__ import annotations

import pytest

from tests.reference_impl.imports import imported

IO_MODULES = {"asyncio", "socket", "ssl", "_ssl", "selectors", "dns", "dnslib", "h11", "aiosmtpd", "urllib"}


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
