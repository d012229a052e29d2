"""How the code imports itself (issue 30), read from the source: every import, function-level ones
included, so a lazy import cannot hide a dependency.

- No circles between modules of app and worker: a circle dodged with a function-level import is
  still one (dispatch -> jobs -> services -> dispatch, and trials -> point_aggregates ->
  trial_records -> trials, were two).
- Storage holds no rules: the database layer imports no service or engine logic, and a migration
  computes only with what it carries, so editing a service cannot change what an old migration does
  to a database upgraded years later.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app"
PROJECT = ("app", "worker")


def _modules() -> dict[str, Path]:
    found = {}
    for top in PROJECT:
        for path in (ROOT / top).rglob("*.py"):
            if "migrations" in path.parts:  # run by Alembic, never imported by the code
                continue
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def imported_modules(source: str, package: str, modules: frozenset[str] = frozenset()) -> set[str]:
    """Every module `source` imports, anywhere in it, relative imports resolved against `package`.
    `from pkg import name` counts as importing pkg.name when that is one of `modules`, else pkg."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            module = (f"{base}.{node.module}" if node.module else base) if node.level else node.module or ""
            found.update(f"{module}.{a.name}" if f"{module}.{a.name}" in modules else module for a in node.names)
    return found


def _package_of(name: str, path: Path) -> str:
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def project_imports(path: Path) -> set[str]:
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    return {m for m in imported_modules(path.read_text(), package) if m.split(".")[0] in PROJECT}


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports (a submodule's import names the module, not its package)."""
    modules = _modules()
    known = frozenset(modules)

    def owner(name: str) -> str:  # `import app.trials.cache` is app.trials.cache, `app.x.func` is app.x
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name

    graph = {}
    for name, path in modules.items():
        imported = imported_modules(path.read_text(), _package_of(name, path), known)
        graph[name] = {owner(m) for m in imported if m.split(".")[0] in PROJECT} - {name, ""}
    return graph


def test_no_module_imports_itself_round_a_circle():
    try:
        list(TopologicalSorter(import_graph()).static_order())
    except CycleError as exc:
        circle = " -> ".join(exc.args[1])
        pytest.fail(f"import circle: {circle}. Move what both sides need to a module both may import, or "
                    "have the lower layer return what the upper one should do (see app/outbox.py)")


def test_the_circle_check_sees_a_lazy_circle():
    graph = import_graph()
    graph["app.db.models"] = graph["app.db.models"] | {"app.trials.cache"}  # as a lazy import would
    with pytest.raises(CycleError):
        list(TopologicalSorter(graph).static_order())


@pytest.mark.parametrize("path", sorted((APP / "db").glob("*.py")), ids=lambda p: p.name)
def test_the_database_layer_imports_no_logic(path):
    allowed = {"app.db", "app.config"} | {f"app.db.{p.stem}" for p in (APP / "db").glob("*.py")}
    assert project_imports(path) <= allowed, f"{path.name} imports {sorted(project_imports(path) - allowed)}"


@pytest.mark.parametrize("path", sorted((ROOT / "alembic" / "versions").glob("0*.py")), ids=lambda p: p.stem)
def test_a_migration_carries_what_it_computes(path):
    assert not project_imports(path), (
        f"{path.name} imports {sorted(project_imports(path))}: copy what it computes into the migration, frozen")


def test_the_checks_see_a_lazy_import():
    source = "def f():\n    from ..trials import recipe_keys\n    import worker.engine.spec\n"
    assert imported_modules(source, "app.db") == {"app.trials", "worker.engine.spec"}
    assert imported_modules(source, "app.db", frozenset({"app.trials.recipe_keys"})) == {
        "app.trials.recipe_keys", "worker.engine.spec"}


def test_the_layer_contracts_hold():
    """`lint-imports` with pyproject.toml's contracts: the engine apart from the service, routes ->
    services -> storage, no route imported, statistics without a database (CI runs it too)."""
    done = subprocess.run([str(Path(sys.executable).parent / "lint-imports")], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:]


def test_a_contract_sees_a_function_level_import(tmp_path):
    """The contracts would catch a lazy import: a storage module reaching up into a service from inside
    a function breaks a layers contract like ours."""
    package = tmp_path / "house"
    for module, body in {"__init__": "", "routes": "from house import services\n",
                         "services": "from house import db\n",
                         "db": "def hook():\n    from house import services  # hidden in a function\n"}.items():
        package.mkdir(exist_ok=True)
        (package / f"{module}.py").write_text(body)
    (tmp_path / ".importlinter").write_text(
        "[importlinter]\nroot_package = house\n\n[importlinter:contract:layers]\nname = layers\n"
        "type = layers\nlayers =\n    house.routes\n    house.services\n    house.db\n")
    done = subprocess.run([str(Path(sys.executable).parent / "lint-imports")], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert done.returncode == 1 and "house.db -> house.services (l.2)" in done.stdout, done.stdout


def function_level_imports_without_a_reason(path: Path) -> list[int]:
    """Lines of `path` that import a project module inside a function with no comment saying why: on
    the line itself, or on a comment line right above the block of imports it belongs to."""
    lines = path.read_text().splitlines()
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    unexplained = []
    for function in ast.walk(ast.parse(path.read_text())):
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(function):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            names = imported_modules(ast.unparse(node), package)
            if not any(n.split(".")[0] in PROJECT for n in names):
                continue
            above = node.lineno - 2
            while above >= 0 and lines[above].strip().startswith(("from ", "import ")):
                above -= 1
            if "#" not in lines[node.lineno - 1] and not (above >= 0 and lines[above].strip().startswith("#")):
                unexplained.append(node.lineno)
    return unexplained


@pytest.mark.parametrize("top", PROJECT)
def test_a_function_level_import_says_why(top):
    """A function-level import between project modules hides a dependency from a reader, so it says
    why it is there (most keep torch, Optuna or Celery out of a process that does not need them)."""
    found = {str(p.relative_to(ROOT)): lines for p in sorted((ROOT / top).rglob("*.py"))
             if "migrations" not in p.parts and (lines := function_level_imports_without_a_reason(p))}
    assert not found, f"function-level imports with no comment saying why (file: lines): {found}"


def test_the_reason_check_reads_comments():
    path = ROOT / "app" / "_probe_for_test.py"
    try:
        path.write_text("def f():\n    from . import jobs\n\n\ndef g():\n    # the engine loads torch\n"
                        "    from . import jobs\n    from .db import session\n\n\ndef h():\n    import json\n")
        assert function_level_imports_without_a_reason(path) == [2]
    finally:
        path.unlink()
