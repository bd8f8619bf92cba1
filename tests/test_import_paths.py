"""DerivaML's import paths: every name its API text documents for ``deriva_ml.execution`` imports
from ``pytest_deriva.execution`` as the object it is where it lives, and importing the module
does not import hydra (issue 10, item 5)."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

import pytest_deriva
import pytest_deriva.execution

# The module-level names of ``../shared/spec/execution-api.txt`` (DerivaML's documentation page
# of ``deriva_ml.execution``): its classes and functions, each an entry with its source. The
# list is written out so the test runs where the spec is not beside the checkout;
# test_the_list_is_what_the_spec_documents checks it against the spec where it is.
SPEC_NAMES = [
    "AssetRID",
    "AssetSpec",
    "AssetSpecConfig",
    "BaseConfig",
    "DerivaMLModel",
    "DescribedList",
    "Execution",
    "ExecutionConfiguration",
    "MultirunSpec",
    "Workflow",
    "create_model_config",
    "get_all_multirun_configs",
    "get_multirun_config",
    "get_notebook_configuration",
    "list_multirun_configs",
    "load_configs",
    "notebook_config",
    "reset_multirun_state",
    "run_model",
    "run_notebook",
    "with_description",
]

SPEC = Path(__file__).resolve().parents[1].parent / "shared" / "spec" / "execution-api.txt"
HYDRA_MODULES = ("hydra", "hydra_zen", "omegaconf")


def documented_names(text: str) -> set[str]:
    """The module-level classes and functions of a mkdocstrings page saved as text.

    Each documented object is followed by ``Source code in src/deriva_ml/...`` and its source,
    dedented, so methods look like functions; a function is module-level when it is not a
    static or class method and its first parameter is not ``self`` or ``cls``. Names that
    examples import (``from deriva_ml.execution import X``) count too.
    """
    names: set[str] = set()
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if not line.startswith("Source code in src/deriva_ml/"):
            continue
        source = iter(lines[i + 1 :])
        decorators = []
        for code in source:
            if not code.startswith("@"):
                break
            decorators.append(code)
        if found := re.match(r"class (\w+)\b", code):
            names.add(found[1])
        elif found := re.match(r"def (\w+)\((.*)", code):
            name, rest = found[1], found[2].strip() or next(source, "").strip()
            method = any(d.startswith(("@staticmethod", "@classmethod")) for d in decorators)
            if not name.startswith("_") and not method and not re.match(r"(self|cls)\b", rest):
                names.add(name)
    for imported in re.findall(r"from deriva_ml\.execution import ([\w, ]+)", text):
        names.update(n.strip() for n in imported.split(",") if n.strip())
    return names


def test_the_list_is_what_the_spec_documents():
    if not SPEC.is_file():
        pytest.skip(f"the API text is not beside the checkout ({SPEC})")
    assert documented_names(SPEC.read_text(encoding="utf-8")) == set(SPEC_NAMES)


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_documented_name_imports_from_the_execution_module(name):
    value = getattr(pytest_deriva.execution, name)
    home = importlib.import_module(value.__module__)
    assert getattr(home, name) is value, f"{name} is not the object defined in {home.__name__}"
    assert getattr(pytest_deriva, name) is value, f"pytest_deriva.{name} is another object"
    assert name in pytest_deriva.execution.__all__


def test_everything_in_all_imports():
    for name in pytest_deriva.execution.__all__:
        assert getattr(pytest_deriva.execution, name) is not None, name
    assert set(SPEC_NAMES) <= set(dir(pytest_deriva.execution))


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="has no attribute 'NoSuchName'"):
        pytest_deriva.execution.NoSuchName  # noqa: B018


def test_importing_the_execution_module_does_not_import_hydra():
    # A fresh interpreter: this one imported hydra long ago for other tests.
    probe = (
        "import sys, pytest_deriva.execution\n"
        f"print(' '.join(m for m in sys.modules if m.split('.')[0] in {HYDRA_MODULES!r} "
        "or m.startswith('pytest_deriva.config')))\n"
        "from pytest_deriva.execution import BaseConfig\n"
        "print('hydra_zen' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    loaded_at_import, loaded_on_use = done.stdout.splitlines()
    assert loaded_at_import == "", f"import pytest_deriva.execution imported: {loaded_at_import}"
    # and the probe can see an import: the first use of a hydra-zen helper brings hydra-zen in
    assert loaded_on_use == "True"
