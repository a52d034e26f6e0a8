"""The report generator's cores are sans-IO: aggregation, composition and the retry schedule
import no networking, no event loop and no DNS library (STYLE.md, "Sans-IO cores")."""

from __future__ import annotations

import pytest

from tests.reference_impl.imports import imported

IO_MODULES = {"asyncio", "socket", "ssl", "selectors", "dns", "h11", "aiosmtpd", "dnslib", "urllib.request"}


@pytest.mark.parametrize(
    "module",
    ["reference_impl.tlsrpt.aggregate", "reference_impl.tlsrpt.compose", "reference_impl.tlsrpt.retry"],
)
def test_core_imports_no_io(module: str) -> None:
    names = imported(module)
    bad = {name for name in names if name in IO_MODULES or name.split(".")[0] in IO_MODULES}
    assert bad == set(), f"{module} imports {sorted(bad)}"
    assert "reference_impl.mta" not in {name.rsplit(".", 1)[0] for name in names}  # no dependency on the MTA
