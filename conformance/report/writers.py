"""Writing a run's results: ``results.json``, ``junit.xml`` and ``report.html``.

The three files are rendered in memory, written into a temporary folder beside the report
folder, and moved into place only when all three exist, so an interrupted or failed write
never leaves a half-written report behind.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from conformance import __version__
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


def results_document(run: RunInfo, results: list[ScenarioResult]) -> dict[str, Any]:
    counts = Counter(r.verdict.value for r in results)
    return {
        "run": asdict(run),
        "summary": {v.value: counts.get(v.value, 0) for v in Verdict}
        | {"total": len(results), "unexpected": sum(1 for r in results if r.unexpected)},
        "results": [_result_json(r) for r in results],
    }


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
    }


def junit_document(run: RunInfo, results: list[ScenarioResult]) -> bytes:
    counts = Counter(r.verdict for r in results)
    suite = ET.Element(
        "testsuite",
        name=f"mailtls:{run.target}",
        tests=str(len(results)),
        failures=str(counts[Verdict.FAIL]),
        errors=str(counts[Verdict.ERROR]),
        skipped=str(counts[Verdict.NA]),
        time=f"{run.duration_s:.3f}",
        timestamp=run.started_at,
    )
    for result in results:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"rfc{result.rfc}.{result.role}",
            name=result.id,
            time=f"{result.duration_s:.3f}",
        )
        message = result.reason or "; ".join(o.detail for o in result.outcomes if o.verdict is not Verdict.PASS)
        body = "\n".join(
            [
                *(f"[{o.verdict.value}] {o.requirement}: {o.detail}" for o in result.outcomes),
                "",
                *result.evidence,
            ]
        )
        if result.expected is not None:
            # Compared with an expected-results file: only a surprise fails, in either direction.
            if result.unexpected:
                ET.SubElement(
                    case,
                    "failure",
                    message=f"expected {result.expected.value}, got {result.verdict.value}: {message}"[:500],
                    type="UNEXPECTED",
                ).text = body
            elif result.verdict is not Verdict.PASS:
                ET.SubElement(
                    case, "system-out"
                ).text = f"known deviation {result.verdict.value}: {result.expected_reason}\n{body}"
        elif result.verdict is Verdict.FAIL:
            ET.SubElement(case, "failure", message=message[:500], type="FAIL").text = body
        elif result.verdict is Verdict.ERROR:
            ET.SubElement(case, "error", message=message[:500], type="ERROR").text = body
        elif result.verdict is Verdict.NA:
            ET.SubElement(case, "skipped", message=message[:500])
        elif result.verdict is Verdict.WARN:
            ET.SubElement(case, "system-out").text = f"WARN (a SHOULD not followed): {message}\n{body}"
    ET.indent(suite)
    document: bytes = ET.tostring(suite, encoding="utf-8", xml_declaration=True)
    return document


def html_document(run: RunInfo, results: list[ScenarioResult]) -> str:
    env = Environment(
        loader=PackageLoader("conformance.report", "templates"),
        autoescape=select_autoescape(default=True),  # banners and names from a SUT stay text
        trim_blocks=True,
        lstrip_blocks=True,
    )
    counts = Counter(r.verdict.value for r in results)
    by_rfc: dict[int, list[ScenarioResult]] = {}
    for result in sorted(results, key=lambda r: (r.rfc, r.id)):
        by_rfc.setdefault(result.rfc, []).append(result)
    return env.get_template("report.html.j2").render(
        run=run, results=results, by_rfc=by_rfc, counts=counts, verdicts=[v.value for v in Verdict]
    )


def write_report(directory: Path, run: RunInfo, results: list[ScenarioResult]) -> list[Path]:
    """Render all three files, then move them into ``directory`` together."""
    files = {
        "results.json": json.dumps(results_document(run, results), indent=2, sort_keys=False).encode() + b"\n",
        "junit.xml": junit_document(run, results),
        "report.html": html_document(run, results).encode(),
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
