"""Serving the viewer on 127.0.0.1 (werkzeug's threaded server: one user, a few requests at once)."""

from __future__ import annotations

import errno
import socket
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
    """The viewer's server listening on 127.0.0.1:``port`` (not serving yet). ``port`` None: 8765,
    or any free port when 8765 is taken; 0: any free port."""
    try:
        sock = _listen(DEFAULT_PORT if port is None else port)
    except OSError as e:
        if e.errno != errno.EADDRINUSE:
            raise
        if port is not None:
            raise DerivaMLException(
                f"Port {port} on {HOST} is in use: choose another with --port N, or --port 0 for any free port."
            ) from None
        sock = _listen(0)
    # werkzeug's make_server exits the process when it cannot bind: it gets a bound socket instead.
    with sock:
        return make_server(HOST, sock.getsockname()[1], create_app(ml), threaded=True, fd=sock.fileno())


def _listen(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as werkzeug does: no wait after a restart
        sock.bind((HOST, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def serve(ml: DerivaML, port: int | None = None, open_browser: bool = True) -> None:
    """Serve the viewer until Ctrl-C, printing its URL (and opening it in a browser)."""
    server = start(ml, port)
    url = f"http://{HOST}:{server.port}/"
    print(f"pytest-deriva ui: {ml.catalog.uri} at {url} (read-only; Ctrl-C stops it)", flush=True)
    if open_browser:
        webbrowser.open(url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("pytest-deriva ui: stopped", file=sys.stderr)
    finally:
        server.server_close()
