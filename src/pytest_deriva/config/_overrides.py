"""Writing values in Hydra's override grammar (the reverse of its ``OverridesParser``)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["override_value", "quote"]

_PLAIN = re.compile(r"[A-Za-z_][\w./-]*")


def quote(text: str) -> str:
    """``text`` as a single-quoted override value that Hydra and OmegaConf read back unchanged.

    In a quoted value a backslash is an escape only before a quote, before ``${`` or at the end,
    so only those runs of backslashes are doubled; ``'`` and ``${`` (an interpolation) are escaped.
    """
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        j = i
        while j < n and text[j] == "\\":
            j += 1
        special = j == n or text[j] == "'" or text.startswith("${", j)
        out.append("\\" * ((j - i) * 2 if special else j - i))
        if j == n:
            break
        if text[j] == "'":
            out.append("\\'")
            i = j + 1
        elif text.startswith("${", j):
            out.append("\\${")
            i = j + 2
        else:
            out.append(text[j])
            i = j + 1
    return "'" + "".join(out) + "'"


def override_value(value: Any) -> str:
    """A Python value (None, bool, number, str, list, dict) as an override value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ",".join(override_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{k}:{override_value(v)}" for k, v in value.items()) + "}"
    text = str(value)
    if _PLAIN.fullmatch(text) and text.lower() not in ("null", "true", "false", "nan", "inf"):
        return text
    return quote(text)
