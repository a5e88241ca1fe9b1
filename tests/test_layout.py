"""The helpers package's layout: a folder says a module's role, and imports only go one way.

pattern (the top level) <- servers <- baselines <- bench <- production <- exercises / course

A module may import its own layer and the layers below it, never one above:
the patterns a learner reads import nothing of the course's machinery, and no
import cycle can form across folders. Imports inside functions count too. The
entry points stand above every layer: the package's ``connect()`` /
``connect_sql()``, ``%%redis`` (``magic``) and the command lines (``__main__``).
"""

from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "helpers"
PATTERNS = {"leaderboard", "streams", "orders", "ratelimit"}
WHAT_THE_PATTERNS_NEED = {"keyspace", "scripts", "bounds", "clients"}
# the top level's entry points: they may reach the machinery (connect(), %%redis's connect)
ENTRY_POINTS = {"__init__", "magic"}
LAYERS = {"": 0, "servers": 1, "baselines": 2, "bench": 3, "production": 4, "exercises": 5, "course": 5}


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        found[".".join(parts)] = path
    return found


def helpers_imports(path: Path, name: str) -> set[str]:
    """Every ``helpers...`` module ``path`` imports, at the top or inside a function."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("helpers")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + [base]
                ).strip(".")
            if not base.startswith("helpers"):
                continue
            for (
                alias
            ) in node.names:  # "from helpers.bench import timing" imports the module helpers.bench.timing
                candidate = f"{base}.{alias.name}"
                found.add(
                    candidate if candidate in modules() or f"{candidate}.__init__" in modules() else base
                )
    return {m.removesuffix(".__init__") for m in found}


def layer_of(module: str) -> tuple[str, int]:
    parts = module.split(".")
    folder = parts[1] if len(parts) > 1 and parts[1] in LAYERS else ""
    return folder, LAYERS[folder]


GRAPH = {
    name.removesuffix(".__init__"): helpers_imports(path, name.removesuffix(".__init__"))
    for name, path in modules().items()
}


def test_the_top_level_holds_the_patterns_what_they_need_and_the_entry_points():
    top = {path.stem for path in PACKAGE.glob("*.py")}
    assert top == PATTERNS | WHAT_THE_PATTERNS_NEED | ENTRY_POINTS
    folders = {path.name for path in PACKAGE.iterdir() if path.is_dir() and (path / "__init__.py").exists()}
    assert folders == set(LAYERS) - {""}


THIRD_PARTY_FOR_PATTERNS = {"redis", "tqdm", "numpy"}  # the client, progress bars, a random generator


@pytest.mark.parametrize("name", sorted(PATTERNS | WHAT_THE_PATTERNS_NEED))
def test_a_pattern_needs_only_the_standard_library_redis_py_tqdm_and_numpy(name):
    tree = ast.parse((PACKAGE / f"{name}.py").read_text())
    roots = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    roots |= {
        node.module.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module
    }
    outside = roots - set(sys.stdlib_module_names) - THIRD_PARTY_FOR_PATTERNS - {"helpers", "__future__"}
    assert not outside, f"helpers/{name}.py imports {sorted(outside)}"


@pytest.mark.parametrize("module", sorted(f"helpers.{m}" for m in PATTERNS | WHAT_THE_PATTERNS_NEED))
def test_a_pattern_imports_only_the_standard_library_redis_and_its_neighbours(module):
    allowed = {f"helpers.{m}" for m in PATTERNS | WHAT_THE_PATTERNS_NEED}
    assert GRAPH[module] <= allowed, f"{module} imports {sorted(GRAPH[module] - allowed)}"


def is_entry_point(module: str) -> bool:
    return module == "helpers" or module.split(".")[-1] in ENTRY_POINTS | {"__main__"}


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if not is_entry_point(m)))
def test_imports_go_from_the_machinery_down_to_the_patterns_never_up(module):
    folder, rank = layer_of(module)
    for imported in GRAPH[module]:
        if imported == "helpers":
            pytest.fail(f"{module} imports the package itself; import the module that defines the name")
        other, other_rank = layer_of(imported)
        assert other_rank < rank or other == folder, (
            f"{module} ({folder or 'top'}) imports {imported} ({other})"
        )


def test_there_is_no_import_cycle():
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for imported in sorted(GRAPH.get(module, ())):
            if state.get(imported) == "open":
                cycle = path[path.index(imported) :] + [imported] if imported in path else [module, imported]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if imported not in state:
                visit(imported, [*path, imported])
        state[module] = "done"

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [module])


def test_importing_a_pattern_loads_none_of_the_machinery():
    machinery = sorted(set(LAYERS) - {""})
    code = (
        "import sys, helpers.leaderboard, helpers.streams, helpers.orders, helpers.ratelimit;"
        f"print(sorted(m for m in sys.modules if m.split('.')[:2] in [['helpers', f] for f in {machinery}]))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert loaded.stdout.strip() == "[]"


def test_a_built_wheel_carries_the_lua_scripts_as_package_data(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--quiet",
            "--wheel-dir",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for script in (ROOT / "lua").glob("*.lua"):
        assert f"helpers/lua/{script.name}" in names
    for include in (ROOT / "lua" / "include").glob("*.lua"):
        assert f"helpers/lua/include/{include.name}" in names
    assert "helpers/bench/__main__.py" in names and "helpers/servers/__init__.py" in names
