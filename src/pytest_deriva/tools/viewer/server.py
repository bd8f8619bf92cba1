"""Serving the viewer on 127.0.0.1 (werkzeug's threaded server: one user, a few requests at once)."""

from __future__ import annotations

import errno
import sys
import webbrowser
from typing import TYPE_CHECKING

from werkzeug.serving import BaseWSGIServer, make_server

from pytest_deriva.exceptions import DerivaMLException
from pytest_deriva.tools.viewer.app import create_app

if TYPE_CHECKING:
    from pytest_deriva.ml import DerivaML

__all__ = ["DEFAULT_PORT", "HOST", "serve", "start"]

HOST = "127.0.0.1"  # never another interface: the viewer has no login, the catalog's files are private
DEFAULT_PORT = 8765


def start(ml: DerivaML, port: int | None = None) -> BaseWSGIServer:
    """The viewer's server bound to 127.0.0.1:``port`` (not serving yet). ``port`` None: 8765, or
    any free port when 8765 is taken; 0: any free port."""
    app = create_app(ml)
    try:
        return make_server(HOST, DEFAULT_PORT if port is None else port, app, threaded=True)
    except OSError as e:
        if e.errno != errno.EADDRINUSE:
            raise
        if port is None:
            return make_server(HOST, 0, app, threaded=True)
        raise DerivaMLException(
            f"Port {port} on {HOST} is in use: choose another with --port N, or --port 0 for any free port."
        ) from None


def serve(ml: DerivaML, port: int | None = None, open_browser: bool = True) -> None:
    """Serve the viewer until Ctrl-C, printing its URL (and opening it in a browser)."""
    server = start(ml, port)
    url = f"http://{HOST}:{server.server_port}/"
    print(f"pytest-deriva ui: {ml.catalog.uri} at {url} (read-only; Ctrl-C stops it)", flush=True)
    if open_browser:
        webbrowser.open(url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("pytest-deriva ui: stopped", file=sys.stderr)
    finally:
        server.server_close()
