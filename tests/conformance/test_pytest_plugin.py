"""The runner as a pytest plugin: one item per scenario, verdicts mapped to outcomes."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


def test_scenarios_become_items(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess(
        "--mailtls-target",
        "reference",
        "--mailtls-select",
        "smtp/receive/*",
        "-v",
    )
    result.assert_outcomes(passed=7)
    result.stdout.fnmatch_lines(["mailtls: target=reference*", "*smtp/receive/starttls-offered PASSED*"])


def test_a_mutant_fails_its_item(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess(
        "--mailtls-target",
        "mutant:keeps-pipelined-plaintext",
        "--mailtls-select",
        "smtp/receive/starttls-injection-discarded",
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*FAIL: smtp/receive/starttls-injection-discarded*"])


def test_without_a_target_the_plugin_adds_nothing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_one():\n    assert True\n")
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1)
