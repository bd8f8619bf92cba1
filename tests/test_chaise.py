"""Chaise, DERIVA's web UI, shows what a pytest sweep recorded on the server: checked in a real
headless Chromium.

A sweep of three parametrized children (one output file each) is recorded with ``pytest
--deriva-run`` in a new catalog of the local server; Chaise's record page of the parent, the record
page of a child and the recordset page of ``deriva-ml:Execution`` are then opened in headless
Chromium (Selenium, logged in with the kit's ``webauthn`` cookie) and checked against what the
catalog holds. Screenshots and the browser console go to ``$PYTEST_DERIVA_ARTIFACTS/chaise/``
(default ``build/test-artifacts/chaise/``; see tests/_browser.py); console errors other than the
kit's harmless 404s fail the test.

Needs the server kit started with ``--with-chaise`` (``.ci/with-server`` does), Debian's
``chromium`` and ``chromium-driver``, and ``selenium`` (the ``dev`` extra); without any of them it
skips with a one-line reason. Select or deselect it with ``-m chaise`` / ``-m "not chaise"``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from _browser import Browser as Chaise
from _browser import chromium
from _plugin_helpers import make_project, outputs, parents_and_children
from conftest import ServerKit
from pytest_deriva import DerivaML

if TYPE_CHECKING:
    from selenium.webdriver.chrome.webdriver import WebDriver

pytestmark = pytest.mark.chaise

# Console errors that are not ours: optional files a Chaise deployment may add, which the kit
# does not (its README lists them), and the site icon the browser asks for by itself.
HARMLESS_404 = ("/chaise/chaise-config.js", "/google-dataset-config.js", "/gtm-id.js", "/favicon.ico")

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


@pytest.fixture
def chaise(chaise_url: str, server_login: ServerKit) -> Iterator[Chaise]:
    """Headless Chromium with the admin's session cookie for the local server, or a skip."""
    with chromium("chaise", chaise_url, HARMLESS_404) as browser:
        cookie = _session_cookie(server_login)
        # A page of the host first: Selenium sets cookies only for the page's own site.
        browser.driver.get(f"{server_login.url}/")
        name, _, value = cookie.partition("=")
        browser.driver.add_cookie(
            {"name": name, "value": value, "path": "/", "secure": server_login.url.startswith("https")}
        )
        yield browser


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
