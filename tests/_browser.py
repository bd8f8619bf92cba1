"""Headless Chromium for the tests that look at web pages (tests/test_chaise.py, tests/test_viewer.py).

Debian's ``chromium`` and ``chromium-driver`` (``CHROMIUM_BIN`` / ``CHROMEDRIVER_BIN`` name others)
driven by Selenium (the ``dev`` extra); without any of them :func:`chromium` skips with a one-line
reason. A :class:`Browser` waits for what a check expects, keeps a screenshot on time-out and
whenever asked, and collects the browser console with the page each entry came from.
Screenshots go to ``$PYTEST_DERIVA_ARTIFACTS/<name>/`` (default ``build/test-artifacts/<name>/``).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest

if TYPE_CHECKING:
    from selenium.webdriver.chrome.webdriver import WebDriver

REPO = Path(__file__).resolve().parent.parent
WAIT = 60  # seconds a page may take to render what a check waits for (1-3 s here)

CHROMIUM = os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER_BIN", "/usr/bin/chromedriver")

_LOAD_404 = re.compile(r"^(\S+) - Failed to load resource: the server responded with a status of 404\b")


def artifacts_dir(name: str) -> Path:
    """Where a test's screenshots and console log go: $PYTEST_DERIVA_ARTIFACTS/<name>, or
    build/test-artifacts/<name> of the repository."""
    env = os.environ.get("PYTEST_DERIVA_ARTIFACTS")
    folder = (Path(env) if env else REPO / "build" / "test-artifacts") / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class Browser:
    """A headless Chromium: opens pages, waits for what a check expects, keeps what it saw.

    ``base`` is the URL of the site under test; ``prefix`` starts every screenshot's name;
    ``harmless_404`` are URL path endings whose 404s are not errors of the page (files a
    deployment may add, the site icon the browser asks for)."""

    def __init__(
        self, driver: WebDriver, out: Path, prefix: str, base: str = "", harmless_404: tuple[str, ...] = ()
    ) -> None:
        self.driver = driver
        self.base = base
        self.out = out
        self.prefix = prefix
        self.harmless_404 = harmless_404
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
                f"{self.prefix} {self.page} page: no {awaited} after {WAIT} s (screenshot {shot}); "
                f"page text:\n{body[:2000]}"
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
        """The visible texts of all elements matching ``css`` ([] while the page re-renders them)."""
        from selenium.common.exceptions import StaleElementReferenceException
        from selenium.webdriver.common.by import By

        try:
            return [str(e.text).strip() for e in self.driver.find_elements(By.CSS_SELECTOR, css)]
        except StaleElementReferenceException:
            return []

    def count(self, css: str) -> int:
        """How many elements match ``css`` now."""
        from selenium.webdriver.common.by import By

        return len(self.driver.find_elements(By.CSS_SELECTOR, css))

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
        """Scroll ``css`` to the top of the window (also inside a scrolling panel) and wait until it is there."""
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
        path = self.out / f"{self.prefix}-{self.page}{'-' + name if name else ''}.png"
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
            if m and urlsplit(m.group(1)).path.endswith(self.harmless_404):
                continue
            bad.append(f"{page}: {message}")
        return bad

    def write_console_log(self) -> Path:
        path = self.out / f"{self.prefix}-console.log"
        lines = [f"{page}\t{e.get('level')}\t{e.get('message')}" for page, e in self.console]
        path.write_text("".join(line + "\n" for line in lines))
        return path


@contextmanager
def chromium(
    name: str, base: str = "", harmless_404: tuple[str, ...] = (), window: str = "1400,1000"
) -> Iterator[Browser]:
    """A headless Chromium for the site at ``base``, its screenshots in :func:`artifacts_dir` ``(name)``, or a skip
    when Chromium, its driver or Selenium is missing. The console log is written when it closes."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not (os.path.exists(p) or shutil.which(p))]
    if missing:
        pytest.skip(f"no {' or '.join(missing)}: apt-get install --no-install-recommends chromium chromium-driver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed (pip install selenium, or the dev extra)")

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={window}",
        "--enable-unsafe-swiftshader",  # software WebGL (plotly's parallel coordinates) on a machine without a GPU
        "--ignore-certificate-errors",  # the server kit's certificate is from its own CA; loopback only
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    browser = Browser(driver, artifacts_dir(name), name, base, harmless_404)
    try:
        yield browser
    finally:
        browser.collect_console()
        browser.write_console_log()
        driver.quit()
