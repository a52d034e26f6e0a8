"""The runner as a pytest plugin: one item per scenario, verdicts mapped to outcomes."""

from __future__ import annotations

import json

import pytest

from conformance.cli import main

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


def _collected(result: pytest.RunResult) -> list[str]:
    """The scenario ids ``--collect-only -q`` listed (items of the session: ``::ID``)."""
    return [line.removeprefix("::") for line in result.outlines if line.startswith("::")]


@pytest.mark.parametrize(
    "options",
    [
        ["--rfc", "3207", "--level", "must", "--exclude", "*/no-starttls-*"],
        ["--select", "smtp/*", "--select", "mta-sts/*", "--role", "receiving-mta", "--level", "MUST NOT"],
        ["--rfc", "8460", "--rfc", "8461", "--role", "policy-domain", "--level", "should"],
    ],
)
def test_selection_options_choose_what_mailtls_list_chooses(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str], options: list[str]
) -> None:
    assert main(["list", "--json", *options]) == 0
    expected = [row["id"] for row in json.loads(capsys.readouterr().out)]
    plugin_options = [f"--mailtls-{o.removeprefix('--')}" if o.startswith("--") else o for o in options]
    result = pytester.runpytest_subprocess("--mailtls-target", "reference", *plugin_options, "--collect-only", "-q")
    assert expected and _collected(result) == expected


def test_ini_keys_mirror_the_options_and_the_command_line_wins(pytester: pytest.Pytester) -> None:
    pytester.makeini('[pytest]\nmailtls_target = reference\nmailtls_rfc = 3207\nmailtls_level = "MUST NOT" should\n')
    result = pytester.runpytest_subprocess("--collect-only", "-q")
    assert _collected(result) == [
        "smtp/receive/starttls-offered",
        "smtp/receive/no-starttls-after-tls",
        "smtp/send/uses-starttls",
        "smtp/send/starttls-stripped-recorded",
    ]
    # --mailtls-level replaces the ini's levels; the ini's RFC still holds.
    result = pytester.runpytest_subprocess("--mailtls-level", "must", "--collect-only", "-q")
    assert _collected(result) == ["smtp/receive/starttls-injection-discarded", "smtp/receive/no-starttls-after-tls"]


@pytest.mark.parametrize(
    ("ini", "options", "message"),
    [
        ("", ["--mailtls-level", "maybe"], "argument --mailtls-level: 'maybe' is not a level; choose from MUST,"),
        ("", ["--mailtls-rfc", "9999"], "mailtls: --rfc 9999: no scenario checks RFC 9999; choose from 3207,"),
        ("mailtls_role = postman\n", [], "ini mailtls_role: 'postman' is not a role; choose from sending-mta,"),
        ("mailtls_rfc = 8461 x\n", [], "ini mailtls_rfc: 'x' is not a number"),
    ],
)
def test_a_bad_selection_is_a_usage_error(
    pytester: pytest.Pytester, ini: str, options: list[str], message: str
) -> None:
    pytester.makeini(f"[pytest]\nmailtls_target = reference\n{ini}")
    result = pytester.runpytest_subprocess(*options, "--collect-only", "-q")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()
