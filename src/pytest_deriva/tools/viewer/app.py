"""The viewer's routes (all GET): the run list, a sweep, a run, a run's file, and plotly.js.

Every page is built from what :mod:`pytest_deriva.tools.runs` reads for the terminal commands
(``list_runs``, ``comparison``, ``describe``), so the browser and ``pytest-deriva show`` never
disagree. A file is looked up by its asset RID and streamed from the catalog's object store; no
path from the URL ever reaches the file system.
"""

from __future__ import annotations

import functools
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, abort, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException

from pytest_deriva.enums import MLVocab, Status
from pytest_deriva.exceptions import DerivaMLDataError, DerivaMLException
from pytest_deriva.report import human_duration
from pytest_deriva.tools import runs as tools
from pytest_deriva.tools.viewer import plots

if TYPE_CHECKING:
    from werkzeug.wrappers import Response as BaseResponse

    from pytest_deriva.ml import DerivaML

__all__ = ["ACTIVE", "REFRESH_SECONDS", "TEXT_LIMIT", "create_app"]

#: A page showing a run in one of these refreshes itself every REFRESH_SECONDS seconds.
ACTIVE = frozenset({Status.initializing.value, Status.created.value, Status.pending.value, Status.running.value})
REFRESH_SECONDS = 5
#: Text files up to this size are shown in the run page; bigger ones (and all others) are downloads.
TEXT_LIMIT = 256 * 1024
DEFAULT_LIMIT = 50
_TEXT_SUFFIXES = frozenset(
    [
        ".txt",
        ".log",
        ".json",
        ".jsonl",
        ".yaml",
        ".yml",
        ".csv",
        ".tsv",
        ".md",
        ".rst",
        ".py",
        ".toml",
        ".ini",
        ".cfg",
        ".diff",
        ".patch",
        ".out",
        ".err",
        ".sh",
        ".xml",
    ]
)
# Metrics sorted lowest first unless asked otherwise (the best of a loss is its lowest).
_LOWER_IS_BETTER = re.compile(r"loss|err|mse|mae|perplexity", re.IGNORECASE)


def create_app(ml: DerivaML) -> Flask:
    """The viewer of the catalog ``ml`` reads (best opened read-only: :func:`tools.runs.open_catalog`)."""
    app = Flask(__name__)
    # One request at a time reads the catalog: the handle's caches are not meant for threads.
    lock = threading.Lock()
    texts = _TextCache(ml)

    def locked(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with lock:
                return view(*args, **kwargs)

        return wrapper

    def chaise(rid: str) -> str | None:
        return ml.catalog.web_url("deriva-ml:Execution", rid)

    @app.context_processor
    def common() -> dict[str, Any]:
        return {"catalog_uri": ml.catalog.uri, "chaise": chaise, "refresh_seconds": REFRESH_SECONDS}

    app.add_template_filter(_cell, "cell")
    app.add_template_filter(human_duration, "duration")
    app.add_template_filter(_short_name, "short")

    @app.get("/")
    @locked
    def run_list() -> tuple[str, int]:
        args = request.args
        form: dict[str, Any] = {
            "status": args.getlist("status"),
            "type": args.get("type", ""),
            "parent": args.get("parent", "").strip(),
            "since": args.get("since", "").strip(),
            "until": args.get("until", "").strip(),
            "param": "; ".join(p for p in args.getlist("param") if p.strip()),
            "metric": "; ".join(m for m in args.getlist("metric") if m.strip()),
            "limit": args.get("limit", str(DEFAULT_LIMIT)).strip(),
        }
        error, records = None, []
        try:
            limit = _limit(form["limit"])
            records = tools.list_runs(
                ml,
                limit or None,
                workflow_type=form["type"] or None,
                status=form["status"] or None,
                parent=form["parent"] or None,
                since=form["since"] or None,
                until=form["until"] or None,
                params=tools.parse_conditions(_split(form["param"]), "param"),
                metrics=tools.parse_conditions(_split(form["metric"]), "metric"),
            )
        except DerivaMLException as e:
            error = str(e)
        types = [t.name for t in ml.list_vocabulary_terms(MLVocab.workflow_type)]
        page = render_template(
            "runs.html",
            title="Runs",
            runs=list(reversed(records)),  # newest first, as a page is read
            form=form,
            error=error,
            statuses=[s.value for s in Status],
            types=types,
            refresh=_active(records),
        )
        return page, 400 if error else 200

    @app.get("/run/<rid>")
    @locked
    def run_page(rid: str) -> str:
        info = _found(lambda: tools.describe(ml, rid))
        environment = next(
            (o for o in info["Outputs"] if o["file"] and o["file"].startswith("environment_snapshot_")), None
        )
        files = [
            {**o, "text": texts.get(o) if _is_text(o) else None, "too_big": _is_text(o) and o["bytes"] > TEXT_LIMIT}
            for o in info["Outputs"]
        ]
        params = sorted({k for c in info["Children"] for k in c if k.startswith("params.")})
        return render_template(
            "run.html",
            title=f"Run {rid}",
            run=info,
            files=files,
            environment=texts.get(environment) if environment else None,
            child_params=params,
            refresh=_active([info, *info["Children"]]),
        )

    @app.get("/sweep/<rid>")
    @locked
    def sweep_page(rid: str) -> BaseResponse | str:
        record = _found(lambda: tools.lookup(ml, rid))
        try:
            found = tools.comparison(ml, [rid])
        except tools.UsageProblem:  # not a sweep: its run page says what it is
            return redirect(url_for("run_page", rid=rid))
        numeric = plots.numeric_metrics(found["runs"], found["metrics"])
        sort = request.args.get("sort") or (numeric[0].removeprefix("metrics.") if numeric else None)
        lower = bool(sort and _LOWER_IS_BETTER.search(sort))
        descending = request.args.get("order", "asc" if lower else "desc") != "asc"
        try:
            tools.rank(found, sort, descending)
        except tools.UsageProblem:  # a metric these runs lack (an old link): their own order
            sort = None
        swept, best = found["varying"], found["best"]
        parcoords, left_out = plots.parallel_coordinates(found["runs"], swept, found["metrics"], sort)
        return render_template(
            "sweep.html",
            title=f"Sweep {rid}",
            sweep=record,
            found=found,
            columns=swept or found["params"],
            sort=sort,
            descending=descending,
            plots=plots.metric_plots(found["runs"], swept, found["metrics"], best),
            parcoords=parcoords,
            left_out=left_out,
            refresh=record.status.value in ACTIVE or _active(found["runs"]),
        )

    @app.get("/file/<rid>")
    @locked
    def download(rid: str) -> Response:
        asset = _found(lambda: ml.lookup_asset(rid))
        folder = Path(tempfile.mkdtemp(prefix="pytest-deriva-ui-"))
        try:
            path = ml.catalog.objects.get(asset.url, folder / "file")
            stream = path.open("rb")
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise

        def chunks() -> Iterator[bytes]:
            try:
                while block := stream.read(1 << 16):
                    yield block
            finally:
                stream.close()
                shutil.rmtree(folder, ignore_errors=True)

        name = asset.filename or asset.rid
        response = Response(chunks(), mimetype="application/octet-stream", direct_passthrough=True)
        response.headers.set("Content-Disposition", "attachment", filename=name)
        response.headers["Content-Length"] = str(path.stat().st_size)
        return response

    @app.get("/plotly.min.js")
    def plotly_js() -> Response:
        response = Response(_plotly_js(), mimetype="text/javascript")
        response.cache_control.public = True
        response.cache_control.max_age = 86400
        return response

    @app.errorhandler(HTTPException)
    def http_error(e: HTTPException) -> tuple[str, int]:
        code = e.code or 500
        return render_template("error.html", title=f"{code} {e.name}", code=code, message=e.description), code

    @app.errorhandler(DerivaMLException)
    def catalog_error(e: DerivaMLException) -> tuple[str, int]:
        return render_template("error.html", title="Catalog error", code=502, message=str(e)), 502

    return app


@functools.cache
def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return str(get_plotlyjs())


def _found(read: Callable[[], Any]) -> Any:
    """``read()``, or a 404 page with its message when the RID is not what the page shows."""
    try:
        return read()
    except DerivaMLDataError as e:  # not a RID, no such row, a row of another table
        abort(404, description=str(e))


def _active(rows: Sequence[Mapping[str, Any]]) -> bool:
    return any(r.get("Status") in ACTIVE for r in rows)


def _split(conditions: str) -> list[str]:
    return [c.strip() for c in conditions.split(";") if c.strip()]


def _limit(text: str) -> int:
    try:
        value = int(text or DEFAULT_LIMIT)
    except ValueError:
        value = -1
    if value < 0:
        raise tools.UsageProblem(f"limit {text!r}: give a whole number of runs, or 0 for all of them.")
    return value


def _is_text(output: Mapping[str, Any]) -> bool:
    return Path(str(output["file"] or "")).suffix.lower() in _TEXT_SUFFIXES


def _cell(value: Any) -> str:
    """A value in a table cell, as the terminal tables show it, but empty for none."""
    return "" if value is None else tools.cell(value)


def _short_name(name: str) -> str:
    return name.removeprefix("params.").removeprefix("metrics.")


class _TextCache:
    """Text files of runs, read once: an object at a URL with a given MD5 never changes."""

    def __init__(self, ml: DerivaML, size: int = 64) -> None:
        self._ml = ml
        self._size = size
        self._texts: dict[tuple[str, str], str | None] = {}

    def get(self, output: Mapping[str, Any]) -> str | None:
        """The file's text (None when it is too big or not text)."""
        if output["bytes"] > TEXT_LIMIT:
            return None
        key = (output["URL"], output["MD5"])
        if key not in self._texts:
            if len(self._texts) >= self._size:
                self._texts.pop(next(iter(self._texts)))
            with tempfile.TemporaryDirectory(prefix="pytest-deriva-ui-") as tmp:
                data = self._ml.catalog.objects.get(output["URL"], Path(tmp) / "file").read_bytes()
            self._texts[key] = None if b"\0" in data else data.decode("utf-8", errors="replace")
        return self._texts[key]
