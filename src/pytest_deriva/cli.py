"""``deriva-run``: run a hydra-zen configured model as tracked executions (upstream's ``deriva-ml-run``).

::

    deriva-run                                   # the main config (deriva_model) with its defaults
    deriva-run model_config=digits_strong model_config.C=3.0
    deriva-run +experiment=digits_quick dry_run=true
    deriva-run --multirun model_config.C=0.1,1.0 model_config.gamma=0.001,0.01
    deriva-run +multirun=gamma_sweep            # a named sweep from configs/multiruns.py
    deriva-run --multirun hydra/launcher=joblib model_config.C=0.1,1,10
    deriva-run --info                            # config groups, their options, named sweeps
    deriva-run --cfg job +experiment=digits_quick    # Hydra's own flags pass through

The configs are the modules of a config package (``--config-dir``, default ``src/configs`` or
``configs``), loaded with :func:`~pytest_deriva.config.load_configs`. Options ``deriva-run``
does not define are Hydra's, handed to Hydra as they are. Errors in what was asked (an unknown
multirun or config option, an override that does not parse, a config value of the wrong type,
a catalog that does not exist) print what is wrong and the choices, and exit 1 without a
traceback.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

from hydra.errors import CompactHydraException

from pytest_deriva.exceptions import DerivaMLConfigurationError, DerivaMLException

__all__ = ["main"]

PROG = "deriva-run"
DEFAULT_CONFIG_NAME = "deriva_model"


class DerivaRunError(DerivaMLConfigurationError, CompactHydraException):
    """An error Hydra prints as its message alone (no traceback): ours say what to do."""


def _deriva_cause(error: BaseException) -> DerivaMLException | None:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, DerivaMLException):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def task(cfg: Any) -> None:
    """The Hydra task function of ``deriva-run``: :func:`~pytest_deriva.config.run_model_task`.

    pytest-deriva's own errors reach Hydra as compact errors (message only); a model's own
    exception keeps its traceback.
    """
    from hydra.errors import InstantiationException

    from pytest_deriva.config.runner import run_model_task

    try:
        run_model_task(cfg)
    except DerivaRunError:
        raise
    except (DerivaMLException, InstantiationException) as e:
        cause = _deriva_cause(e)
        if cause is None:
            raise
        raise DerivaRunError(f"{type(cause).__name__}: {cause}") from None


# -- arguments -----------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        add_help=False,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run a hydra-zen configured model as tracked executions in a DERIVA catalog.",
        epilog=(
            "Other arguments are Hydra overrides (group=option, key=value, key=v1,v2 to sweep,\n"
            "+multirun=<name>) and Hydra's own flags (--cfg job, --resolve, --info config, --hydra-help).\n\n"
            "examples:\n"
            f"  {PROG} model_config=digits_strong model_config.C=3.0\n"
            f"  {PROG} +experiment=digits_quick dry_run=true\n"
            f"  {PROG} --multirun model_config.C=0.1,1.0 model_config.gamma=0.001,0.01\n"
            f"  {PROG} +multirun=gamma_sweep\n"
            f"  {PROG} --multirun hydra/launcher=joblib model_config.C=0.1,1,10\n"
            f"  {PROG} --info\n"
        ),
    )
    parser.add_argument("--help", "-h", action="store_true", help="Show this help and Hydra's help for the app.")
    parser.add_argument(
        "--config-dir",
        "-cd",
        type=Path,
        default=None,
        help="The config package's folder (default: src/configs, else configs).",
    )
    parser.add_argument(
        "--config-name",
        "-cn",
        default=DEFAULT_CONFIG_NAME,
        help=f"The main config in the hydra-zen store (default: {DEFAULT_CONFIG_NAME}).",
    )
    parser.add_argument("--multirun", "-m", action="store_true", help="Run a sweep (Hydra multirun).")
    parser.add_argument(
        "--info",
        nargs="?",
        const=True,
        default=None,
        metavar="TOPIC",
        help="List the config groups, their options and the named multiruns. With a TOPIC "
        "(config, defaults, searchpath, plugins, all), Hydra's --info TOPIC.",
    )
    parser.add_argument(
        "--allow-dirty",
        action="store_true",
        help="Run a model file with uncommitted changes (its diff is recorded).",
    )
    parser.add_argument(
        "--catalog",
        default=None,
        metavar="LOCATION",
        help="The catalog: a folder (embedded store) or https://host/ermrest/catalog/N; sets deriva_ml.catalog.",
    )
    parser.add_argument(
        "--push",
        default=None,
        metavar="URL",
        help="Afterwards, copy the runs this command recorded in the embedded store to this server catalog "
        "(https://host/ermrest/catalog/N), as 'pytest-deriva push URL' does.",
    )
    return parser


class _Failed(Exception):
    """Stop with a message (printed by main) and exit status 1."""


def _fail(message: str) -> NoReturn:
    raise _Failed(message)


def _split(rest: list[str]) -> tuple[list[str], set[int]]:
    """The Hydra overrides among the remaining arguments, and their positions, found with
    Hydra's own argument parser (so ``--cfg job`` keeps ``job`` as the flag's value)."""
    # Private, but the one @hydra.main itself uses (hydra/main.py); Hydra has no public way to
    # its argument parser, and a copy of its options here would drift from the installed Hydra.
    from hydra._internal.utils import get_args_parser

    hydra_parser = get_args_parser()
    try:
        namespace, unknown = hydra_parser.parse_known_args(rest)
    except SystemExit:
        _fail(f"Cannot read the arguments {' '.join(rest)!r}; see {PROG} --help.")
    if unknown:
        _fail(f"Unknown option(s): {' '.join(unknown)}. See {PROG} --help for {PROG}'s and Hydra's options.")
    overrides: list[str] = list(namespace.overrides or [])
    positions: set[int] = set()
    remaining = list(overrides)
    for i, token in enumerate(rest):
        if remaining and token == remaining[0]:
            positions.add(i)
            remaining.pop(0)
    return overrides, positions


def _config_dir(given: Path | None) -> Path:
    if given is not None:
        folder = given.expanduser().resolve()
        if not folder.is_dir():
            _fail(f"Config directory {given} not found ({folder}); give the folder of the config package.")
        return folder
    for candidate in (Path("src/configs"), Path("configs")):
        if candidate.is_dir():
            return candidate.resolve()
    _fail("No config package: there is no src/configs or configs here; name it with --config-dir.")


def _load(config_dir: Path) -> list[str]:
    from pytest_deriva.config.loading import load_configs

    for folder in (config_dir.parent, config_dir.parent.parent):
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
    if not (config_dir / "__init__.py").is_file():
        _fail(f"{config_dir} is not a Python package (no __init__.py); the configs are its modules.")
    try:
        loaded = load_configs(config_dir.name)
    except Exception as e:
        _fail(f"Loading the configs in {config_dir} failed: {type(e).__name__}: {e}")
    if not loaded:
        _fail(f"No config modules in {config_dir}.")
    return loaded


def _info() -> str:
    from pytest_deriva.config.loading import config_groups
    from pytest_deriva.config.multirun import get_all_multirun_configs

    lines = ["Config groups and their options:"]
    groups = config_groups()
    for group, names in groups.items():
        lines.append(f"\n{group or 'top-level configs'}:")
        lines += [f"  - {n}" for n in names]
    specs = get_all_multirun_configs()
    if specs:
        lines.append("\nmultirun (+multirun=<name>):")
        for name in sorted(specs):
            spec = specs[name]
            first = next((ln.lstrip("#").strip() for ln in spec.description.splitlines() if ln.strip()), "")
            summary = first or ", ".join(spec.overrides)
            lines.append(f"  - {name}: {summary[:77] + '...' if len(summary) > 80 else summary}")
    lines += [
        "",
        f"Usage: {PROG} [options] group=option key=value ...",
        f"       {PROG} --multirun key=v1,v2   |   {PROG} +multirun=<name>",
    ]
    return "\n".join(lines)


def _check_options(overrides: Sequence[str]) -> None:
    """An option that is not in its config group is refused here, with the group's options."""
    from pytest_deriva.config.loading import config_groups
    from pytest_deriva.config.multirun import parse_overrides

    groups = config_groups()
    for override in parse_overrides(overrides):
        group = override.key_or_group
        if group not in groups or not group or override.is_delete() or override.package:
            continue
        values = list(override.sweep_iterator()) if override.is_discrete_sweep() else [override.value()]
        for value in values:
            if isinstance(value, str) and value not in groups[group]:
                _fail(
                    f"Unknown option {value!r} of config group {group!r} (in {override.input_line!r}). "
                    f"Options of {group!r}: {', '.join(groups[group])}."
                )


def _key_value(overrides: Sequence[str], key: str) -> Any:
    from pytest_deriva.config.multirun import parse_overrides

    value: Any = None
    for override in parse_overrides(overrides):
        if override.key_or_group == key and not override.is_sweep_override():
            value = override.value()
    return value


@contextmanager
def _patched(argv: list[str], env: dict[str, str]) -> Iterator[None]:
    saved_argv = sys.argv
    saved_env = {k: os.environ.get(k) for k in env}
    sys.argv = argv
    os.environ.update(env)
    try:
        yield
    finally:
        sys.argv = saved_argv
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _run_hydra(config_name: str, argv: list[str], env: dict[str, str]) -> int:
    import hydra
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    app = hydra.main(config_path=None, config_name=config_name, version_base="1.3")(task)
    saved = HydraConfig.instance().cfg
    with _patched(argv, env):
        try:
            app()
        except SystemExit as e:
            return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        finally:
            # Leave the process as it was (main() may be called again, e.g. from tests).
            HydraConfig.instance().cfg = saved
            GlobalHydra.instance().clear()
    return 0


# -- main ----------------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    """Run ``deriva-run`` with ``argv`` (default: the command line); the exit status."""
    parser = _parser()
    args, rest = parser.parse_known_args(list(sys.argv[1:] if argv is None else argv))
    try:
        return _main(parser, args, rest)
    except _Failed as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1
    except DerivaMLException as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1


def _main(parser: argparse.ArgumentParser, args: argparse.Namespace, rest: list[str]) -> int:
    from hydra_zen import store

    from pytest_deriva.config._overrides import quote
    from pytest_deriva.config.loading import config_groups
    from pytest_deriva.config.multirun import expand_multirun, parse_overrides
    from pytest_deriva.config.runner import CALLBACK_NAME, CALLBACK_TARGET, RUN_LOG_ENV, close_sweeps

    if args.help:
        parser.print_help()
        try:
            config_dir = _config_dir(args.config_dir)
            _load(config_dir)
        except _Failed:
            return 0
        print("\n" + "=" * 30 + " Hydra " + "=" * 30)
        store.add_to_hydra_store(overwrite_ok=True)
        return _run_hydra(args.config_name, [PROG, "--help", *rest], {})

    config_dir = _config_dir(args.config_dir)
    _load(config_dir)
    if args.info is True:
        print(_info())
        return 0

    overrides, positions = _split(rest)
    # +multirun=<name> is replaced in place by its overrides (later ones still apply on top).
    forwarded: list[str] = []
    multirun = args.multirun or any(t in ("--multirun", "-m") for t in rest)
    spec = None
    for i, token in enumerate(rest):
        if i in positions:
            expanded, used = expand_multirun([token])
            forwarded += expanded
            if used is not None:
                spec, multirun = used, True
        else:
            forwarded.append(token)
    overrides, _ = expand_multirun(overrides)
    parse_overrides(overrides)  # a bad override stops here, showing where
    _check_options(overrides)

    top_level = config_groups().get("", [])
    if args.config_name not in top_level:
        _fail(
            f"No main config {args.config_name!r} in the store. Top-level configs: {', '.join(top_level) or '(none)'}. "
            "Register one with store(create_model_config(), name='deriva_model'), or name it with --config-name."
        )

    extra: list[str] = []
    if spec is not None and spec.description:
        # The named sweep's description is its parent's; each child keeps its own config's.
        extra.append(f"++hydra.callbacks.{CALLBACK_NAME}.description={quote(spec.description)}")
    if args.catalog:
        from pytest_deriva.config.deriva_ml_config import DerivaMLConfig

        location = args.catalog
        if "://" not in location:
            location = str(Path(location).expanduser().absolute())
        DerivaMLConfig(catalog=location)  # a catalog that does not exist is refused before Hydra starts
        extra.append(f"++deriva_ml.catalog={quote(location)}")
    if not any(o.split("=", 1)[0].lstrip("+") == "hydra.job.name" for o in overrides):
        extra.append(f"hydra.job.name={PROG}")
    env: dict[str, str] = {}
    if args.allow_dirty or os.environ.get("DERIVA_ML_ALLOW_DIRTY", "").lower() == "true":
        env["DERIVA_ML_ALLOW_DIRTY"] = "true"
    if _key_value([*overrides, *extra], "dry_run") is True:
        env["DERIVA_ML_DRY_RUN"] = "true"  # a dry run does not refuse an uncommitted model file

    outputs = _outputs_root(overrides)
    if outputs is not None:
        # Hydra's own default (outputs/, multirun/ in the current folder) would land in the git tree.
        # The folder quoted as it is, then Hydra's own ${now:...} layout (a quoted value interpolates).
        dated = "/${now:%Y-%m-%d}/${now:%H-%M-%S}'"
        extra.append(f"hydra.run.dir={quote(str(outputs / 'outputs'))[:-1]}{dated}")
        extra.append(f"hydra.sweep.dir={quote(str(outputs / 'multirun'))[:-1]}{dated}")

    with tempfile.TemporaryDirectory(prefix="deriva-run-") as tmp:
        sweep_log = Path(tmp) / "sweeps.txt"
        env[RUN_LOG_ENV] = str(Path(tmp) / "runs.jsonl")
        extra.append(f"++hydra.callbacks.{CALLBACK_NAME}._target_={CALLBACK_TARGET}")
        extra.append(f"++hydra.callbacks.{CALLBACK_NAME}.sweep_log={quote(str(sweep_log))}")
        hydra_argv = [PROG]
        if multirun and "--multirun" not in forwarded and "-m" not in forwarded:
            hydra_argv.append("--multirun")
        if args.info not in (None, True):
            hydra_argv += ["--info", str(args.info)]
        hydra_argv += [*forwarded, *extra]
        store.add_to_hydra_store(overwrite_ok=True)
        push_from = _push_source(args.push, [*overrides, *extra], env) if args.push else None
        before = _execution_rids(push_from) if push_from else set()
        try:
            status = _run_hydra(args.config_name, hydra_argv, env)
        finally:
            # A sweep Hydra stopped before its end (a failed job, Ctrl-C) is closed here.
            close_sweeps(sweep_log)
            _summary(Path(env[RUN_LOG_ENV]))
    if push_from and args.push:
        return _push(push_from, args.push, before) or status
    return status


def _outputs_root(overrides: Sequence[str]) -> Path | None:
    """Where Hydra's ``outputs/`` and ``multirun/`` folders go, out of the user's git tree and out
    of the catalog's folder (they hold the values as typed, secrets too): a folder of this project
    in the system temp folder; None when the command line sets them itself."""
    import hashlib

    from pytest_deriva.ml.deriva_ml import find_project_root

    if any(o.lstrip("+").split("=", 1)[0] in ("hydra.run.dir", "hydra.sweep.dir") for o in overrides):
        return None
    root = find_project_root(Path.cwd())
    tag = hashlib.sha256(str(root).encode()).hexdigest()[:8]  # two projects of one name stay apart
    return Path(tempfile.gettempdir()) / "deriva-run" / f"{root.name}-{tag}"


def _summary(log: Path) -> None:
    """Print the runs this command recorded (as ``pytest --deriva-run`` does) and where Hydra's folders went."""
    from pytest_deriva.config.runner import logged_runs
    from pytest_deriva.report import recorded_rows, summary_lines

    try:
        noted = logged_runs(log)
    except Exception as e:  # the runs are recorded; only the summary of them is lost
        print(f"deriva-run: could not read back the runs recorded: {e}", file=sys.stderr)
        return
    for ml, rids, dirs in noted:
        print("=" * 30 + " deriva: recorded executions " + "=" * 30)
        try:
            rows, sweeps = recorded_rows(ml, rids)
        except DerivaMLException as e:
            print(f"deriva-run: could not read back the runs recorded in {ml.catalog.uri}: {e}", file=sys.stderr)
            continue
        link = functools.partial(ml.catalog.web_url, "deriva-ml:Execution")
        for line in summary_lines(rows, sweeps, ml.catalog.uri, False, link=link):
            print(line)
        if dirs:
            folders = sorted({str(Path(d).parent) if len(dirs) > 1 else d for d in dirs})
            print(f"Hydra's output folders: {', '.join(folders)}")


def _push_source(url: str, overrides: Sequence[str], env: Mapping[str, str]) -> str:
    """The embedded store whose new runs ``--push`` copies: the catalog the runs are recorded in."""
    from pytest_deriva.catalog import is_server_location
    from pytest_deriva.config.deriva_ml_config import DerivaMLConfig

    if not is_server_location(url):
        _fail(f"--push {url!r} is not a server catalog; give https://<host>/ermrest/catalog/<id>.")
    if env.get("DERIVA_ML_DRY_RUN"):
        _fail("--push with dry_run=true: a dry run records nothing to push.")
    named = _key_value(overrides, "deriva_ml.catalog")
    location = str(named) if named else DerivaMLConfig().location
    if is_server_location(location):
        _fail(f"--push copies runs from an embedded store, but these are recorded on {location} already.")
    return location


def _execution_rids(location: str) -> set[str]:
    from pytest_deriva.catalog import connect, is_embedded_catalog

    if not is_embedded_catalog(Path(location)):
        return set()
    catalog = connect(location, read_only=True)
    try:
        return {r["RID"] for r in catalog.select("deriva-ml", "Execution", columns=["RID"])}
    finally:
        catalog.close()


def _push(location: str, url: str, before: set[str]) -> int:
    """Push the executions recorded since ``before``; 0, or 1 when the push was refused or failed."""
    from pytest_deriva.execution.push import push

    new = sorted(_execution_rids(location) - before)
    if not new:
        return 0
    try:
        result = push(location, url, new, progress=print)
    except DerivaMLException as e:
        print(f"Error: not pushed: {e}\nPush them later with: pytest-deriva push {url}", file=sys.stderr)
        return 1
    for line in result.lines(terms=False):  # the terms were said as they were added
        print(line)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
