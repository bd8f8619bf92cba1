"""``pytest-deriva ui``, the local web viewer (issue 11, item 3): its routes over plain HTTP, its
pages in a real headless Chromium (tests/_browser.py), the command itself, and a server catalog.

A sweep over two parameters (``C``, numbers two decades apart, and ``kernel``, text) whose children
write a text file and a binary file, and a single run that fails, are recorded once for the module
by ``pytest --deriva-run`` in a subprocess; the viewer reads that catalog as ``pytest-deriva ui``
does (read-only), served in-process by werkzeug on a free port of 127.0.0.1. Screenshots of every
page go to ``$PYTEST_DERIVA_ARTIFACTS/viewer/`` (default ``build/test-artifacts/viewer/``).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

# Loaded here, before pytester's in-process runs: each run unloads the modules it imported first,
# and a class loaded twice is two classes (an ExecutionConfiguration that is not one).
import pytest_deriva.sweep  # noqa: F401
from _browser import Browser, chromium
from _plugin_helpers import commit, make_project
from conftest import ServerKit
from pytest_deriva import DerivaML, ExecutionConfiguration, Workflow
from pytest_deriva.exceptions import DerivaMLException
from pytest_deriva.tools.runs import open_catalog

pytest.importorskip("flask", reason="the viewer needs the ui extra: pip install -e '.[ui]'")
pytest.importorskip("plotly", reason="the viewer needs the ui extra: pip install -e '.[ui]'")

from pytest_deriva.tools.viewer.server import DEFAULT_PORT, start

CS = (0.1, 1.0, 10.0)
KERNELS = ("rbf", "linear")
BLOB = bytes(range(256)) * 4  # not text: offered as a download, never shown
EXPERIMENTS = """
import pytest


@pytest.mark.deriva(workflow_type="Training", description="C by kernel")
@pytest.mark.parametrize("C", [0.1, 1.0, 10.0])
@pytest.mark.parametrize("kernel", ["rbf", "linear"])
def experiment_svm(C, kernel, execution):
    execution.asset_file_path("Execution_Asset", f"notes-{kernel}-{C}.txt").write_text(f"kernel {kernel}, C {C}\\n")
    execution.asset_file_path("Execution_Asset", f"model-{kernel}-{C}.bin").write_bytes(bytes(range(256)) * 4)
    return {"accuracy": 0.9 + C / 100 - (0.05 if kernel == "linear" else 0), "loss": 1 / (1 + C)}


@pytest.mark.deriva(description="A run that fails")
def experiment_fails(execution):
    raise RuntimeError("diverged at step 3")
"""
# Only these may be named by a page: the viewer itself (and, on a server, Chaise's pages).
_REFERENCE = re.compile(r"""(?:href|src|action)\s*=\s*["']?([^"'\s>]+)|url\(\s*["']?([^"')]+)""", re.IGNORECASE)


# -- the recorded catalog and the viewer over it ---------------------------------------------------
class Recorded:
    """What the module's pytest run recorded: the catalog, the sweep, its children, the failed run."""

    def __init__(self, location: str) -> None:
        self.location = location
        ml = DerivaML(location, read_only=True) if "://" not in location else DerivaML(location)
        try:
            rows = ml.find_executions().to_records()
            [self.sweep] = [r["RID"] for r in rows if r["Description"] == "C by kernel"]
            [self.failed] = [r["RID"] for r in rows if r["Description"] == "A run that fails"]
            self.children = ml.find_executions(parent=self.sweep).to_records()  # in Sequence order
            self.files = {
                c["RID"]: {a.filename: a.rid for a in ml.lookup_execution(c["RID"]).outputs} for c in self.children
            }
        finally:
            ml.catalog.close()
        self.best = max(self.children, key=lambda r: r["metrics.accuracy"])["RID"]


def record(root: Path, catalog: str, env: dict[str, str] | None = None) -> Recorded:
    (root / "pytest.ini").write_text("[pytest]\n")
    (root / "experiment_svm.py").write_text(textwrap.dedent(EXPERIMENTS))
    commit(root)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--deriva-run", f"--deriva-catalog={catalog}", "-p", "no:randomly"],
        cwd=root,
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 1, done.stdout + done.stderr  # the failing run fails
    assert "6 passed, 1 failed" in done.stdout.splitlines()[-1] or "1 failed, 6 passed" in done.stdout, done.stdout
    return Recorded(catalog)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    root = tmp_path_factory.mktemp("viewer-project")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DERIVA_ML_", "GIT_", "PYTEST_"))}
    env |= {"GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"}
    env |= {
        f"GIT_{who}_{what}": "Test" if what == "NAME" else "t@example.org"
        for who in ("AUTHOR", "COMMITTER")
        for what in ("NAME", "EMAIL")
    }
    return record(root, str(root / ".deriva"), env)


@pytest.fixture
def viewer(recorded: Recorded) -> Iterator[str]:
    """The viewer of the recorded catalog, opened as ``pytest-deriva ui`` opens it; its base URL."""
    with serving(open_catalog(recorded.location)) as base:
        yield base


class serving:
    """``with serving(ml) as base_url``: the viewer of ``ml`` on a free port, in a thread; the
    handle is closed afterwards."""

    def __init__(self, ml: DerivaML) -> None:
        self.ml = ml
        self.server = start(ml, 0)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        return f"http://127.0.0.1:{self.server.port}"

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)
        self.ml.catalog.close()


def get(url: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of a request (also for 4xx and 5xx answers); redirects not followed."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, method=method), timeout=60) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def page(url: str, status: int = 200) -> str:
    code, headers, body = get(url)
    assert code == status, f"GET {url}: {code}\n{body.decode()[:3000]}"
    assert headers["Content-Type"].startswith("text/html")
    return body.decode()


def references(html: str) -> list[str]:
    return [a or b for a, b in _REFERENCE.findall(html)]


def foreign(html: str, allowed: tuple[str, ...] = ()) -> list[str]:
    """The URLs a page refers to (links, scripts, styles, forms) that are on another site than the
    viewer's, less ``allowed`` prefixes."""
    return [u for u in references(html) if urlsplit(u).scheme not in ("", "data") and not u.startswith(allowed)]


def refreshes(html: str) -> bool:
    return '<meta http-equiv="refresh"' in html


def rows(html: str, table_id: str) -> list[str]:
    """The data-rid of each row of the table ``table_id``, in order."""
    body = html.split(f'id="{table_id}"', 1)[1].split("</table>", 1)[0]
    return re.findall(r'<tr data-rid="([^"]+)"', body)


# -- the routes, over plain HTTP ----------------------------------------------------------------------
def test_run_list_with_filters(recorded: Recorded, viewer: str) -> None:
    html = page(f"{viewer}/")
    listed = rows(html, "runs")  # newest first (a sweep's children are made at once: in any order)
    assert (listed[0], sorted(listed[1:-1]), listed[-1]) == (
        recorded.failed,
        sorted(c["RID"] for c in recorded.children),
        recorded.sweep,
    )
    assert f'<a class="sweep" href="/sweep/{recorded.sweep}">sweep of 6</a>' in html
    assert html.count(f'<a class="parent" href="/sweep/{recorded.sweep}">') == 6
    assert f'href="/run/{recorded.failed}"' in html
    linear = [c["RID"] for c in recorded.children if c["params.kernel"] == "linear"]
    assert sorted(rows(page(f"{viewer}/?param=kernel%3Dlinear"), "runs")) == sorted(linear)
    assert sorted(rows(page(f"{viewer}/?param=kernel%3Dlinear%3B+C%3E0.5"), "runs")) == sorted(linear[1:])
    assert sorted(rows(page(f"{viewer}/?metric=accuracy%3E%3D0.95"), "runs")) == sorted(
        c["RID"] for c in recorded.children if c["metrics.accuracy"] >= 0.95
    )
    assert rows(page(f"{viewer}/?status=Failed"), "runs") == [recorded.failed]
    assert (
        rows(page(f"{viewer}/?parent={recorded.sweep}&limit=2"), "runs")
        == [c["RID"] for c in recorded.children[-2:]][::-1]
    )
    assert rows(page(f"{viewer}/?type=Training&status=Completed&limit=0"), "runs") == listed[1:]
    assert "No runs match these filters." in page(f"{viewer}/?since=2999-01-01")
    bad = page(f"{viewer}/?param=kernel", 400)
    assert "--param &#39;kernel&#39;: write NAME=VALUE" in bad
    assert "is not a date or time" in page(f"{viewer}/?until=yesterday", 400)
    assert "limit &#39;-3&#39;: give a whole number" in page(f"{viewer}/?limit=-3", 400)
    assert not refreshes(html)  # nothing is running


def test_sweep_page(recorded: Recorded, viewer: str) -> None:
    html = page(f"{viewer}/sweep/{recorded.sweep}")
    by_accuracy = sorted(recorded.children, key=lambda r: -r["metrics.accuracy"])
    assert rows(html, "comparison") == [r["RID"] for r in by_accuracy]
    assert f'<tr data-rid="{recorded.best}" class="best">' in html
    assert html.count('class="best"') == 1
    assert "best by accuracy (highest)" in html
    header = html.split('id="comparison"', 1)[1].split("</thead>", 1)[0]
    assert [re.sub(r"<[^>]+>|[↓↑]", "", h).strip() for h in re.findall(r"<th[^>]*>(.*?)</th>", header, re.S)] == [
        "", "RID", "kernel", "C", "accuracy", "loss", "status", "duration"
    ]  # fmt: skip
    # a loss is best lowest: the default order of a metric named so is ascending
    by_loss = page(f"{viewer}/sweep/{recorded.sweep}?sort=loss")
    best_loss = min(recorded.children, key=lambda r: (r["metrics.loss"], -r["metrics.accuracy"]))
    assert "best by loss (lowest)" in by_loss
    assert rows(by_loss, "comparison")[0] in {
        c["RID"] for c in recorded.children if c["metrics.loss"] == best_loss["metrics.loss"]
    }
    ascending = page(f"{viewer}/sweep/{recorded.sweep}?sort=accuracy&order=asc")
    assert rows(ascending, "comparison") == [r["RID"] for r in reversed(by_accuracy)]
    unsorted = page(f"{viewer}/sweep/{recorded.sweep}?sort=nothing")  # no such metric (an old link): as run
    assert rows(unsorted, "comparison") == [r["RID"] for r in recorded.children]
    assert 'class="best"' not in unsorted
    # one plot per metric and swept parameter, and parallel coordinates of the two parameters
    figures = dict(re.findall(r'<div class="plot[^"]*" id="([^"]+)" data-figure="([^"]+)"', html))
    assert sorted(figures) == sorted(
        ["parcoords", "plot-accuracy-kernel", "plot-accuracy-C", "plot-loss-kernel", "plot-loss-C"]
    )
    import html as markup

    parcoords = json.loads(markup.unescape(figures["parcoords"]))
    [trace] = parcoords["data"]
    assert trace["type"] == "parcoords"
    kernel, c, accuracy, loss = trace["dimensions"]
    assert (kernel["label"], kernel["ticktext"]) == ("kernel", list(KERNELS))  # text as numbered ticks
    assert (c["label"], c["ticktext"]) == ("C", ["0.1", "1", "10"])  # two decades: a log axis
    assert accuracy["label"] == "accuracy"
    assert loss["label"] == "loss"
    scatter = json.loads(markup.unescape(figures["plot-accuracy-C"]))
    assert scatter["layout"]["xaxis"]["type"] == "log"
    assert sorted(scatter["data"][0]["text"]) == sorted(r["RID"] for r in recorded.children)
    # not a sweep: its run page
    code, headers, _ = get(f"{viewer}/sweep/{recorded.failed}")
    assert (code, urlsplit(headers["Location"]).path) == (302, f"/run/{recorded.failed}")


def test_run_pages_and_files(recorded: Recorded, viewer: str) -> None:
    child = recorded.children[0]
    html = page(f"{viewer}/run/{child['RID']}")
    kernel, c = child["params.kernel"], child["params.C"]
    assert f'<a id="parent" href="/sweep/{recorded.sweep}">{recorded.sweep}</a>' in html
    assert f"<tr><th>kernel</th><td>{kernel}</td></tr>" in html
    assert f"<tr><th>C</th><td>{c:g}</td></tr>" in html
    assert f"<tr><th>accuracy</th><td>{child['metrics.accuracy']:.6g}</td></tr>" in html
    assert f"<pre>kernel {kernel}, C {c}\n</pre>" in html  # a text file, inline
    assert "Python" in html.split('id="environment"', 1)[1]  # the environment snapshot
    assert "experiment_svm" in html
    assert "checksum" in html
    files = recorded.files[child["RID"]]
    code, headers, body = get(f"{viewer}/file/{files[f'model-{kernel}-{c}.bin']}")
    assert (code, body) == (200, BLOB)
    assert headers["Content-Disposition"] == f"attachment; filename=model-{kernel}-{c}.bin"
    assert get(f"{viewer}/file/{files[f'notes-{kernel}-{c}.txt']}")[2] == f"kernel {kernel}, C {c}\n".encode()
    assert f"model-{kernel}-{c}.bin</a>" in html
    assert "<pre>" + BLOB.decode("latin-1")[:20] not in html

    failed = page(f"{viewer}/run/{recorded.failed}")
    assert "RuntimeError: diverged at step 3" in failed.split('id="traceback"', 1)[1]
    assert 'class="status status-failed">Failed<' in failed

    sweep = page(f"{viewer}/run/{recorded.sweep}")
    assert f'<a id="compare" href="/sweep/{recorded.sweep}">' in sweep
    assert rows(sweep, "children") == [r["RID"] for r in recorded.children]


def test_unknown_things_are_404_pages_and_only_get_is_served(recorded: Recorded, viewer: str) -> None:
    for path in ("/run/9-ZZZZ", "/sweep/9-ZZZZ", "/run/not-a-rid", "/file/9-ZZZZ", "/nothing/here"):
        html = page(f"{viewer}{path}", 404)
        assert "pytest-deriva runs" in html, path
        assert 'href="/"' in html, path
    assert "does not exist" in page(f"{viewer}/run/9-ZZZZ", 404)
    # a run is not a file: files are found by their asset RID only, never by a path
    assert f"RID {recorded.failed} is a row of Execution, not of an asset table" in page(
        f"{viewer}/file/{recorded.failed}", 404
    )
    assert page(f"{viewer}/file/..%2F..%2Fetc%2Fpasswd", 404)
    for method in ("POST", "PUT", "DELETE"):
        assert get(f"{viewer}/", method)[0] == 405


def test_nothing_comes_from_another_site(recorded: Recorded, viewer: str) -> None:
    from plotly.offline import get_plotlyjs

    paths = ["/", f"/sweep/{recorded.sweep}", f"/run/{recorded.children[0]['RID']}", f"/run/{recorded.failed}"]
    for path in paths:
        html = page(f"{viewer}{path}")
        assert foreign(html) == [], path
        assert 'src="https://cdn' not in html
    code, headers, body = get(f"{viewer}/plotly.min.js")
    assert (code, headers["Content-Type"].split(";")[0]) == (200, "text/javascript")
    assert body.decode() == get_plotlyjs()
    for asset in ("/static/viewer.css", "/static/viewer.js"):
        code, _, body = get(f"{viewer}{asset}")
        assert code == 200, asset
        assert not re.search(rb"https?://", body), asset


def test_pages_refresh_while_a_run_goes(ml: DerivaML, workflow: Workflow) -> None:
    exe = ml.create_execution(ExecutionConfiguration(workflow=workflow, description="still going"))
    with serving(DerivaML(ml.catalog.uri, read_only=True)) as base:
        listed = page(f"{base}/")
        assert refreshes(listed)
        assert "live: refreshes every 5 s" in listed
        assert refreshes(page(f"{base}/run/{exe.execution_rid}"))
        with exe:
            assert refreshes(page(f"{base}/run/{exe.execution_rid}"))  # Running
        exe.upload_execution_outputs()
        assert not refreshes(page(f"{base}/run/{exe.execution_rid}"))
        assert not refreshes(page(f"{base}/"))


# -- in a real browser --------------------------------------------------------------------------------
def wait_plots(browser: Browser, count: int) -> None:
    browser.wait(f"{count} drawn plotly figures", lambda _: browser.count(".js-plotly-plot .main-svg") >= count)


def click(browser: Browser, css: str, path: str) -> None:
    from selenium.webdriver.common.by import By

    browser.driver.find_element(By.CSS_SELECTOR, css).click()
    browser.wait(f"a click on {css} to open {path}", lambda d: urlsplit(d.current_url).path == path)


def full_page(browser: Browser, name: str) -> None:
    """A screenshot of the whole page: the window made as tall as the page, then as it was."""
    size = browser.driver.get_window_size()
    height = browser.driver.execute_script("return document.documentElement.scrollHeight")
    browser.driver.set_window_size(size["width"], height + 200)
    try:
        wait_plots(browser, 5)
        browser.screenshot(name)
    finally:
        browser.driver.set_window_size(size["width"], size["height"])


def loaded_from(browser: Browser) -> list[str]:
    """Every URL the page loaded (the document, scripts, styles, images, fetches)."""
    script = "return performance.getEntriesByType('resource').map(e => e.name)"
    return [browser.driver.current_url, *browser.driver.execute_script(script)]


def test_pages_in_chromium(recorded: Recorded, viewer: str) -> None:
    sweep, failed, best = recorded.sweep, recorded.failed, recorded.best
    with chromium("viewer", viewer, window="1280,900") as browser:
        browser.open("runs", f"{viewer}/")
        browser.wait_contains("#runs tbody", [sweep, failed, "sweep of 6", "Failed"])
        assert len(browser.texts("#runs tbody tr")) == 8
        browser.screenshot("")
        assert all(u.startswith(viewer) for u in loaded_from(browser))
        click(browser, f'#runs tr[data-rid="{sweep}"] a.sweep', f"/sweep/{sweep}")

        browser.page = "sweep"
        browser.wait_contains("#comparison tbody tr.best", [best, "★"])
        assert len(browser.texts("#comparison tbody tr")) == 6
        wait_plots(browser, 5)
        browser.wait("parallel coordinates", lambda _: browser.count("#parcoords .parcoords") == 1)
        # plotly.js would offer to post a figure's data to its cloud: not here
        assert browser.count(".modebar-btn") > 0
        assert browser.texts(".modebar-btn[data-title*='Chart Studio'], .modebar-btn[data-title*='Cloud']") == []
        assert all(u.startswith(viewer) for u in loaded_from(browser))
        browser.screenshot("")
        full_page(browser, "full")  # docs/viewer-sweep.png is this one
        click(browser, f'#comparison tr[data-rid="{best}"] a.rid', f"/run/{best}")

        browser.page = "run"
        browser.wait_text("#rid", best)
        browser.wait_contains("#metrics", ["accuracy", "loss"])
        browser.wait_contains("#outputs", ["notes-", "model-", "environment_snapshot_"])
        browser.screenshot("")
        click(browser, "#parent", f"/sweep/{sweep}")
        wait_plots(browser, 5)

        browser.open("failed-run", f"{viewer}/run/{failed}")
        browser.wait_contains("#traceback", ["RuntimeError: diverged at step 3"])
        browser.wait_contains("#detail", ["diverged at step 3"])
        browser.screenshot("")

        browser.open("filtered", f"{viewer}/?param=kernel%3Dlinear")
        browser.wait("the three linear runs", lambda _: len(browser.texts("#runs tbody tr")) == 3)
        browser.screenshot("")

        browser.collect_console()
        errors = browser.severe_errors()
        assert not errors, "browser console errors (see viewer-console.log):\n" + "\n".join(errors)

        browser.open("not-found", f"{viewer}/run/9-ZZZZ")
        browser.wait_contains("#how", ["pytest-deriva runs"])
        browser.screenshot("")


def test_the_port(recorded: Recorded) -> None:
    """8765, or any free port while 8765 is taken; a port named and taken is an error saying what to do."""
    ml = open_catalog(recorded.location)
    try:
        with socket.socket() as held:
            try:
                held.bind(("127.0.0.1", DEFAULT_PORT))
                held.listen()
            except OSError:
                pass  # something else holds it: as good for this test
            with pytest.raises(DerivaMLException, match=rf"Port {DEFAULT_PORT} on 127.0.0.1 is in use: .*--port 0"):
                start(ml, DEFAULT_PORT)
            server = start(ml, None)
            try:
                assert server.server_address[0] == "127.0.0.1"
                assert server.port != DEFAULT_PORT
            finally:
                server.server_close()
    finally:
        ml.catalog.close()


# -- the command --------------------------------------------------------------------------------------
def test_the_ui_command_serves_on_127_0_0_1(recorded: Recorded) -> None:
    command = [sys.executable, "-m", "pytest_deriva.tools.main", "ui", "--no-browser", "--port", "0"]
    with subprocess.Popen(
        [*command, "--catalog", recorded.location], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            found = re.search(r"at (http://127\.0\.0\.1:\d+/) \(read-only", line)
            assert found, line + (proc.stderr.read() if proc.poll() is not None and proc.stderr else "")
            assert rows(page(found.group(1)), "runs")[0] == recorded.failed
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(30)
    assert proc.returncode == 0


def test_the_ui_command_without_its_extra_or_catalog(tmp_path: Path) -> None:
    no_flask = (
        "import sys; sys.modules['flask'] = None; from pytest_deriva.tools.main import main; sys.exit(main(['ui']))"
    )
    done = subprocess.run([sys.executable, "-c", no_flask], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip().endswith("pip install 'pytest-deriva[ui]'")
    assert len(done.stderr.strip().splitlines()) == 1
    done = subprocess.run(
        [sys.executable, "-m", "pytest_deriva.tools.main", "ui", "--no-browser", "--catalog", str(tmp_path / "none")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert f"No catalog at {tmp_path / 'none'} (from --catalog)" in done.stderr


# -- on a server ---------------------------------------------------------------------------------------
def test_the_viewer_of_a_server_catalog_links_to_chaise(
    pytester: pytest.Pytester, server_login: ServerKit, server_catalog_url: str
) -> None:
    make_project(pytester, {"experiment_svm.py": EXPERIMENTS})
    result = pytester.runpytest("--deriva-run", f"--deriva-catalog={server_catalog_url}", "-p", "no:randomly")
    result.assert_outcomes(passed=6, failed=1)
    found = Recorded(server_catalog_url)
    catalog_id = server_catalog_url.rstrip("/").rsplit("/", 1)[1]
    chaise = f"{server_login.url}/chaise/record/#{catalog_id}/deriva-ml:Execution/RID="
    with serving(open_catalog(server_catalog_url)) as base:
        listed = page(f"{base}/?parent={found.sweep}")
        assert rows(listed, "runs") == [c["RID"] for c in reversed(found.children)]
        child = found.children[0]
        html = page(f"{base}/run/{child['RID']}")
        assert f'<a class="chaise" href="{chaise}{child["RID"]}"' in html
        assert f'<a class="chaise" href="{chaise}{found.sweep}"' in page(f"{base}/sweep/{found.sweep}")
        for text in (listed, html):
            assert foreign(text, (chaise,)) == []
        name = f"model-{child['params.kernel']}-{child['params.C']}.bin"
        assert get(f"{base}/file/{found.files[child['RID']][name]}")[2] == BLOB  # from Hatrac
