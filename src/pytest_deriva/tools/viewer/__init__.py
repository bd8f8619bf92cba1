"""``pytest-deriva ui``: a local, read-only web viewer of the recorded runs.

    from pytest_deriva.tools.viewer import create_app
    create_app(ml).run(port=8765)     # or: pytest-deriva ui [--catalog LOCATION] [--port N]

A Flask application (``app.py``: the routes, GET only) over what ``pytest-deriva runs``, ``show``
and ``compare`` read (:mod:`pytest_deriva.tools.runs`), with plotly figures (``plots.py``) drawn
by the plotly.js that the ``plotly`` wheel ships, served from this app: nothing comes from another
site. ``serve`` runs it on 127.0.0.1 only. Needs the ``ui`` extra: ``pip install 'pytest-deriva[ui]'``.
"""

from __future__ import annotations

from pytest_deriva.tools.viewer.app import create_app
from pytest_deriva.tools.viewer.server import serve

__all__ = ["create_app", "serve"]
