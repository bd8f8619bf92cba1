"""Sweeps in Hydra's override grammar: parse_sweep, the multirun registry, override quoting."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from pytest_deriva import DerivaMLConfigurationError
from pytest_deriva.config import (
    MultirunSpec,
    expand_multirun,
    get_all_multirun_configs,
    get_multirun_config,
    list_multirun_configs,
    multirun_config,
    parse_sweep,
)
from pytest_deriva.config._overrides import override_value, quote
from pytest_deriva.config.multirun import count_sweep_jobs


@pytest.fixture(autouse=True)
def registry() -> Iterator[None]:
    from pytest_deriva.config import multirun

    saved = dict(multirun._registry)
    multirun._registry.clear()
    yield
    multirun._registry.clear()
    multirun._registry.update(saved)


def hydra_jobs(overrides: list[str]) -> list[list[str]]:
    """The jobs Hydra's own BasicSweeper makes of ``overrides``."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    return BasicSweeper.split_arguments(parsed, None)[0]


@pytest.mark.parametrize(
    "overrides",
    [
        ["model_config.lr=0.1,0.01", "epochs=5,10"],
        ["a=1,2,3", "b=x", "c=range(0,2)"],
        ["+experiment=quick,slow", "model_config.lr=0.5"],
        ["a=1,2", "b=3,4", "a=5,6,7"],  # a key given twice keeps its first place and its last values
        ["x=choice('a b',c)", "y=sort(3,1,2)", "z=[1,2]"],
    ],
)
def test_parse_sweep_runs_in_the_order_and_values_of_hydras_basic_sweeper(overrides: list[str]) -> None:
    combos = parse_sweep(overrides)
    jobs = hydra_jobs(overrides)
    assert len(combos) == len(jobs) == count_sweep_jobs(overrides)
    for combo, job in zip(combos, jobs, strict=True):
        # Each job's overrides, parsed back, give exactly the combination's values.
        expected = {o.key_or_group: o.value() for o in OverridesParser.create().parse_overrides(job)}
        assert combo == expected


def test_parse_sweep_types_values_as_hydra_parses_them() -> None:
    assert parse_sweep(["lr=0.1,1e-3", "n=5", "flag=true", "name='a b'", "none=null", "xs=[1,2]", "d={k:1}"]) == [
        {"lr": 0.1, "n": 5, "flag": True, "name": "a b", "none": None, "xs": [1, 2], "d": {"k": 1}},
        {"lr": 0.001, "n": 5, "flag": True, "name": "a b", "none": None, "xs": [1, 2], "d": {"k": 1}},
    ]
    assert parse_sweep([]) == [{}]


def test_multirun_names_expand_from_the_registry_with_later_overrides_on_top() -> None:
    multirun_config("grid", ["model_config.lr=0.1,0.01", "model_config.epochs=1,2"], description="## Grid")
    combos = parse_sweep(["+multirun=grid", "model_config.epochs=3"])
    assert combos == [
        {"model_config.lr": 0.1, "model_config.epochs": 3},
        {"model_config.lr": 0.01, "model_config.epochs": 3},
    ]
    expanded, spec = expand_multirun(["seed=1", "+multirun=grid", "x=2"])
    assert expanded == ["seed=1", "model_config.lr=0.1,0.01", "model_config.epochs=1,2", "x=2"]
    assert spec is not None
    assert spec.description == "## Grid"


def test_the_registry_api() -> None:
    spec = multirun_config("a", ["x=1,2"], description="first")
    multirun_config("b", ["y=1,2"])
    assert isinstance(spec, MultirunSpec)
    assert list_multirun_configs() == ["a", "b"]
    assert get_multirun_config("a") == MultirunSpec("a", ["x=1,2"], "first")
    assert get_multirun_config("nope") is None
    everything = get_all_multirun_configs()
    everything.clear()  # a copy: the registry keeps its specs
    assert set(get_all_multirun_configs()) == {"a", "b"}
    with pytest.raises(DerivaMLConfigurationError, match="plain name"):
        multirun_config("a,b", [])


def test_an_unknown_multirun_name_lists_the_registered_ones() -> None:
    multirun_config("grid", ["x=1,2"])
    multirun_config("lr_sweep", ["y=1,2"])
    with pytest.raises(DerivaMLConfigurationError) as info:
        parse_sweep(["+multirun=gird"])
    assert "Unknown multirun config 'gird'" in str(info.value)
    assert "grid, lr_sweep" in str(info.value)


def test_an_override_that_does_not_parse_shows_where() -> None:
    with pytest.raises(DerivaMLConfigurationError) as info:
        parse_sweep(["epochs=5,10", "model_config.lr=0.1,,0.01"])
    text = str(info.value)
    assert "'model_config.lr=0.1,,0.01' at character 21" in text
    lines = text.splitlines()
    shown = next(i for i, line in enumerate(lines) if line.strip() == "model_config.lr=0.1,,0.01")
    caret = lines[shown + 1]
    assert caret.index("^") == lines[shown].index("model_config") + 20

    for bad, where in [("epochs", 7), ("a b=1", 2), ("x=1)", 4)]:
        with pytest.raises(DerivaMLConfigurationError, match=rf"at character {where}:"):
            parse_sweep([bad])


@pytest.mark.parametrize(
    ("bad", "message"),
    [("lr=interval(0,1)", "interval sweep"), ("~lr", "cannot delete"), ("=3", "has no key"), ("+multirun=a,b", "one")],
)
def test_sweeps_the_basic_sweeper_cannot_enumerate_are_refused(bad: str, message: str) -> None:
    with pytest.raises(DerivaMLConfigurationError, match=message):
        parse_sweep([bad])


@pytest.mark.parametrize(
    "text",
    ["plain", "it's", "a\\b", "end\\", "## T\n\n| a | b |", "${oops}", "x $ {y}", "\\${z}", "a\\\\'b", "''", "c:\\x y"],
)
def test_quoted_values_read_back_unchanged_through_hydra_and_omegaconf(text: str) -> None:
    override = OverridesParser.create().parse_override(f"description={quote(text)}")
    assert OmegaConf.create({"d": override.value()}).d == text


def test_override_values_round_trip() -> None:
    values = [None, True, 3, 0.5, "abc", "a b", "null", [1, "x"], {"k": 2}]
    for value in values:
        parsed = OverridesParser.create().parse_override(f"v={override_value(value)}").value()
        assert parsed == value, value
