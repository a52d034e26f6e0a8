"""The HTML page: untrusted text stays text, the same results give the same bytes, and the
page is self-contained (no resource from the network)."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import re
from html.parser import HTMLParser
from pathlib import Path

from conformance.report.html import bar, render
from conformance.report.model import Tally, comparison_from_documents, report_from_document
from conformance.report.results import load_results
from conformance.report.writers import RunInfo, write_report
from conformance.verdict import Verdict

from .builders import HOSTILE, RUN, inventory, sample_document, sample_results

# Attributes that make a browser fetch something.
_FETCHING = {"src", "href", "action", "formaction", "poster", "data", "srcset", "background", "xlink:href"}


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts.append(data)


def _parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    page.close()
    return page


def _hostile_run() -> RunInfo:
    return dataclasses.replace(RUN, target_description=f"described as {HOSTILE}", world=HOSTILE)


def test_sut_text_is_escaped_everywhere() -> None:
    html = render(report_from_document(sample_document(_hostile_run())))
    assert HOSTILE not in html
    assert "<script>window.__xss" not in html
    assert "<img" not in html
    escaped = "220 &lt;script&gt;window.__xss=1&lt;/script&gt;&lt;img src=x onerror=&#34;window.__xss=2&#34;&gt;"
    # title, evidence, check detail, run description and world
    assert html.count(escaped) >= 5
    page = _parse(html)
    assert [tag for tag, _ in page.tags].count("script") == 1
    assert not any(name.startswith("on") for _, attrs in page.tags for name in attrs)


def test_hostile_attribute_values_stay_inside_their_attribute() -> None:
    results = [dataclasses.replace(r, role='x" onmouseover="window.__xss=3') for r in sample_results()]
    html = render(report_from_document(sample_document(RUN, results)))
    page = _parse(html)
    roles = {attrs.get("data-role") for tag, attrs in page.tags if "scenario" in (attrs.get("class") or "")}
    assert roles == {'x" onmouseover="window.__xss=3'}
    assert not any(name.startswith("on") for _, attrs in page.tags for name in attrs)


def test_rendering_is_deterministic() -> None:
    document = sample_document()
    first = render(report_from_document(document)).encode()
    assert render(report_from_document(document)).encode() == first
    # Results in another order give the same page: everything shown is sorted.
    shuffled = sample_document(RUN, list(reversed(sample_results())))
    assert render(report_from_document(shuffled)).encode() == first
    two = [document, sample_document(dataclasses.replace(RUN, target="other"))]
    assert render(comparison_from_documents(two)) == render(comparison_from_documents(two))


def test_the_page_is_self_contained() -> None:
    document = sample_document()
    for html in (
        render(report_from_document(document)),
        render(comparison_from_documents([document, document])),
    ):
        page = _parse(html)
        for tag, attrs in page.tags:
            assert tag not in ("link", "iframe", "object", "embed", "img", "base"), tag
            for name, value in attrs.items():
                if name in _FETCHING and value is not None:
                    assert value.startswith("#"), (tag, name, value)
        assert not re.search(r"url\(|@import", html)
        assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html)
        # One inline script, allowed by its hash and nothing else.
        (script,) = page.scripts
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        csp = next(
            a["content"] for t, a in page.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"
        )
        assert csp is not None and f"script-src 'sha256-{digest}'" in csp and "default-src 'none'" in csp


def test_filters_and_scenarios_have_stable_hooks() -> None:
    page = _parse(render(report_from_document(sample_document())))
    ids = {attrs.get("id") for _, attrs in page.tags}
    assert {"filter-rfc", "filter-verdict", "filter-level", "filter-role", "search", "visible-count"} <= ids
    scenarios = [attrs for _, attrs in page.tags if (attrs.get("class") or "").split()[:1] == ["scenario"]]
    assert [(a["id"], a["data-verdict"], a["data-rfc"], a["data-level"]) for a in scenarios][:2] == [
        ("s-x-fail", "FAIL", "9901", "MUST"),
        ("s-x-hostile", "FAIL", "9901", "MUST"),
    ]
    options = [a.get("value") for t, a in page.tags if t == "option"]
    assert {"9901", "9902", "PASS", "N/A", "ERROR", "MUST", "SHOULD", "sending-mta", "receiving-mta"} <= set(options)


def test_report_shows_setup_expectations_and_requirements() -> None:
    html = render(report_from_document(sample_document()))
    assert "MX 10 mx1.{domain}: STARTTLS offered, certificate valid" in html
    assert "delivered host=mx1.{domain} tls=true" in html
    assert "not observable from outside: inside the SUT" in html
    assert "not covered: needs a second SUT" in html
    assert 'href="#s-x-pass"' in html and 'id="req-rfc9901-3-must-a"' in html
    assert "no decision within 5 s" in html
    assert "50%" in html  # MUST compliance of RFC 9901


def test_writer_html_is_the_render_of_its_results_json(tmp_path: Path) -> None:
    write_report(tmp_path, RUN, sample_results(), inventory())
    document = load_results(tmp_path / "results.json")
    assert (tmp_path / "report.html").read_text() == render(report_from_document(document))


def test_bar_segments_fill_the_width() -> None:
    tally = report_from_document(sample_document()).tally
    segments = bar(tally, width=200)
    assert [s.verdict for s in segments] == [Verdict.PASS, Verdict.FAIL, Verdict.WARN, Verdict.NA, Verdict.ERROR]
    assert abs(sum(s.width for s in segments) - 200) < 0.1
    assert segments[1].x == segments[0].width
    empty = Tally(counts=tuple((v, 0) for v in Verdict), total=0, must=tally.must, should=tally.should)
    assert bar(empty) == []
