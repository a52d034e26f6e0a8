"""Writing a run's results: ``results.json``, ``junit.xml`` and ``report.html``.

``results.json`` is the source of the other two views: ``report.html`` is rendered from it
(``conformance.report.model`` and ``conformance.report.html``), as ``mailtls report`` does.

The three files are rendered in memory, written into a temporary folder beside the report
folder, and moved into place only when all three exist, so an interrupted or failed write
never leaves a half-written report behind.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from conformance import __version__
from conformance.catalog.requirements import Inventory, load_inventory
from conformance.report.html import render
from conformance.report.model import report_from_document
from conformance.report.results import SCHEMA_VERSION
from conformance.verdict import ScenarioResult, Verdict


@dataclass(frozen=True, slots=True)
class RunInfo:
    target: str
    target_description: str
    target_version: str
    started_at: str  # RFC 3339, UTC
    duration_s: float
    suite_version: str = __version__
    jobs: int = 1
    selection: tuple[str, ...] = ()
    interrupted: bool = False
    world: str = ""
    strict: bool = False  # --strict: WARN fails the run (and is a <failure> in junit.xml)


def results_document(
    run: RunInfo,
    results: list[ScenarioResult],
    inventory: Inventory | None = None,
    in_catalog: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """The run as data (``schema/results.schema.json``): everything the HTML report shows, so
    ``mailtls report`` renders it again, or beside other runs, from this document alone."""
    inventory = inventory if inventory is not None else load_inventory()
    counts = Counter(r.verdict.value for r in results)
    rfcs = sorted({r.rfc for r in results} & set(inventory.titles))
    return {
        "schema_version": SCHEMA_VERSION,
        "run": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(run).items()},
        "summary": {v.value: counts.get(v.value, 0) for v in Verdict}
        | {"total": len(results), "unexpected": sum(1 for r in results if r.unexpected)},
        "rfcs": [{"rfc": rfc, "title": inventory.titles[rfc]} for rfc in rfcs],
        "requirements": _requirements_json(inventory, rfcs, results, in_catalog),
        "results": [_result_json(r) for r in results],
    }


def _requirements_json(
    inventory: Inventory, rfcs: list[int], results: list[ScenarioResult], in_catalog: Mapping[str, int] | None
) -> list[dict[str, Any]]:
    """The inventory entries of the run's RFCs, each with the ids of this run's scenarios that
    test it (a scenario's own requirements and those its checks cite), and, when known, how many
    scenarios of the whole catalog do (0: no scenario yet; more: left out of this run)."""
    testing: dict[str, set[str]] = {}
    for result in results:
        cited = {*result.requirements, *result.covers, *(o.requirement for o in result.outcomes)}
        for req_id in cited:
            testing.setdefault(req_id, set()).add(result.id)
    return [
        {
            "id": req.id,
            "rfc": req.rfc,
            "section": req.section,
            "level": req.level.value,
            "actor": req.actor,
            "summary": req.summary,
            "observable": req.observable,
            "how": req.how,
            "reason": req.reason,
            "gap": req.gap,
            "implied": req.implied,
            "scenarios": sorted(testing.get(req.id, ())),
        }
        | ({} if in_catalog is None else {"in_catalog": in_catalog.get(req.id, 0)})
        for rfc in rfcs
        for req in inventory.for_rfc(rfc)
    ]


def _result_json(result: ScenarioResult) -> dict[str, Any]:
    return {
        "id": result.id,
        "title": result.title,
        "rfc": result.rfc,
        "section": result.section,
        "level": result.level,
        "role": result.role,
        "requirements": list(result.requirements),
        "verdict": result.verdict.value,
        "duration_s": result.duration_s,
        "reason": result.reason,
        "expected": result.expected.value if result.expected is not None else None,
        "expected_reason": result.expected_reason,
        "unexpected": result.unexpected,
        "checks": [
            {
                "check": o.check,
                "requirement": o.requirement,
                "level": o.level,
                "verdict": o.verdict.value,
                "detail": o.detail,
                "evidence": list(o.evidence),
            }
            for o in result.outcomes
        ],
        "evidence": list(result.evidence),
        "setup": list(result.setup),
        "expected_behaviour": list(result.expected_behaviour),
        "covers": list(result.covers or result.requirements),
    }


# Characters XML 1.0 cannot carry at all, even escaped; a SUT's banner may contain them.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_text(text: str) -> str:
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _junit_verdict(result: ScenarioResult, strict: bool) -> tuple[str, str, str] | None:
    """(element, type, message prefix) for a testcase, or None for a plain pass.

    ``element`` is ``failure``, ``error``, ``skipped`` or ``system-out`` (a WARN outside
    ``--strict``, or a known deviation under ``--expect``: shown, but not a failure).
    """
    verdict = result.verdict
    if result.expected is not None:
        # Compared with an expected-results file: only a surprise fails, in either direction.
        if result.unexpected:
            element = "error" if verdict is Verdict.ERROR else "failure"
            return element, "UNEXPECTED", f"expected {result.expected.value}, got {verdict.value}: "
        if verdict is Verdict.NA:
            return "skipped", "N/A", f"known N/A: {result.expected_reason}: " if result.expected_reason else ""
        if verdict is not Verdict.PASS:
            return "system-out", verdict.value, f"known deviation {verdict.value}: {result.expected_reason}\n"
        return None
    if verdict is Verdict.FAIL:
        return "failure", "FAIL", ""
    if verdict is Verdict.ERROR:
        return "error", "ERROR", ""
    if verdict is Verdict.NA:
        return "skipped", "N/A", ""
    if verdict is Verdict.WARN:
        if strict:
            return "failure", "WARN", "a SHOULD not followed (--strict): "
        return "system-out", "WARN", "WARN (a SHOULD not followed): "
    return None


def _junit_suite(run: RunInfo, rfc: int, index: int, results: list[ScenarioResult]) -> ET.Element:
    kinds = Counter(k[0] for k in (_junit_verdict(r, run.strict) for r in results) if k is not None)
    suite = ET.Element(
        "testsuite",
        name=f"mailtls:{run.target}:rfc{rfc}",
        tests=str(len(results)),
        failures=str(kinds["failure"]),
        errors=str(kinds["error"]),
        skipped=str(kinds["skipped"]),
        time=f"{sum(r.duration_s for r in results):.3f}",
        timestamp=run.started_at,
        id=str(index),
        package="mailtls",
    )
    properties = ET.SubElement(suite, "properties")
    for name, value in (
        ("target", run.target),
        ("target_version", run.target_version),
        ("suite_version", run.suite_version),
        ("selection", " ".join(run.selection)),
        ("strict", str(run.strict).lower()),
        ("interrupted", str(run.interrupted).lower()),
        ("world", run.world),
    ):
        ET.SubElement(properties, "property", name=name, value=_xml_text(value))
    for result in results:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"rfc{result.rfc}.{result.role}",
            name=result.id,
            time=f"{result.duration_s:.3f}",
        )
        judged = _junit_verdict(result, run.strict)
        if judged is None:
            continue
        element, kind, prefix = judged
        message = result.reason or "; ".join(o.detail for o in result.outcomes if o.verdict is not Verdict.PASS)
        # The evidence that decided it: every check's outcome, then the scenario's story.
        body = "\n".join(
            [
                *(f"[{o.verdict.value}] {o.requirement}: {o.detail}" for o in result.outcomes),
                "",
                *result.evidence,
            ]
        )
        if element == "system-out":
            ET.SubElement(case, "system-out").text = _xml_text(f"{prefix}{message}\n{body}")
        elif element == "skipped":
            ET.SubElement(case, "skipped", message=_xml_text(f"{prefix}{message}"[:500]))
        else:
            ET.SubElement(case, element, message=_xml_text(f"{prefix}{message}"[:500]), type=kind).text = _xml_text(
                body
            )
    return suite


def junit_document(run: RunInfo, results: list[ScenarioResult]) -> bytes:
    """JUnit XML as CI servers read it: ``<testsuites>``, one ``<testsuite>`` per RFC (in RFC
    order), one ``<testcase>`` per scenario (in run order). Valid against the JUnit schema
    Jenkins validates with (``junit-10.xsd``, copied in ``tests/report/``).

    FAIL is a ``<failure type="FAIL">`` and ERROR an ``<error>``, with the checks and the
    evidence as their text; N/A is ``<skipped>``; WARN is shown in ``<system-out>``, or is a
    ``<failure type="WARN">`` when the run is strict (``--strict``). Under ``--expect`` only a
    surprise fails (``type="UNEXPECTED"``) and a known deviation is shown in ``<system-out>``.
    Inside a suite ``<properties>`` come first; inside a testcase, its one result element
    (the order the stricter Ant schema fixes, which junit-10.xsd also accepts).
    """
    by_rfc: dict[int, list[ScenarioResult]] = {}
    for result in results:
        by_rfc.setdefault(result.rfc, []).append(result)
    suites = [_junit_suite(run, rfc, index, by_rfc[rfc]) for index, rfc in enumerate(sorted(by_rfc))]
    root = ET.Element(
        "testsuites",
        name=f"mailtls:{run.target}",
        tests=str(len(results)),
        failures=str(sum(int(s.get("failures", "0")) for s in suites)),
        errors=str(sum(int(s.get("errors", "0")) for s in suites)),
        time=f"{run.duration_s:.3f}",
    )
    root.extend(suites)
    ET.indent(root)
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document


def html_document(
    run: RunInfo,
    results: list[ScenarioResult],
    inventory: Inventory | None = None,
    in_catalog: Mapping[str, int] | None = None,
) -> str:
    """The HTML report, rendered from the results document (as ``mailtls report`` would)."""
    return render(report_from_document(results_document(run, results, inventory, in_catalog)))


def write_report(
    directory: Path,
    run: RunInfo,
    results: list[ScenarioResult],
    inventory: Inventory | None = None,
    in_catalog: Mapping[str, int] | None = None,
) -> list[Path]:
    """Render all three files, then move them into ``directory`` together."""
    inventory = inventory if inventory is not None else load_inventory()
    document = results_document(run, results, inventory, in_catalog)
    files = {
        "results.json": json.dumps(document, indent=2, sort_keys=False).encode() + b"\n",
        "junit.xml": junit_document(run, results),
        "report.html": render(report_from_document(document)).encode(),
    }
    directory.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".mailtls-", dir=directory))
    try:
        for name, content in files.items():
            (staging / name).write_bytes(content)
        written = []
        for name in files:
            os.replace(staging / name, directory / name)
            written.append(directory / name)
        return written
    finally:
        shutil.rmtree(staging, ignore_errors=True)
