"""The shape of the house: layers that import one way (imports inside functions count too), no import
cycles, no module over 400 lines, and plugins that depend on the public core API alone."""

from __future__ import annotations

import ast
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "ganzoo"
BUILTINS = ROOT / "plugins"
EXAMPLE = BUILTINS / "ganzoo-example"
MAX_LINES = 400
# Each layer may import the layers before it (and itself), never one after it.
LAYERS = {"core": 0, "runs": 1, "training": 2, "evaluation": 3, "compare": 4, "api": 4, "tune": 5, "cli": 6, "testing": 7}


def module_name(path: Path) -> str:
    if path.is_relative_to(BUILTINS) and not path.is_relative_to(EXAMPLE):
        parts = ("ganzoo", "plugins", *path.relative_to(BUILTINS).with_suffix("").parts)
    else:
        parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_path(name: str) -> Path | None:
    parts = name.split(".")
    base = BUILTINS.joinpath(*parts[2:]) if parts[:2] == ["ganzoo", "plugins"] else ROOT.joinpath(*parts)
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.exists():
            return path
    return None


def imports(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside a function; ``from a import b`` counts as
    ``a.b`` when that is a module of ours, else as ``a``; relative imports are resolved."""
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else [])) if node.level else node.module
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if module_path(candidate) is not None else base)
    return found


def our_files() -> list[Path]:
    return [*PACKAGE.rglob("*.py"), *(p for p in BUILTINS.rglob("*.py") if not p.is_relative_to(EXAMPLE))]


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in our_files()}
    return {name: {m for m in imports(path) if m in modules and m != name} for name, path in modules.items()}


def layer(name: str) -> int | None:
    parts = name.split(".")
    if parts[0] != "ganzoo" or len(parts) == 1:
        return 0 if name == "ganzoo" else None
    return LAYERS.get(parts[1])


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_ganzoo_has_no_import_cycles():
    edges = graph()
    assert len(edges) > 60 and edges["ganzoo.training.trainer"]  # the graph was read
    assert cycles(edges) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_layers_point_one_way():
    """core <- runs <- training <- evaluation <- compare, api <- cli <- testing (the helpers for tests, which
    drive the CLI): no module imports a later layer, nor one of its own level's other packages (compare and
    api stand side by side)."""
    wrong = []
    for name, targets in graph().items():
        if name.startswith("ganzoo.plugins.") or layer(name) is None:
            continue
        for target in targets:
            if target.startswith("ganzoo.plugins."):
                wrong.append(f"{name} imports the plugin {target}")
            elif layer(target) is not None and (layer(target) > layer(name) or (
                    layer(target) == layer(name) and layer(name) > 0 and target.split(".")[1] != name.split(".")[1])):
                wrong.append(f"{name} imports {target}")
    assert wrong == []


def test_training_reaches_evaluation_only_through_what_it_is_handed():
    for name, targets in graph().items():
        if name.startswith("ganzoo.training"):
            assert not {t for t in targets if t.startswith(("ganzoo.evaluation", "ganzoo.cli"))}, name


def test_no_module_is_over_400_lines():
    files = [*our_files(), *EXAMPLE.rglob("*.py")]
    long = {str(p.relative_to(ROOT)): n for p in files if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


def test_plugins_import_the_public_core_api_alone():
    """A plugin imports ganzoo, ganzoo.core.* and its own package; never training, evaluation, the run
    format, the CLI or another plugin. Its tests may use ganzoo.testing too, and nothing else of ganzoo's."""
    folders = [p for p in BUILTINS.iterdir() if (p / "__init__.py").exists()] + [EXAMPLE]
    assert len(folders) > 15
    wrong = []
    for folder in folders:
        own = "ganzoo_example" if folder == EXAMPLE else f"ganzoo.plugins.{folder.name}"
        for path in folder.rglob("*.py"):
            in_tests = "tests" in path.relative_to(folder).parts
            for name in imports(path):
                if name in ("ganzoo", "ganzoo.core") or name.startswith("ganzoo.core.") or name == own or name.startswith(own + "."):
                    continue
                if in_tests and name == "ganzoo.testing":
                    continue
                if name.startswith(("ganzoo", "plugins")):  # the rest of ganzoo, another plugin (ganzoo_psg, ...)
                    wrong.append(f"{path.relative_to(ROOT)} imports {name}")
    assert wrong == []


def test_the_rule_catches_what_it_should():
    assert layer("ganzoo.training.trainer") == 2 and layer("ganzoo.cli.main") == 6 and layer("ganzoo") == 0
    trainer = imports(PACKAGE / "training" / "trainer.py")
    assert "ganzoo.runs.rundir" in trainer and "ganzoo.training.checkpointing" in trainer
    assert "ganzoo.plugins.gman.aggregation" in imports(BUILTINS / "gman" / "policy.py")


def test_no_source_file_is_git_ignored():
    # A pattern like "runs/" once ignored ganzoo/runs/ itself: the working copy passed and a clean
    # clone of main had no ganzoo.runs.manifest.
    if not (ROOT / ".git").exists() or shutil.which("git") is None:
        pytest.skip("not a git checkout")
    sources = [str(p.relative_to(ROOT)) for d in ("ganzoo", "plugins", "tests") for p in (ROOT / d).rglob("*.py")
               if not {"__pycache__", "build"} & set(p.parts)]  # build/: a wheel's copy, ignored as it should be
    found = subprocess.run(["git", "check-ignore", "--no-index", *sources], cwd=ROOT, capture_output=True, text=True, check=False)
    assert found.returncode in (0, 1), found.stderr
    assert found.stdout.split() == []
