"""The package's structure: dependencies point one way, so no two modules import each other,
not even inside a function (what the layers in README's layout say)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports anywhere in its code (TYPE_CHECKING blocks aside)."""
    files = {_module_name(p): p for p in (SRC / "pytest_deriva").rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in files}
    for module, path in files.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                node.body = [ast.Pass()]  # only for type checkers: not a dependency when the code runs
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1], base]).strip(".")
                # "from pkg import submodule" depends on the submodule; "from mod import name" on mod.
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names]
            else:
                continue
            graph[module].update(t for t in targets if t in files and t != module)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_two_modules_import_each_other() -> None:
    assert cycles(import_graph()) == []


def test_the_checker_sees_a_circle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


TOOLS = "pytest_deriva.tools"


def test_layers_below_do_not_import_layers_above() -> None:
    graph = import_graph()
    above = {
        "pytest_deriva.catalog": ("pytest_deriva.ml", "pytest_deriva.execution", "pytest_deriva.dataset", TOOLS),
        "pytest_deriva.execution": ("pytest_deriva.config", "pytest_deriva.plugin", "pytest_deriva.session", TOOLS),
        "pytest_deriva.dataset": ("pytest_deriva.config", "pytest_deriva.plugin", "pytest_deriva.execution", TOOLS),
        "pytest_deriva.config": ("pytest_deriva.plugin", "pytest_deriva.session", "pytest_deriva.sweep", TOOLS),
        # The plugin (layer 4) uses what the tools use from below them, not the tools themselves.
        "pytest_deriva.plugin": (TOOLS,),
        "pytest_deriva.session": (TOOLS,),
    }
    wrong = [
        (module, target)
        for module, targets in graph.items()
        for layer, forbidden in above.items()
        if module.startswith(layer)
        for target in targets
        if target.startswith(forbidden)
    ]
    assert wrong == []
