"""Chaise, DERIVA's web UI, shows what a pytest sweep recorded on the server: checked in a real
headless Chromium.

A sweep of three parametrized children (one output file each) is recorded with ``pytest
--deriva-run`` in a new catalog of the local server; Chaise's record page of the parent, the record
page of a child and the recordset page of ``deriva-ml:Execution`` are then opened in headless
Chromium (Selenium, logged in with the kit's ``webauthn`` cookie) and checked against what the
catalog holds. Screenshots and the browser console go to ``$PYTEST_DERIVA_ARTIFACTS`` (default
``build/test-artifacts/chaise/``); console errors other than the kit's harmless 404s fail the test.

Needs the server kit started with ``--with-chaise`` (``.ci/with-server`` does), Debian's
``chromium`` and ``chromium-driver``, and ``selenium`` (the ``dev`` extra); without any of them it
skips with a one-line reason. Select or deselect it with ``-m chaise`` / ``-m "not chaise"``.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest

from _plugin_helpers import make_project, outputs, parents_and_children
from conftest import ServerKit
from pytest_deriva import DerivaML

if TYPE_CHECKING:
    from selenium.webdriver.chrome.webdriver import WebDriver

pytestmark = pytest.mark.chaise

REPO = Path(__file__).resolve().parent.parent
WAIT = 60  # seconds Chaise may take to render what a check waits for (it takes 1-3 s here)

CHROMIUM = os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER_BIN", "/usr/bin/chromedriver")

# Console errors that are not ours: optional files a Chaise deployment may add, which the kit
# does not (its README lists them), and the site icon the browser asks for by itself.
HARMLESS_404 = ("/chaise/chaise-config.js", "/google-dataset-config.js", "/gtm-id.js", "/favicon.ico")
_LOAD_404 = re.compile(r"^(\S+) - Failed to load resource: the server responded with a status of 404\b")

LRS = (0.1, 0.01, 0.001)
SWEEP = """
import pytest


@pytest.mark.deriva(workflow_type="Training", description="Learning-rate sweep seen in Chaise")
@pytest.mark.parametrize("lr", [0.1, 0.01, 0.001])
def experiment_lr(lr, ml_instance, execution):
    execution.asset_file_path("Execution_Asset", f"model-lr{lr}.txt").write_text(f"lr={lr}\\n")
    return {"accuracy": 1 - lr}
"""
SECTIONS = ["Parent Executions", "Child Executions", "Dataset", "Execution Asset", "Execution Metadata"]


def artifacts_dir() -> Path:
    """Where the screenshots and the console log go: $PYTEST_DERIVA_ARTIFACTS, or build/ of the repo."""
    env = os.environ.get("PYTEST_DERIVA_ARTIFACTS")
    folder = Path(env) if env else REPO / "build" / "test-artifacts" / "chaise"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def chaise_url(deriva_server: ServerKit) -> str:
    """Chaise's base URL on the local server, or a skip when the server does not serve Chaise."""
    import requests

    url = f"{deriva_server.url}/chaise"
    # /chaise/ itself has no index page (404 on every deployment); its apps are folders under it.
    probe = f"{url}/record/"
    try:
        status = requests.get(probe, timeout=10, verify=os.environ.get("DERIVA_TEST_CA_CERT") or True).status_code
    except requests.RequestException as exc:
        pytest.skip(f"Chaise not reachable at {probe} ({type(exc).__name__}); start the kit with --with-chaise")
    if status != 200:
        pytest.skip(f"Chaise not served (GET {probe}: {status}); start the server kit with --with-chaise")
    return url


def _session_cookie(kit: ServerKit) -> str:
    """The admin's ``webauthn=...`` cookie: DERIVA_TEST_COOKIE, else from the kit's credential file."""
    cookie = os.environ.get("DERIVA_TEST_COOKIE", "")
    if not cookie:
        import json

        entry = json.loads(Path(kit.credential).read_text()).get(kit.host, {})
        cookie = entry.get("cookie", "")
    if not cookie.startswith("webauthn="):
        pytest.skip("no webauthn session cookie for the browser (DERIVA_TEST_COOKIE); source the kit's env file")
    return cookie


class Chaise:
    """A headless Chromium logged in to the local server; checks pages and keeps what it saw."""

    def __init__(self, driver: WebDriver, base: str, out: Path) -> None:
        self.driver = driver
        self.base = base
        self.out = out
        self.page = "start"
        self.console: list[tuple[str, dict[str, Any]]] = []

    def open(self, page: str, url: str) -> None:
        self.collect_console()
        self.page = page
        self.driver.get(url)

    def wait(self, what: str | Callable[[], str], condition: Callable[[WebDriver], Any]) -> Any:
        """Wait until ``condition(driver)`` is truthy; on time-out, a screenshot and a failure saying
        what was awaited (``what``, or ``what()`` then, to tell what was last seen)."""
        from selenium.common.exceptions import (
            NoSuchElementException,
            StaleElementReferenceException,
            TimeoutException,
        )
        from selenium.webdriver.support.ui import WebDriverWait

        waiter = WebDriverWait(
            self.driver,
            WAIT,
            poll_frequency=0.2,
            ignored_exceptions=(NoSuchElementException, StaleElementReferenceException),
        )
        try:
            return waiter.until(condition)
        except TimeoutException:
            shot = self.screenshot("timeout")
            body = self.text("body")
            awaited = what() if callable(what) else what
            pytest.fail(
                f"Chaise {self.page} page: no {awaited} after {WAIT} s (screenshot {shot}); page text:\n{body[:2000]}"
            )

    def text(self, css: str) -> str:
        """The visible text of the first element matching ``css`` ('' when there is none yet)."""
        from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
        from selenium.webdriver.common.by import By

        try:
            return str(self.driver.find_element(By.CSS_SELECTOR, css).text).strip()
        except (NoSuchElementException, StaleElementReferenceException):
            return ""

    def texts(self, css: str) -> list[str]:
        """The visible texts of all elements matching ``css`` ([] while Chaise re-renders them)."""
        from selenium.common.exceptions import StaleElementReferenceException
        from selenium.webdriver.common.by import By

        try:
            return [str(e.text).strip() for e in self.driver.find_elements(By.CSS_SELECTOR, css)]
        except StaleElementReferenceException:
            return []

    def wait_rows(self, css: str, rows: list[dict[str, Any]]) -> list[str]:
        """Wait until the table rows ``css`` are one per Execution row of ``rows``, each showing its
        RID, Description and Status; their texts, in the page's order."""
        seen: list[str] = []

        def listed(_: WebDriver) -> list[str] | None:
            seen[:] = self.texts(css)
            if len(seen) != len(rows):
                return None
            for row in rows:
                lines = [t for t in seen if row["RID"] in t.split()]
                if len(lines) != 1 or row["Description"] not in lines[0] or row["Status"] not in lines[0]:
                    return None
            return list(seen)

        return list(
            self.wait(lambda: f"{len(rows)} rows in {css} (RID, Description, Status; last seen {seen})", listed)
        )

    def wait_text(self, css: str, expected: str) -> None:
        """Wait until the element ``css`` shows exactly ``expected``."""
        seen: list[str] = []

        def shows(_: WebDriver) -> bool:
            seen[:] = [self.text(css)]
            return seen[0] == expected

        self.wait(lambda: f"{css} showing {expected!r} (last seen {seen[0] if seen else ''!r})", shows)

    def wait_contains(self, css: str, needles: list[str]) -> str:
        """Wait until the element ``css`` shows every string of ``needles``; its text."""
        return str(
            self.wait(f"{needles} in {css}", lambda _: (t := self.text(css)) and all(n in t for n in needles) and t)
        )

    def scroll_to(self, css: str) -> None:
        """Scroll ``css`` to the top of the window (Chaise scrolls an inner panel) and wait until it is there."""
        from selenium.webdriver.common.by import By

        element = self.driver.find_element(By.CSS_SELECTOR, css)
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'start'});", element)
        self.wait(
            f"{css} scrolled into view",
            lambda d: d.execute_script(
                "const r = arguments[0].getBoundingClientRect(); return r.top >= 0 && r.top < window.innerHeight / 2;",
                element,
            ),
        )

    def screenshot(self, name: str) -> Path:
        path = self.out / f"chaise-{self.page}{'-' + name if name else ''}.png"
        self.driver.save_screenshot(str(path))
        return path

    def collect_console(self) -> None:
        """Take the browser console's entries so far (get_log empties it), each with the page it came from."""
        try:
            entries: list[dict[str, Any]] = self.driver.get_log("browser")  # type: ignore[no-untyped-call]
        except Exception:  # a driver without the log endpoint: nothing to collect
            entries = []
        self.console += [(self.page, e) for e in entries]

    def severe_errors(self) -> list[str]:
        """SEVERE console messages, less the harmless 404s."""
        bad = []
        for page, entry in self.console:
            if entry.get("level") != "SEVERE":
                continue
            message = str(entry.get("message", ""))
            m = _LOAD_404.match(message)
            if m and urlsplit(m.group(1)).path.endswith(HARMLESS_404):
                continue
            bad.append(f"{page}: {message}")
        return bad

    def write_console_log(self) -> Path:
        path = self.out / "chaise-console.log"
        lines = [f"{page}\t{e.get('level')}\t{e.get('message')}" for page, e in self.console]
        path.write_text("".join(line + "\n" for line in lines))
        return path


@pytest.fixture
def chaise(chaise_url: str, server_login: ServerKit) -> Iterator[Chaise]:
    """Headless Chromium with the admin's session cookie for the local server, or a skip."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not (os.path.exists(p) or shutil.which(p))]
    if missing:
        pytest.skip(f"no {' or '.join(missing)}: apt-get install --no-install-recommends chromium chromium-driver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed (pip install selenium, or the dev extra)")
    cookie = _session_cookie(server_login)

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1400,1000",
        "--ignore-certificate-errors",  # the kit's certificate is from its own CA; loopback only
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    browser = Chaise(driver, chaise_url, artifacts_dir())
    try:
        # A page of the host first: Selenium sets cookies only for the page's own site.
        driver.get(f"{server_login.url}/")
        name, _, value = cookie.partition("=")
        driver.add_cookie({"name": name, "value": value, "path": "/", "secure": server_login.url.startswith("https")})
        yield browser
    finally:
        browser.collect_console()
        browser.write_console_log()
        driver.quit()


def test_chaise_shows_a_pytest_sweep(pytester: pytest.Pytester, server_login: ServerKit, chaise: Chaise) -> None:
    url = server_login.new_catalog()
    try:
        make_project(pytester, {"experiment_chaise.py": SWEEP})
        result = pytester.runpytest("--deriva-run", f"--deriva-catalog={url}", "-p", "no:randomly")
        result.assert_outcomes(passed=len(LRS))
        ml = DerivaML(url)
        try:
            [(parent_rid, links)] = parents_and_children(ml).items()
            child_rids = [link["Nested_Execution"] for link in links]
            rows = {r["RID"]: r for r in ml.catalog.select("deriva-ml", "Execution")}
            [workflow] = ml.catalog.select("deriva-ml", "Workflow", {"RID": rows[parent_rid]["Workflow"]})
            files = {rid: sorted(outputs(ml, rid, "Execution_Asset")) for rid in child_rids}
        finally:
            ml.catalog.close()
        assert [files[rid] for rid in child_rids] == [[f"model-lr{lr}.txt"] for lr in LRS]
        catalog_id = url.rstrip("/").rsplit("/", 1)[1]
        check_parent_record(chaise, catalog_id, rows[parent_rid], [rows[rid] for rid in child_rids], workflow["Name"])
        first = rows[child_rids[0]]
        check_child_record(chaise, catalog_id, first, rows[parent_rid], files[first["RID"]][0])
        check_execution_recordset(chaise, catalog_id, [rows[parent_rid], *(rows[rid] for rid in child_rids)])
        chaise.collect_console()
        errors = chaise.severe_errors()
        assert not errors, "browser console errors (see chaise-console.log):\n" + "\n".join(errors)
    finally:
        server_login.delete_catalog(url)


def check_record_summary(chaise: Chaise, row: dict[str, Any]) -> None:
    """The record page's title and summary show the Execution row's values."""
    chaise.wait_text("#page-title .entity-title", row["RID"])
    chaise.wait_text("#entity-Description", row["Description"])
    chaise.wait_text("#entity-Status", row["Status"])
    chaise.wait_text("#entity-Status-Detail", row["Status_Detail"])
    chaise.wait_text("#entity-Duration", row["Duration"])
    chaise.wait_text("#navheader .username-display", "admin")


def check_sections(chaise: Chaise) -> None:
    """The related sections carry the names our annotations give them, not the raw table names."""
    seen: list[str] = []

    def named(_: WebDriver) -> bool:
        seen[:] = chaise.texts("[id^='rt-heading-'] .chaise-accordion-displayname")
        return seen == SECTIONS

    chaise.wait(lambda: f"related sections {SECTIONS} (last seen {seen})", named)
    body = chaise.text("body")
    assert "Execution_Execution" not in body
    assert "Status_Detail" not in body


def check_parent_record(
    chaise: Chaise, catalog_id: str, parent: dict[str, Any], children: list[dict[str, Any]], workflow: str
) -> None:
    chaise.open("parent-execution", f"{chaise.base}/record/#{catalog_id}/deriva-ml:Execution/RID={parent['RID']}")
    check_record_summary(chaise, parent)
    assert parent["Status_Detail"] == f"{len(children)} of {len(children)} completed"
    chaise.wait_text("#entity-Workflow a", workflow)
    check_sections(chaise)
    chaise.wait_text("#rt-Parent-Executions #no-results-row", "No Results Found")
    # The Child Executions section lists every child with its description and status.
    chaise.wait_rows("#rt-Child-Executions tbody tr.chaise-table-row", children)
    chaise.screenshot("")
    chaise.scroll_to("#rt-heading-Child-Executions")
    chaise.screenshot("children")


def check_child_record(
    chaise: Chaise, catalog_id: str, child: dict[str, Any], parent: dict[str, Any], filename: str
) -> None:
    chaise.open("child-execution", f"{chaise.base}/record/#{catalog_id}/deriva-ml:Execution/RID={child['RID']}")
    check_record_summary(chaise, child)
    check_sections(chaise)
    chaise.wait_contains("#rt-Parent-Executions tbody", [parent["RID"], parent["Description"]])
    # Its output file: one Execution_Asset row whose URL column is a download link named by the file.
    rows_css = "#rt-Execution-Asset tbody tr.chaise-table-row"
    chaise.wait("one Execution Asset row", lambda _: len(chaise.texts(rows_css)) == 1)
    chaise.wait_text(f"{rows_css} a[href*='/hatrac/']", filename)
    chaise.screenshot("")
    chaise.scroll_to("#rt-heading-Execution-Asset")
    chaise.screenshot("asset")


def check_execution_recordset(chaise: Chaise, catalog_id: str, rows: list[dict[str, Any]]) -> None:
    chaise.open("execution-recordset", f"{chaise.base}/recordset/#{catalog_id}/deriva-ml:Execution")
    chaise.wait_text("#page-title", "Execution")
    listed = chaise.wait_rows(".recordset-table.t_Execution tbody tr.chaise-table-row", rows)
    # Newest first, as the table-display annotation asks (rows made in one request share their RCT).
    created = {row["RID"]: datetime.fromisoformat(row["RCT"]) for row in rows}
    order = [created[line.split()[0]] for line in listed]
    assert order == sorted(order, reverse=True), f"not newest first: {[line.split()[0] for line in listed]}"
    chaise.screenshot("")
