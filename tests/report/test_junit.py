"""junit.xml: valid against the JUnit schema CI servers use, one suite per RFC, verdicts mapped."""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import xmlschema

from conformance.cli import main
from conformance.report.writers import RunInfo, junit_document
from conformance.verdict import CheckOutcome, ScenarioResult, Verdict

SCHEMA = xmlschema.XMLSchema(Path(__file__).with_name("junit-10.xsd"))
RUN = RunInfo(
    target="reference",
    target_description="",
    target_version="0.1",
    started_at="2026-11-29T00:00:00Z",
    duration_s=2.5,
    selection=("smtp/*",),
)


def result(
    verdict: Verdict, scenario_id: str, rfc: int = 8461, *, reason: str = "", evidence: tuple[str, ...] = ()
) -> ScenarioResult:
    return ScenarioResult(
        id=scenario_id, title="A title", rfc=rfc, section="4.2", level="MUST", role="sending-mta",
        requirements=("rfc8461-x",), verdict=verdict, duration_s=0.5, reason=reason, evidence=evidence,
        outcomes=(CheckOutcome("fact", "rfc8461-x", "MUST", verdict, f"detail of {verdict.value}"),),
    )  # fmt: skip


MIXED = [
    result(Verdict.PASS, "sts/pass"),
    result(Verdict.FAIL, "sts/fail", evidence=("S: 250 OK", "C: DATA")),
    result(Verdict.WARN, "rpt/warn", rfc=8460),
    result(Verdict.NA, "rpt/na", rfc=8460, reason="role not played"),
    result(Verdict.ERROR, "sts/error", reason="SUT unreachable"),
    result(Verdict.PASS, "smtp/pass", rfc=3207),
]


def parse(document: bytes) -> ET.Element:
    SCHEMA.validate(document.decode())  # raises with the offending path when invalid
    return ET.fromstring(document)


def case(root: ET.Element, name: str) -> ET.Element:
    found = root.find(f".//testcase[@name='{name}']")
    assert found is not None, name
    return found


def test_testsuites_with_one_valid_suite_per_rfc() -> None:
    root = parse(junit_document(RUN, MIXED))
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("6", "1", "1")
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["mailtls:reference:rfc3207", "mailtls:reference:rfc8460",
                                               "mailtls:reference:rfc8461"]  # fmt: skip
    counts = {s.get("name", "")[-4:]: (s.get("tests"), s.get("failures"), s.get("errors"), s.get("skipped"))
              for s in suites}  # fmt: skip
    assert counts == {"3207": ("1", "0", "0", "0"), "8460": ("2", "0", "0", "1"), "8461": ("3", "1", "1", "0")}
    assert [s.get("id") for s in suites] == ["0", "1", "2"]
    # properties first in each suite, then the testcases in run order
    assert [child.tag for child in suites[2]] == ["properties", "testcase", "testcase", "testcase"]
    assert [c.get("name") for c in suites[2].iter("testcase")] == ["sts/pass", "sts/fail", "sts/error"]
    props = {p.get("name"): p.get("value") for p in suites[0].iter("property")}
    assert props["target"] == "reference" and props["strict"] == "false" and props["selection"] == "smtp/*"


def test_each_verdict_maps_to_its_element() -> None:
    root = parse(junit_document(RUN, MIXED))
    assert list(case(root, "sts/pass")) == []
    failure = case(root, "sts/fail").find("failure")
    assert failure is not None and failure.get("type") == "FAIL"
    assert failure.get("message") == "detail of FAIL"
    assert "[FAIL] rfc8461-x: detail of FAIL" in (failure.text or "") and "C: DATA" in (failure.text or "")
    error = case(root, "sts/error").find("error")
    assert error is not None and error.get("message") == "SUT unreachable"
    skipped = case(root, "rpt/na").find("skipped")
    assert skipped is not None and skipped.get("message") == "role not played"
    warn = case(root, "rpt/warn")
    assert warn.find("failure") is None
    assert "WARN (a SHOULD not followed)" in (warn.findtext("system-out") or "")


def test_strict_makes_a_warn_a_failure() -> None:
    root = parse(junit_document(dataclasses.replace(RUN, strict=True), MIXED))
    failure = case(root, "rpt/warn").find("failure")
    assert failure is not None and failure.get("type") == "WARN"
    assert root.get("failures") == "2"
    suite = root.find("testsuite[@name='mailtls:reference:rfc8460']")
    assert suite is not None and suite.get("failures") == "1"


def test_under_expect_only_surprises_fail() -> None:
    known_fail = dataclasses.replace(MIXED[1], expected=Verdict.FAIL, expected_reason="known bug")
    surprise_pass = dataclasses.replace(MIXED[0], expected=Verdict.WARN, expected_reason="stale")
    surprise_error = dataclasses.replace(MIXED[4], expected=Verdict.PASS)
    known_na = dataclasses.replace(MIXED[3], expected=Verdict.NA, expected_reason="no reports")
    root = parse(junit_document(RUN, [known_fail, surprise_pass, surprise_error, known_na]))
    assert case(root, "sts/fail").find("failure") is None
    assert "known deviation FAIL: known bug" in (case(root, "sts/fail").findtext("system-out") or "")
    unexpected = case(root, "sts/pass").find("failure")
    assert unexpected is not None and unexpected.get("type") == "UNEXPECTED"
    assert (unexpected.get("message") or "").startswith("expected WARN, got PASS")
    error = case(root, "sts/error").find("error")
    assert error is not None and error.get("type") == "UNEXPECTED"
    assert case(root, "rpt/na").find("skipped") is not None
    assert (root.get("failures"), root.get("errors")) == ("1", "1")


def test_text_xml_cannot_carry_is_escaped() -> None:
    hostile = result(Verdict.FAIL, "sts/hostile", reason="banner \x00\x1b[2J", evidence=("S: 220 \x07 <&>",))
    root = parse(junit_document(RUN, [hostile]))
    failure = case(root, "sts/hostile").find("failure")
    assert failure is not None
    assert failure.get("message") == "banner \\x00\\x1b[2J"
    assert "S: 220 \\x07 <&>" in (failure.text or "")


def test_an_empty_run_is_valid() -> None:
    root = parse(junit_document(RUN, []))
    assert root.tag == "testsuites" and root.get("tests") == "0" and list(root) == []


def test_a_real_run_writes_valid_junit(tmp_path: Path) -> None:
    argv = ["run", "-q", "--target", "mutant:keeps-pipelined-plaintext", "--select", "smtp/receive/*"]
    assert main([*argv, "--report", str(tmp_path)]) == 1
    root = parse((tmp_path / "junit.xml").read_bytes())
    assert int(root.get("failures", "0")) >= 1


@pytest.mark.parametrize("strict", [False, True])
def test_the_old_single_suite_form_is_not_what_we_write(strict: bool) -> None:
    """A guard for the schema test itself: a document the schema rejects is caught."""
    root = ET.fromstring(junit_document(dataclasses.replace(RUN, strict=strict), MIXED))
    suite = root.find("testsuite")
    assert suite is not None
    del suite.attrib["failures"]  # required by junit-10.xsd
    with pytest.raises(xmlschema.XMLSchemaValidationError):
        SCHEMA.validate(ET.tostring(root, encoding="unicode"))
