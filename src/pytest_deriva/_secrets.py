"""Which parameter values are secrets, and records with them replaced by ``***``.

A name is secret when one of its segments is a secret word: names are split at ``_ - . /``,
spaces and camelCase, so ``api_key``, ``apiKey``, ``AWS_SECRET_ACCESS_KEY`` and
``model_config.api_token`` are secret and ``monkey``, ``keyboard``, ``author`` and
``max_tokens`` are not. Names ending in ``Error``/``Exception``/``Warning`` (``KeyError``) are
exception classes, not parameters. The short options users pass secrets with (``-P``) are secret
too. More names are made secret with ``DERIVA_SECRET_NAMES`` (pytest: ini ``deriva_secret_names``),
and a name is declared not secret with ``DERIVA_NOT_SECRET`` (ini ``deriva_not_secret``), which wins.

The value of a secret name is redacted in every form it is written in: ``name=value``
(arguments and Hydra overrides, ``+name=`` and ``name@pkg=`` too), ``--name value``,
``--name=value``, ``-P value``, ``name: value`` (YAML, logs), nested mappings (everything under a
secret key), and in free text ``name=value``/``name: value`` pairs, URL user info
(``https://user:pw@host``) and ``Bearer <token>``. ``null``, ``true``, ``false`` and a bare
interpolation (``${oc.env:API_TOKEN}``, the way to pass a secret) are kept: they hold none.

Pure functions of the policy; nothing here imports pytest or Hydra, so the execution layer, the
pytest plugin and ``deriva-run`` share them.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "NOT_SECRET_ENV",
    "REDACTED",
    "SECRET_NAMES_ENV",
    "SECRET_OPTIONS",
    "SECRET_WORDS",
    "SecretPolicy",
    "configure",
    "current_policy",
    "is_secret",
    "redact_argv",
    "redact_file",
    "redact_mapping",
    "redact_nodeid",
    "redact_overrides",
    "redact_text",
    "redact_text_file",
    "restore_policy",
    "secret_values",
]

REDACTED = "***"
SECRET_NAMES_ENV = "DERIVA_SECRET_NAMES"  # noqa: S105 - the name of a variable, not a password
NOT_SECRET_ENV = "DERIVA_NOT_SECRET"  # noqa: S105 - the name of a variable, not a password

#: Segments that make a name secret (compared whole: ``key`` matches ``api_key``, not ``monkey``).
SECRET_WORDS = frozenset(
    {
        "token",
        "secret",
        "secrets",
        "password",
        "passwords",
        "passwd",
        "passphrase",
        "pass",
        "pw",
        "pwd",
        "key",
        "apikey",
        "accesskey",
        "secretkey",
        "privatekey",
        "accesstoken",
        "authtoken",
        "credential",
        "credentials",
        "creds",
        "cred",
        "auth",
        "oauth",
        "authorization",
        "cookie",
        "cookies",
        "bearer",
        "jwt",
    }
)
#: Short options whose value is a secret (``mysql -P``, ``--pw``-style tools' short form).
SECRET_OPTIONS = frozenset({"-P"})
# Names with a secret word that hold none: tokenizers' special tokens (ML configs are full of
# them) and the policy's own settings.
_BUILTIN_NOT_SECRET = (
    "pad_token",
    "bos_token",
    "eos_token",
    "unk_token",
    "sep_token",
    "cls_token",
    "mask_token",
    "pad_token_id",
    "bos_token_id",
    "eos_token_id",
    "unk_token_id",
    "sep_token_id",
    "cls_token_id",
    "mask_token_id",
    "decoder_start_token_id",
    "deriva_secret_names",
    "deriva_not_secret",
)
_EXCEPTION_ENDINGS = frozenset({"error", "exception", "warning"})
_KEPT_VALUES = frozenset({"", "null", "none", "~", "true", "false", "???"})
_INTERPOLATION = re.compile(r"\$\{[^{},]*\}")

_COMPONENT_SPLIT = re.compile(r"[./]")
_SEGMENT_SPLIT = re.compile(r"[\s_\-\[\]]+")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
_OVERRIDE = re.compile(r"(?P<name>[+~]{0,2}[A-Za-z_$][\w.\-/@\[\]$]*)=(?P<value>.*)", re.DOTALL)
_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)[^/@\s]+@")
_BEARER = re.compile(r"(?P<word>\b[Bb]earer\s+)[A-Za-z0-9._~+/\-]+=*")
# name=value or name: value in free text (logs, ids, messages, override values): the name,
# quoted or not, not inside a longer word; the value quoted, bracketed or up to a separator.
_PAIR = re.compile(
    r"""(?<![\w.])(?P<q>["']?)(?P<name>[A-Za-z_][\w.\-]*)(?P=q)(?P<sep>\s*[=:]\s*)"""
    r"""(?P<value>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|\[[^\]\n]*\]|\{[^}\n]*\}|[^\s,;)\]}'"]+)"""
)
_ITEM = re.compile(r"[^\s,;)\]}'\"]+")
_PAIR_START = re.compile(r"[+~]{0,2}[A-Za-z_][\w.\-]*\s*[=:]")
_NAME_TOKEN = re.compile(r"[A-Za-z_][\w.\-/]*")


# -- the policy ----------------------------------------------------------------------------------
def _segments(name: str) -> tuple[tuple[str, ...], ...]:
    """``+model_config.apiToken@pkg`` -> ``(("model", "config"), ("api", "token"))``."""
    name = name.strip().lstrip("+~-").split("@", 1)[0]
    components = []
    for component in _COMPONENT_SPLIT.split(name):
        words = [w.lower() for part in _SEGMENT_SPLIT.split(component) for w in _CAMEL.findall(part)]
        if words:
            components.append(tuple(words))
    return tuple(components)


def _names(value: str | Iterable[str] | None) -> tuple[str, ...]:
    """Names from a comma- (or space-) separated string, or from an iterable of such strings."""
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else list(value)
    return tuple(n for item in items for n in re.split(r"[,\s]+", str(item)) if n)


def _flat(components: tuple[tuple[str, ...], ...]) -> tuple[str, ...]:
    return tuple(word for component in components for word in component)


def _contains(flat: tuple[str, ...], words: tuple[str, ...]) -> bool:
    n = len(words)
    return any(flat[i : i + n] == words for i in range(len(flat) - n + 1)) if n else False


def _ends_with(components: tuple[tuple[str, ...], ...], entry: tuple[tuple[str, ...], ...]) -> bool:
    return bool(entry) and len(entry) <= len(components) and components[-len(entry) :] == entry


@dataclass(frozen=True)
class SecretPolicy:
    """Names made secret and names declared not secret, beyond the built-in words.

    ``secret_names``: a name matches when its segments contain the entry's segments in a row
    (``ssn`` makes ``user_ssn`` secret; ``license_number`` makes ``drivers_license_number``
    secret); entries starting with ``-`` are options (``-K``, ``--passcode``).
    ``not_secret``: a name matches when it is the entry or ends with it as dotted components
    (``primary_key`` matches ``model_config.primary_key``); it wins over everything else.
    """

    secret_names: tuple[str, ...] = ()
    not_secret: tuple[str, ...] = ()

    def merged(self, other: SecretPolicy) -> SecretPolicy:
        return SecretPolicy(self.secret_names + other.secret_names, self.not_secret + other.not_secret)

    @functools.cached_property
    def _secret_words(self) -> tuple[tuple[str, ...], ...]:
        return tuple(w for n in self.secret_names if not n.startswith("-") if (w := _flat(_segments(n))))

    @functools.cached_property
    def options(self) -> frozenset[str]:
        """Options (``-P``, ``--passcode``) whose value is a secret."""
        return SECRET_OPTIONS | {n for n in self.secret_names if n.startswith("-")}

    @functools.cached_property
    def _not_secret(self) -> tuple[tuple[tuple[str, ...], ...], ...]:
        return tuple(s for n in self.not_secret if (s := _segments(n)))

    def is_secret(self, name: str) -> bool:
        """Whether values given under ``name`` (a key, a dotted override key, an option) are secret."""
        return _is_secret(self, name)


_BUILTIN_NOT_SECRET_SEGMENTS = tuple(_segments(n) for n in _BUILTIN_NOT_SECRET)


@functools.lru_cache(maxsize=4096)
@functools.lru_cache(maxsize=4096)  # names repeat across the records of a sweep
def _is_secret(policy: SecretPolicy, name: str) -> bool:
    if name in policy.options:
        return True
    components = _segments(name)
    flat = _flat(components)
    if not flat:
        return False
    if any(_ends_with(components, entry) for entry in policy._not_secret):
        return False
    if any(_contains(flat, words) for words in policy._secret_words):
        return True
    if any(_ends_with(components, entry) for entry in _BUILTIN_NOT_SECRET_SEGMENTS):
        return False
    if flat[-1] in _EXCEPTION_ENDINGS:
        return False
    return any(word in SECRET_WORDS for word in flat)


# The process's policy. A module value (not pytest state) because the records are written by
# code that never sees pytest's config: the execution layer, and run_model in Hydra's job
# processes. The pytest plugin sets it from its ini options at configure and restores it at
# unconfigure; the environment variables are read at each use (launchers' processes inherit them).
_configured = SecretPolicy()


@functools.lru_cache(maxsize=16)
def _env_policy(secret: str, not_secret: str) -> SecretPolicy:
    return SecretPolicy(_names(secret), _names(not_secret))


@functools.lru_cache(maxsize=16)
def _merged(configured: SecretPolicy, env: SecretPolicy) -> SecretPolicy:
    return configured.merged(env)


def current_policy() -> SecretPolicy:
    """The configured policy with ``DERIVA_SECRET_NAMES`` and ``DERIVA_NOT_SECRET`` added."""
    env = _env_policy(os.environ.get(SECRET_NAMES_ENV, ""), os.environ.get(NOT_SECRET_ENV, ""))
    return _merged(_configured, env) if env.secret_names or env.not_secret else _configured


def configure(
    secret_names: str | Iterable[str] | None = None, not_secret: str | Iterable[str] | None = None
) -> SecretPolicy:
    """Make ``secret_names`` secret and ``not_secret`` not (each comma-separated or a list), in
    addition to the environment's; returns the policy it replaces (for :func:`restore_policy`)."""
    global _configured
    previous = _configured
    _configured = SecretPolicy(_names(secret_names), _names(not_secret))
    return previous


def restore_policy(policy: SecretPolicy) -> None:
    """Put back a policy :func:`configure` returned."""
    global _configured
    _configured = policy


def is_secret(name: str) -> bool:
    """Whether values given under ``name`` are secret (see the module's docstring)."""
    return _is_secret(current_policy(), name)


# -- values --------------------------------------------------------------------------------------
def _kept(value: str) -> bool:
    """Values that hold no secret and say something: null, booleans, a bare interpolation."""
    text = value.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        text = text[1:-1].strip()
    return text.lower() in _KEPT_VALUES or bool(_INTERPOLATION.fullmatch(text))


def _redact_leaves(value: Any) -> Any:
    """Everything under a secret key: every scalar but null/booleans/interpolations is ``***``."""
    if isinstance(value, Mapping):
        return {k: _redact_leaves(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_redact_leaves(v) for v in value)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and _kept(value):
        return value
    return REDACTED


def secret_values(params: Mapping[str, Any]) -> list[str]:
    """The values given under secret names in ``params`` (nested too), as text: what to look
    for in text the names do not label (tracebacks, messages, test ids)."""
    found: list[str] = []

    def leaves(value: Any) -> None:
        if isinstance(value, Mapping):
            for v in value.values():
                leaves(v)
        elif isinstance(value, list | tuple | set | frozenset):
            for v in value:
                leaves(v)
        elif value is not None and not isinstance(value, bool) and not (isinstance(value, str) and _kept(value)):
            found.append(str(value))

    def walk(mapping: Mapping[Any, Any]) -> None:
        for k, v in mapping.items():
            if is_secret(str(k)):
                leaves(v)
            elif isinstance(v, Mapping):
                walk(v)

    walk(params)
    return sorted(set(found), key=lambda s: (-len(s), s))


def redact_text(text: str, known: Iterable[str] = (), min_known: int = 4) -> str:
    """Free text (a log line, a message, a test id) with secrets replaced by ``***``:
    ``name=value``/``name: value`` pairs with a secret name, URL user info, ``Bearer <token>``,
    and each of the ``known`` secret values of at least ``min_known`` characters."""
    if not known and len(text) <= _CACHED_TEXT:
        return _redact_short_text(current_policy(), text)
    return _redact_text(text, known, min_known)


_CACHED_TEXT = 512  # short texts (descriptions, arguments, values) repeat across a sweep's records


@functools.lru_cache(maxsize=4096)
def _redact_short_text(policy: SecretPolicy, text: str) -> str:
    return _redact_text(text, (), 4)


def _redact_text(text: str, known: Iterable[str], min_known: int) -> str:
    for value in sorted({k for k in known if len(k) >= min_known}, key=len, reverse=True):
        text = text.replace(value, REDACTED)
    text = _URL_USERINFO.sub(lambda m: f"{m['scheme']}{REDACTED}@", text)
    text = _BEARER.sub(lambda m: f"{m['word']}{REDACTED}", text)

    # Not re.sub: a pair that is not secret is searched again from its value on, so that a
    # pair inside it (``experiment.py::experiment_x[token=S]``) is still found.
    out: list[str] = []
    pos = 0
    redacted = False
    while (m := _PAIR.search(text, pos)) is not None:
        value = m["value"]
        out.append(text[pos : m.start("value")])
        if is_secret(m["name"]) and not _kept(value):
            quote = value[0] if value[:1] in ("'", '"') else ""
            out.append(f"{quote}{REDACTED}{quote}")
            redacted = True
            pos = m.end()
            # A sweep's values (token=a,b in multirun.yaml's override_dirname), up to the next pair.
            while not quote and text.startswith(",", pos):
                item = _ITEM.match(text, pos + 1)
                if item is None or _PAIR_START.match(item[0]):
                    break
                pos = item.end()
        else:
            pos = m.start("value")
    if not redacted:
        return text  # nothing taken out: the same string, not a copy (a sweep's rows keep many)
    out.append(text[pos:])
    return "".join(out)


def _redact_override(arg: str) -> str:
    """One ``name=value`` argument or Hydra override (``+name=``, ``name@pkg=``, sweeps ``a,b``)."""
    m = _OVERRIDE.fullmatch(arg)
    if m is None:
        return redact_text(arg)
    name, value = m["name"], m["value"]
    if is_secret(name):
        return arg if _kept(value) else f"{name}={REDACTED}"
    return f"{name}={redact_text(value)}"


def redact_overrides(overrides: Iterable[str]) -> list[str]:
    """Hydra overrides (``model_config.api_token=S``, ``+token=S``, ``token=a,b``) with secret
    values replaced; other values keep their text, with secrets inside them redacted."""
    return [_redact_override(str(o)) for o in overrides]


def _is_option(arg: str) -> bool:
    return arg.startswith("-") and len(arg) > 1 and not re.fullmatch(r"-[\d.]+(e-?\d+)?", arg)


def redact_argv(argv: Iterable[str]) -> list[str]:
    """``argv`` with the values of secret options and arguments replaced by ``***``: ``--pw S``,
    ``--api-key=S``, ``-P S``, ``-PS``, ``token=S``, ``model_config.api_token=S``, URL user info."""
    return list(_redact_argv(current_policy(), tuple(str(a) for a in argv)))


@functools.lru_cache(maxsize=256)  # the same arguments are recorded for every run of a process
def _redact_argv(policy: SecretPolicy, argv: tuple[str, ...]) -> tuple[str, ...]:
    out: list[str] = []
    redact_next = False
    for arg in argv:
        arg = str(arg)
        if redact_next:
            redact_next = False
            if not _is_option(arg):
                out.append(arg if _kept(arg) else REDACTED)
                continue
        if arg.startswith("--") and len(arg) > 2:
            name, eq, value = arg.partition("=")
            if policy.is_secret(name):
                if eq:
                    out.append(arg if _kept(value) else f"{name}={REDACTED}")
                else:
                    out.append(arg)
                    redact_next = True
            else:
                out.append(f"{name}={_redact_override(value)}" if eq else arg)
            continue
        if _is_option(arg):
            short = next((o for o in policy.options if not o.startswith("--") and arg.startswith(o)), None)
            if short is None:
                out.append(arg)
            elif arg == short:
                out.append(arg)
                redact_next = True
            else:  # the value attached: -PS or -P=S
                out.append(short + ("=" if arg[len(short)] == "=" else "") + REDACTED)
            continue
        out.append(_redact_override(arg))
    return tuple(out)


def redact_mapping(obj: Any) -> Any:
    """A copy of ``obj`` (nested mappings and lists, e.g. a parsed YAML or JSON document) with
    everything under a secret key redacted; lists of strings are read as arguments or overrides
    (:func:`redact_argv`), other strings as free text (:func:`redact_text`)."""
    return _redact_mapping(obj, current_policy())


def _redact_mapping(obj: Any, policy: SecretPolicy) -> Any:
    if isinstance(obj, Mapping):
        return {
            k: _redact_leaves(v) if _is_secret(policy, str(k)) else _redact_mapping(v, policy) for k, v in obj.items()
        }
    if isinstance(obj, list | tuple):
        if obj and all(isinstance(v, str) for v in obj):
            return type(obj)(_redact_argv(policy, tuple(obj)))
        return type(obj)(_redact_mapping(v, policy) for v in obj)
    if isinstance(obj, str):
        # The policy was read once for the whole document (each redact_text call reads it anew).
        return _redact_short_text(policy, obj) if len(obj) <= _CACHED_TEXT else redact_text(obj)
    return obj


def redact_nodeid(nodeid: str, params: Mapping[str, Any]) -> str:
    """A pytest node id with the values of secret ``params`` removed from its ``[...]`` part."""
    head, bracket, ids = nodeid.partition("[")
    if not bracket:
        return nodeid
    body, closing = (ids[:-1], "]") if ids.endswith("]") else (ids, "")
    forms = set()
    for value in secret_values(params):
        forms.add(value)
        forms.add(value.encode("unicode_escape").decode("ascii"))  # how pytest shows non-ASCII
    redacted = redact_text(body, forms, min_known=1)
    return nodeid if redacted is body else f"{head}[{redacted}{closing}"


# -- recorded files ------------------------------------------------------------------------------
_YAML_SUFFIXES = frozenset({".yaml", ".yml"})
_TEXT_SUFFIXES = frozenset({".json", ".log", ".txt", ".cfg", ".ini", ".env"}) | _YAML_SUFFIXES


def _may_hold_secret(text: str, policy: SecretPolicy) -> bool:
    """Cheap test before parsing: some word of the text is a secret name, or a URL has user info."""
    if _URL_USERINFO.search(text) or any(o in text for o in policy.options):
        return True
    return any(policy.is_secret(word) for word in set(_NAME_TOKEN.findall(text)))


def _yaml() -> Any:
    # PyYAML comes with omegaconf (a dependency); typed as Any: it ships no type hints.
    return importlib.import_module("yaml")


def _yaml_load(text: str) -> Any:
    yaml = _yaml()
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def _yaml_dump(doc: Any) -> str:
    yaml = _yaml()
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return str(yaml.dump(doc, Dumper=dumper, sort_keys=False, allow_unicode=True, default_flow_style=False))


_YAML_ENTRY = re.compile(
    r"""^\s*(?P<dash>-\s+)?(?P<q>["']?)(?P<key>[^"':#\s][^"':#]*?)(?P=q)\s*:(?:\s+(?P<value>.*?))?\s*$"""
)
_YAML_ITEM = re.compile(r"^\s*-\s+(?P<value>.*?)\s*$")


def _yaml_scalar(text: str) -> tuple[str, str] | None:
    """A one-line YAML scalar: (its string, its quote), or None when it is not a plain one."""
    if len(text) >= 2 and text[0] == text[-1] == '"':
        try:
            value = json.loads(text)
        except ValueError:
            return None
        return (value, '"') if isinstance(value, str) else None
    if len(text) >= 2 and text[0] == text[-1] == "'":
        return text[1:-1].replace("''", "'"), "'"
    if not text or text[0] in "[{&*!|>%@`#" or " #" in text:
        return None
    return text, ""


def _yaml_quoted(value: str, quote: str) -> str:
    if quote == '"':
        return json.dumps(value)
    if quote == "'" or value.startswith("*") or value != value.strip() or ": " in value:
        return "'" + value.replace("'", "''") + "'"
    return value


def _redact_yaml_lines(text: str) -> str:
    """YAML (or YAML-like text) redacted line by line, keeping its layout: a secret key's value,
    every more indented line under a secret key, and each list item or value as text."""
    out: list[str] = []
    under: int | None = None  # indentation of the secret key whose block we are in
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        ending = line[len(body) :]
        indent = len(body) - len(body.lstrip())
        # In a secret key's block: more indented, or a list item at the key's own indentation.
        in_block = under is not None and (indent > under or (indent == under and body.lstrip().startswith("- ")))
        if under is not None and body.strip() and not in_block:
            under = None
        entry = _YAML_ENTRY.match(body)
        item = _YAML_ITEM.match(body)
        if under is not None and body.strip():
            if entry and entry["value"]:
                out.append(body[: entry.start("value")] + _redacted_scalar(entry["value"]) + ending)
            elif item and not entry:
                out.append(body[: item.start("value")] + _redacted_scalar(item["value"]) + ending)
            else:
                out.append(line)
            continue
        if entry:
            key, value = entry["key"], entry["value"]
            if is_secret(key):
                if value:
                    out.append(body[: entry.start("value")] + _redacted_scalar(value) + ending)
                else:
                    under = indent + (len(entry["dash"]) if entry["dash"] else 0)
                    out.append(line)
                continue
            if value:
                out.append(body[: entry.start("value")] + _text_scalar(value, redact_text) + ending)
                continue
        elif item:
            out.append(body[: item.start("value")] + _text_scalar(item["value"], _redact_override) + ending)
            continue
        out.append(redact_text(body) + ending)
    return "".join(out)


def _redacted_scalar(value: str) -> str:
    scalar = _yaml_scalar(value)
    if value.strip() in ("{}", "[]") or (scalar is not None and _kept(scalar[0])):
        return value
    quote = scalar[1] if scalar is not None and scalar[1] else "'"
    return _yaml_quoted(REDACTED, quote)


def _text_scalar(value: str, redact: Callable[[str], str]) -> str:
    scalar = _yaml_scalar(value)
    if scalar is None:
        return redact_text(value)
    new = redact(scalar[0])
    return value if new == scalar[0] else _yaml_quoted(new, scalar[1])


def _redact_yaml(text: str) -> str:
    try:
        doc = _yaml_load(text)
    except Exception:  # not YAML after all (a template, a fragment): redact it as lines
        return _redact_yaml_lines(text)
    redacted = redact_mapping(doc)
    if redacted == doc:
        return text
    # Keep the file as it was written where the line-wise edit means the same as the redacted
    # document; otherwise write the redacted document.
    edited = _redact_yaml_lines(text)
    try:
        if _yaml_load(edited) == redacted:
            return edited
    except Exception:  # noqa: S110 - the edit did not parse: write the redacted document instead
        pass
    return _yaml_dump(redacted)


def _redact_json(text: str) -> str:
    try:
        doc = json.loads(text)
    except ValueError:
        return "".join(redact_text(line) for line in text.splitlines(keepends=True))
    redacted = redact_mapping(doc)
    if redacted == doc:
        return text
    indent = 1 if "\n" in text.strip() else None
    return json.dumps(redacted, indent=indent, ensure_ascii=False) + ("\n" if text.endswith("\n") else "")


def redact_text_file(name: str, data: bytes) -> bytes:
    """The bytes to record for a text file named ``name`` (Hydra's ``config.yaml``,
    ``overrides.yaml``, ``hydra.yaml``, ``multirun.yaml``, a job's ``.log``, a ``.json``) with
    its secrets redacted; ``data`` itself when there is none, or when it is not a text file we
    know (by its suffix) or not UTF-8. YAML and JSON stay valid YAML and JSON."""
    suffix = Path(name).suffix.lower()
    if suffix not in _TEXT_SUFFIXES:
        return data
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return data
    if not _may_hold_secret(text, current_policy()):
        return data
    if suffix in _YAML_SUFFIXES:
        out = _redact_yaml(text)
    elif suffix == ".json":
        out = _redact_json(text)
    else:
        out = "".join(redact_text(line) for line in text.splitlines(keepends=True))
    return data if out == text else out.encode("utf-8")


def redact_file(path: str | os.PathLike[str]) -> bytes | None:
    """The redacted bytes to record for the file at ``path`` instead of the file itself, or
    ``None`` when it can be recorded as it is (nothing secret, or not a text file we know).
    The file is not changed."""
    path = Path(path)
    if path.suffix.lower() not in _TEXT_SUFFIXES:
        return None
    data = path.read_bytes()
    redacted = redact_text_file(path.name, data)
    return None if redacted is data else redacted
