"""Rendering the report model as one self-contained HTML file.

One pure function, :func:`render`: the same model gives the same bytes (no clock is read,
every list comes sorted from the model). The file needs nothing else: the style sheet and
the filter script are inlined, the charts are inline SVG, and a Content-Security-Policy
allows only that one script (by its hash), so even markup that slipped through could not
run. Everything a SUT controls is data and is autoescaped; the templates never mark data
safe, and the script reads what it needs from the DOM, never from interpolated text.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from functools import cache
from importlib import resources

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from conformance.report.model import VERDICTS, Comparison, Compliance, Report, Tally
from conformance.verdict import Verdict

BAR_WIDTH = 240


@dataclass(frozen=True, slots=True)
class Segment:
    verdict: Verdict
    count: int
    x: float
    width: float


def bar(tally: Tally, width: int = BAR_WIDTH) -> list[Segment]:
    """The stacked bar of a tally: one segment per verdict present, left to right."""
    segments: list[Segment] = []
    if not tally.total:
        return segments
    x = 0.0
    for verdict, count in tally.counts:
        if count:
            w = round(width * count / tally.total, 2)
            segments.append(Segment(verdict, count, round(x, 2), w))
            x += w
    return segments


def percent(compliance: Compliance) -> str:
    value = compliance.percent
    return "n/a" if value is None else f"{value:g}%"


def css_class(verdict: Verdict | str | None) -> str:
    """``v-PASS``, ``v-NA``: a class name for a verdict ("N/A" has a slash)."""
    if verdict is None or verdict == "":
        return "v-none"
    return "v-" + Verdict(verdict).name


def rfc_options(model: Report | Comparison) -> list[tuple[str, str]]:
    rfcs = [(r.rfc, r.title) for r in model.rfcs] if isinstance(model, Report) else list(model.rfcs)
    return [(str(rfc), f"RFC {rfc}") for rfc, _title in rfcs]


def verdict_options() -> list[tuple[str, str]]:
    return [(v.value, v.value) for v in VERDICTS]


def options(values: tuple[str, ...]) -> list[tuple[str, str]]:
    return [(v, v) for v in values]


@cache
def _asset(name: str) -> str:
    return (resources.files("conformance.report") / "templates" / name).read_text(encoding="utf-8")


@cache
def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("conformance.report", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),  # SUT text stays text
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )
    env.globals.update(
        bar=bar,
        percent=percent,
        css_class=css_class,
        rfc_options=rfc_options,
        verdict_options=verdict_options,
        options=options,
        verdicts=VERDICTS,
        bar_width=BAR_WIDTH,
    )
    return env


def _assets() -> dict[str, str]:
    # Our own static files, not data: inlined as they are. The script may not close its tag.
    script = _asset("report.js")
    style = _asset("report.css")
    assert "</" not in script and "</" not in style
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    return {
        "script": Markup(script),  # noqa: S704 - our package's own static file, never data
        "style": Markup(style),  # noqa: S704 - likewise
        "script_hash": f"sha256-{digest}",
    }


def render(model: Report | Comparison) -> str:
    """The HTML page of one run (a :class:`Report`) or of several side by side."""
    env = _environment()
    if isinstance(model, Report):
        return env.get_template("report.html.j2").render(report=model, **_assets())
    return env.get_template("compare.html.j2").render(comparison=model, **_assets())
