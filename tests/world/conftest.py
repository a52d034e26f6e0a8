"""Fixtures shared by the world's tests."""

from __future__ import annotations

import pytest

from tests.world.smtp_helpers import TestCa


@pytest.fixture(scope="module")
def ca() -> TestCa:
    """A trustme CA for the SMTP peer and man-in-the-middle tests."""
    return TestCa()
