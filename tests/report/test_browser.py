"""The HTML report in a real browser (headless Chromium): the filters and the search work,
and a hostile SUT's banner stays text (its markup never runs, never becomes an element).

Needs Debian's ``chromium`` and ``chromium-driver``; without them the tests are skipped.
Selenium drives the system chromedriver, never one it would download.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance.cli import main
from conformance.report.writers import write_report
from conformance.verdict import Verdict

from .builders import HOSTILE, RUN, inventory, sample_results

_CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
_DRIVER = shutil.which("chromedriver")

if _CHROMIUM is None or _DRIVER is None:
    if os.environ.get("MAILTLS_REQUIRE_BROWSER"):  # CI installs them (.ci/run): a skip there would hide a gap
        pytest.fail("MAILTLS_REQUIRE_BROWSER is set but chromium/chromedriver is missing", pytrace=False)
    pytest.skip("no chromium/chromedriver installed: apt-get install chromium chromium-driver", allow_module_level=True)

os.environ.setdefault("SE_OFFLINE", "true")  # selenium-manager must not fetch a browser or driver
webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = _CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=_DRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("browser")
    write_report(directory / "a", RUN, sample_results(), inventory())
    flipped = [dataclasses.replace(r, verdict=Verdict.PASS) if r.id == "x/fail" else r for r in sample_results()]
    write_report(directory / "b", dataclasses.replace(RUN, target="mutant:x"), flipped, inventory())
    return directory


def _visible(driver: WebDriver) -> list[str]:
    return [e.get_attribute("id") or "" for e in driver.find_elements(By.CSS_SELECTOR, ".scenario:not([hidden])")]


def _count(driver: WebDriver) -> str:
    return driver.find_element(By.ID, "visible-count").text


def _search(driver: WebDriver, text: str) -> None:
    box = driver.find_element(By.ID, "search")
    box.clear()
    if text:
        box.send_keys(text)
    else:  # clear() sends no input event
        driver.execute_script("arguments[0].dispatchEvent(new Event('input'))", box)


def test_filters_and_search(browser: WebDriver, report_dir: Path) -> None:
    browser.get((report_dir / "a" / "report.html").as_uri())
    assert len(_visible(browser)) == 6 and _count(browser) == "6"

    verdict = Select(browser.find_element(By.ID, "filter-verdict"))
    verdict.select_by_value("FAIL")
    assert _visible(browser) == ["s-x-fail", "s-x-hostile"]
    assert _count(browser) == "2"
    hidden = browser.find_element(By.ID, "s-x-pass")
    assert hidden.get_attribute("hidden") is not None and not hidden.is_displayed()

    verdict.select_by_value("")
    Select(browser.find_element(By.ID, "filter-rfc")).select_by_value("9902")
    assert _visible(browser) == ["s-y-error"] and _count(browser) == "1"
    Select(browser.find_element(By.ID, "filter-rfc")).select_by_value("")
    Select(browser.find_element(By.ID, "filter-role")).select_by_value("receiving-mta")
    assert _visible(browser) == ["s-x-na"]
    Select(browser.find_element(By.ID, "filter-role")).select_by_value("")
    Select(browser.find_element(By.ID, "filter-level")).select_by_value("SHOULD")
    assert _visible(browser) == ["s-x-warn"]
    Select(browser.find_element(By.ID, "filter-level")).select_by_value("")

    # The search reads ids, titles and the evidence, which is collapsed until it matches.
    _search(browser, "delivered in plaintext")
    assert _visible(browser) == ["s-x-fail"] and _count(browser) == "1"
    _search(browser, "EHLO mx.reference")
    assert _visible(browser) == ["s-x-hostile"]
    evidence = browser.find_element(By.CSS_SELECTOR, "#s-x-hostile details.evidence")
    assert evidence.get_attribute("open") is not None
    _search(browser, "y/err")
    assert _visible(browser) == ["s-y-error"]
    _search(browser, "")
    assert _count(browser) == "6"


def test_hostile_banner_stays_text(browser: WebDriver, report_dir: Path) -> None:
    browser.get((report_dir / "a" / "report.html").as_uri())
    assert browser.execute_script("return typeof window.__xss") == "undefined"
    # The page's own script is the only one; the banner's <script> and <img> are no elements.
    assert browser.execute_script("return document.scripts.length") == 1
    assert browser.execute_script("return document.querySelectorAll('img, [onerror]').length") == 0
    title = browser.find_element(By.CSS_SELECTOR, "#s-x-hostile h3")
    assert title.text == f"Banner {HOSTILE}"
    browser.find_element(By.CSS_SELECTOR, "#s-x-hostile details.evidence summary").click()
    pre = browser.find_element(By.CSS_SELECTOR, "#s-x-hostile details.evidence pre")
    assert HOSTILE in pre.text
    assert browser.execute_script("return typeof window.__xss") == "undefined"


def test_comparison_matrix(browser: WebDriver, report_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "compare.html"
    assert (
        main(["report", str(report_dir / "a" / "results.json"), str(report_dir / "b" / "results.json"), "-o", str(out)])
        == 0
    )
    browser.get(out.as_uri())
    assert _count(browser) == "6"
    browser.find_element(By.ID, "filter-differ").click()
    assert _visible(browser) == ["row-x-fail"] and _count(browser) == "1"
    browser.find_element(By.ID, "filter-differ").click()
    Select(browser.find_element(By.ID, "filter-verdict")).select_by_value("ERROR")
    assert _visible(browser) == ["row-y-error"]
    # A cell opens on that target's checks and evidence.
    cell = browser.find_elements(By.CSS_SELECTOR, "#row-y-error td.cell > details")[1]
    cell.find_element(By.CSS_SELECTOR, ":scope > summary").click()
    assert "no decision within 5 s" in cell.text
    assert browser.execute_script("return typeof window.__xss") == "undefined"
