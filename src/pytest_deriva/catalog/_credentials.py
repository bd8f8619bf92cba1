"""Where a server location and its credential come from.

A server is named by its ERMrest URL, ``https://<host>/ermrest/catalog/<id>``. Its credential is
found the way the ``deriva`` package finds one, so a user who logged in with ``deriva-auth`` or
``deriva-globus-auth-utils login`` needs nothing more:

1. an explicit credential: a mapping (``{"cookie": ...}`` or ``{"bearer-token": ...}``) or the
   path of a credential file in the ``deriva`` format (``{"<host>": {...}}``);
2. ``DERIVA_CREDENTIAL_FILE`` (such a file) or ``DERIVA_TOKEN`` (a bearer token);
3. ``deriva.core.get_credential(host)``: ``~/.deriva/credential.json`` and Globus tokens.

No credential is anonymous access. A credential is handed to the ``deriva`` client and nowhere
else: it is never logged, recorded or put in an error message.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_deriva.exceptions import DerivaMLConfigurationError

__all__ = ["ServerLocation", "is_server_location", "load_credential", "parse_server_url"]

_SERVER_RE = re.compile(r"^(?P<scheme>https?)://(?P<host>[^/@\s]+)/ermrest/catalog/(?P<id>[^/@\s]+)/?$")


@dataclass(frozen=True)
class ServerLocation:
    """A catalog on a DERIVA server."""

    scheme: str
    host: str
    catalog_id: str

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}/ermrest/catalog/{self.catalog_id}"


def is_server_location(text: str) -> bool:
    """Whether a catalog location names a server (by its URL scheme) rather than a folder."""
    return text.startswith(("http://", "https://"))


def parse_server_url(text: str) -> ServerLocation:
    """Split ``https://<host>/ermrest/catalog/<id>``; anything else is a clear error."""
    m = _SERVER_RE.fullmatch(text.strip())
    if not m:
        raise DerivaMLConfigurationError(
            f"Catalog URL {text!r} is not of the form https://<host>/ermrest/catalog/<id> "
            "(for example https://www.example.org/ermrest/catalog/1)."
        )
    return ServerLocation(m["scheme"], m["host"], m["id"])


def _from_file(path: Path, host: str, origin: str) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
    except OSError as e:
        raise DerivaMLConfigurationError(f"Cannot read the credential file {path} ({origin}): {e.strerror}.") from None
    except ValueError:
        raise DerivaMLConfigurationError(
            f'The credential file {path} ({origin}) is not JSON; it should be {{"{host}": {{"cookie": ...}}}} '
            "as deriva-auth writes it."
        ) from None
    if not isinstance(doc, dict):
        raise DerivaMLConfigurationError(f"The credential file {path} ({origin}) should hold a JSON object.")
    found = doc.get(host, doc.get(host.lower()))
    if found is None and doc.keys() & {"cookie", "bearer-token", "username"}:
        found = doc  # a file holding one host's credential alone
    if not isinstance(found, dict):
        raise DerivaMLConfigurationError(
            f"The credential file {path} ({origin}) has no entry for host {host!r} "
            f"(it has {', '.join(sorted(map(str, doc))) or 'none'}). Log in to {host} with deriva-auth, "
            "or name the file that holds its credential."
        )
    return dict(found)


def load_credential(host: str, credential: Any = None) -> dict[str, Any] | None:
    """The credential for ``host`` (see the module docstring); ``None`` is anonymous."""
    if isinstance(credential, Mapping):
        return dict(credential)
    if isinstance(credential, str | os.PathLike) and os.fspath(credential):
        return _from_file(Path(os.fspath(credential)).expanduser(), host, "named as the credential")
    if credential not in (None, ""):
        raise DerivaMLConfigurationError(
            f"A credential must be a mapping or a credential file path, not {type(credential).__name__}."
        )
    if os.environ.get("DERIVA_CREDENTIAL_FILE"):
        return _from_file(Path(os.environ["DERIVA_CREDENTIAL_FILE"]).expanduser(), host, "DERIVA_CREDENTIAL_FILE")
    if os.environ.get("DERIVA_TOKEN"):
        return {"bearer-token": os.environ["DERIVA_TOKEN"]}
    from deriva.core import get_credential

    # Where deriva's login tools write, as of now (HOME may have changed since deriva was imported).
    webauthn, globus = (Path("~/.deriva", name).expanduser() for name in ("credential.json", "globus-credential.json"))
    if not (webauthn.is_file() or globus.is_file()):
        return None  # never logged in here (and get_credential would write an empty file there)
    try:
        found = get_credential(
            host, credential_file=str(webauthn), globus_credential_file=str(globus), update_bdbag_keychain=False
        )
    except Exception:
        found = None
    return dict(found) if found else None
