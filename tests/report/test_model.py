"""The report model: counts, compliance, requirement status and order, comparison rows."""

from __future__ import annotations

import dataclasses

from conformance.report.model import (
    Compliance,
    Report,
    Requirement,
    anchor,
    comparison_from_documents,
    report_from_document,
    section_key,
)
from conformance.verdict import Verdict

from .builders import RUN, result, sample_document, sample_results


def _report() -> Report:
    return report_from_document(sample_document())


def test_verdict_counts_per_rfc_and_overall() -> None:
    report = _report()
    first, second = report.rfcs
    assert (first.rfc, first.title, second.rfc) == (9901, "First test RFC", 9902)
    assert dict(first.tally.counts) == {
        Verdict.PASS: 1,
        Verdict.FAIL: 2,
        Verdict.WARN: 1,
        Verdict.NA: 1,
        Verdict.ERROR: 0,
    }
    assert first.tally.total == 5
    assert second.tally.count(Verdict.ERROR) == 1 and second.tally.total == 1
    assert report.tally.total == 6 and report.tally.count(Verdict.FAIL) == 2


def test_compliance_counts_judged_checks_of_each_level() -> None:
    first, second = _report().rfcs
    # MUST and MUST NOT checks: x/pass PASS, x/fail FAIL + PASS, x/hostile FAIL.
    assert first.tally.must == Compliance(passed=2, judged=4)
    assert first.tally.must.percent == 50.0
    # SHOULD checks: x/pass PASS, x/warn WARN; the N/A scenario judged nothing.
    assert first.tally.should == Compliance(passed=1, judged=2)
    # Only an ERROR: nothing judged, no percentage rather than 0 %.
    assert second.tally.must == Compliance(passed=0, judged=0)
    assert second.tally.must.percent is None


def test_requirement_status_and_natural_section_order() -> None:
    report = _report()
    ids = [r.id for r in report.requirements if r.rfc == 9901]
    assert ids == [
        "rfc9901-3-must-a",
        "rfc9901-3.2-must-b",
        "rfc9901-4-should-c",
        "rfc9901-5-hidden",
        "rfc9901-6-gap",
        "rfc9901-10-unrun",
    ]
    by_id = {r.id: r for r in report.requirements}
    tested = by_id["rfc9901-3-must-a"]
    assert tested.status == "tested"
    assert [(s.id, s.verdict) for s in tested.scenarios] == [
        ("x/hostile", Verdict.FAIL),
        ("x/na", Verdict.NA),
        ("x/pass", Verdict.PASS),
    ]
    assert tested.verdict is Verdict.FAIL
    assert by_id["rfc9901-5-hidden"].status == "not-observable"
    assert by_id["rfc9901-5-hidden"].reason == "inside the SUT"
    assert by_id["rfc9901-6-gap"].status == "uncovered"
    assert by_id["rfc9901-6-gap"].gap == "needs a second SUT"
    assert by_id["rfc9901-10-unrun"].status == "not-run"
    assert by_id["rfc9901-10-unrun"].verdict is None
    first = report.rfcs[0]
    assert (first.requirements, first.observable, first.tested) == (6, 5, 3)


def test_catalog_coverage_tells_uncovered_from_left_out() -> None:
    """With how many catalog scenarios test each requirement (``in_catalog``), a requirement no
    scenario of this run tests is uncovered (none in the catalog) or not-run (left out)."""
    base = Requirement(
        id="r",
        rfc=1,
        section="1",
        level="MUST",
        summary="s",
        observable=True,
        reason="",
        gap="",
        implied="",
        scenarios=(),
    )
    assert dataclasses.replace(base, in_catalog=0).status == "uncovered"
    assert dataclasses.replace(base, in_catalog=2).status == "not-run"
    assert dataclasses.replace(base, gap="why", in_catalog=3).status == "not-run"
    assert base.status == "not-run"  # not known: a requirement without a gap is assumed tested elsewhere


def test_scenarios_sorted_and_carry_what_the_report_shows() -> None:
    report = _report()
    assert [s.id for s in report.scenarios] == ["x/fail", "x/hostile", "x/na", "x/pass", "x/warn", "y/error"]
    passed = next(s for s in report.scenarios if s.id == "x/pass")
    assert passed.requirements == (
        ("rfc9901-3-must-a", "summary of 3-must-a"),
        ("rfc9901-4-should-c", "summary of 4-should-c"),
    )
    assert passed.setup == ("MX 10 mx1.{domain}: STARTTLS offered, certificate valid",)
    assert passed.expected_behaviour == ("delivered host=mx1.{domain} tls=true",)
    assert passed.anchor == "s-x-pass"
    errored = next(s for s in report.scenarios if s.id == "y/error")
    assert errored.reason == "no decision within 5 s" and errored.checks == ()
    assert report.levels == ("MUST", "SHOULD")
    assert report.roles == ("receiving-mta", "sending-mta")
    assert report.run.label == "reference 0.1" and report.run.selection == ("x/*",)


def test_comparison_rows_are_the_union_with_gaps() -> None:
    other = [r for r in sample_results() if r.id != "y/error"]
    other = [dataclasses.replace(r, verdict=Verdict.PASS) if r.id == "x/fail" else r for r in other]
    other.append(result("x/new", Verdict.PASS))
    mutant = dataclasses.replace(RUN, target="mutant:x")
    comparison = comparison_from_documents([sample_document(), sample_document(mutant, other)])
    assert [r.run.target for r in comparison.reports] == ["reference", "mutant:x"]
    rows = {row.id: row for row in comparison.rows}
    assert [row.id for row in comparison.rows] == [
        "x/fail",
        "x/hostile",
        "x/na",
        "x/new",
        "x/pass",
        "x/warn",
        "y/error",
    ]
    assert rows["x/fail"].verdicts == ("FAIL", "PASS") and rows["x/fail"].differs
    assert rows["x/pass"].verdicts == ("PASS", "PASS") and not rows["x/pass"].differs
    assert rows["y/error"].cells[1] is None and rows["y/error"].verdicts == ("ERROR", "")
    assert rows["x/new"].cells[0] is None
    assert comparison.rfcs == ((9901, "First test RFC"), (9902, "Second test RFC"))


def test_section_key_and_anchor() -> None:
    assert sorted(["10", "3.10", "3.2", "A.1", "3"], key=section_key) == ["3", "3.2", "3.10", "10", "A.1"]
    assert anchor("mta-sts/send/X y") == "s-mta-sts-send-x-y"
