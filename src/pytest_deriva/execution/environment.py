"""The runtime-environment snapshot every execution records, computed once per process.

Only what describes the software is kept: Python, platform, installed distributions, and the
values of a short allow-list of environment variables. Credentials never reach a record: other
variables are not recorded at all, and the values of secret-looking arguments (and any secret in
the allowed variables' values) are redacted by :mod:`pytest_deriva._secrets`.
"""

from __future__ import annotations

import json
import os
import platform
import re
import sys
import threading
from datetime import datetime
from importlib import metadata
from typing import Any

from pytest_deriva._secrets import SecretPolicy, current_policy, redact_argv, redact_text

__all__ = ["environment_snapshot", "get_execution_environment", "redact_argv"]

_ENV_ALLOW = re.compile(
    r"^(VIRTUAL_ENV|CONDA_DEFAULT_ENV|CONDA_PREFIX|PYTHONHASHSEED|PYTHONPATH|LANG|LC_ALL|TZ|"
    r"CUDA_VISIBLE_DEVICES|OMP_NUM_THREADS|MKL_NUM_THREADS|OPENBLAS_NUM_THREADS|"
    r"DERIVA_ML_ALLOW_DIRTY|DERIVA_ML_DRY_RUN|DERIVA_SECRET_NAMES|DERIVA_NOT_SECRET|CI)$"
)
_lock = threading.Lock()
_cached: dict[str, Any] | None = None
# The snapshot's name (fixed for the process) and, per secret policy, its text.
_snapshot_name: str | None = None
_snapshots: dict[SecretPolicy, str] = {}


def _installed_distributions() -> dict[str, str]:
    """Installed distributions (name as the distribution spells it -> version), the first of each
    on ``sys.path``: the one that is imported.

    ``importlib.metadata`` finds them as the import system does (eggs, zips, ``.egg-info`` of
    a ``setup.py develop``, custom finders). Only the ``Name`` and ``Version`` headers of each
    one's metadata are read (:func:`_name_and_version`): parsing the whole file as an e-mail
    message, description included, is what ``dist.metadata`` does, about ten times slower. Names
    are compared normalized (PEP 503), so two spellings of one distribution are one entry.
    """
    found: dict[str, tuple[str, str]] = {}
    for dist in metadata.distributions():
        name, version = _name_and_version(dist)
        if name:
            found.setdefault(_normalized(name), (name, version))
    return dict(found.values())


def _name_and_version(dist: metadata.Distribution) -> tuple[str, str]:
    """The ``Name`` and ``Version`` headers of ``dist``'s metadata (the file
    ``importlib.metadata`` reads: ``METADATA``, ``PKG-INFO``, or an ``.egg-info`` file itself),
    from the header lines before the first blank line."""
    text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or dist.read_text("") or ""
    name = version = ""
    for line in text.splitlines():
        if not line.strip():
            break  # the headers end here; the description follows
        key, sep, value = line.partition(":")
        if not sep or line[:1].isspace():
            continue  # a continuation line: neither Name nor Version is folded
        key = key.strip().lower()
        if key == "name" and not name:
            name = value.strip()
        elif key == "version" and not version:
            version = value.strip()
        if name and version:
            break
    if not name:  # not in the usual form: let the e-mail parser read it
        md = dist.metadata
        return _field(md, "Name"), _field(md, "Version")
    return name, version


def _field(md: metadata.PackageMetadata, key: str) -> str:
    values = md.get_all(key)  # md[key] of a missing field warns from Python 3.12 on
    return str(values[0]) if values else ""


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _processor() -> str:
    """The processor's name: on Linux the ``model name`` of ``/proc/cpuinfo`` (``platform.processor()``
    runs ``uname -p`` in a subprocess there, which says ``x86_64`` or ``unknown``), else
    ``platform.processor()``."""
    if sys.platform.startswith("linux"):
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
                for line in f:
                    key, sep, value = line.partition(":")
                    if sep and key.strip() == "model name":
                        return value.strip()
        except OSError:
            pass
        return platform.machine()
    return platform.processor()


def get_execution_environment() -> dict[str, Any]:
    """Python, platform and package versions of this process (computed once, then reused), its
    allowed environment variables and its arguments, secrets redacted."""
    raw = _raw_environment()
    return {
        **raw,
        "environment": {k: redact_text(v) for k, v in raw["environment"].items()},
        "argv": redact_argv(raw["argv"]),
    }


def _raw_environment() -> dict[str, Any]:
    global _cached
    with _lock:
        if _cached is None:
            dists = sorted(_installed_distributions().items(), key=lambda x: x[0].lower())
            _cached = {
                "python": {
                    "version": sys.version,
                    "implementation": platform.python_implementation(),
                    "executable": sys.executable,
                },
                "platform": {
                    "system": platform.system(),
                    "release": platform.release(),
                    "machine": platform.machine(),
                    "processor": _processor(),
                    "cpu_count": os.cpu_count(),
                },
                "packages": {name: version for name, version in dists},
                "environment": {k: v for k, v in sorted(os.environ.items()) if _ENV_ALLOW.match(k)},
                "argv": list(sys.argv),
            }
        return _cached


def environment_snapshot() -> tuple[str, str]:
    """The snapshot's file name ``environment_snapshot_<YYYYmmdd_HHMMSS>.txt`` and text, made once per process.

    Every execution of the process records the same name and bytes, so the catalog stores one
    object and one ``Execution_Metadata`` row for it however many executions reference it (the
    bytes differ only if the secret policy is changed in between, as tests of it do).
    """
    global _snapshot_name
    policy = current_policy()
    with _lock:
        if _snapshot_name is None:
            _snapshot_name = f"environment_snapshot_{datetime.now().strftime('%Y%m%d_%H%M%S')}.txt"
        name, text = _snapshot_name, _snapshots.get(policy)
    if text is None:
        text = json.dumps(get_execution_environment(), indent=1, sort_keys=True)
        with _lock:
            text = _snapshots.setdefault(policy, text)
    return name, text
