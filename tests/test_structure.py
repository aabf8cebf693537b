"""The shape of the house: no import cycles in ganzoo (imports inside functions count too), no module
far over 400 lines, and plugins that depend on the core alone (no CLI layer, no other plugin)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "ganzoo"
PLUGIN_DIRS = sorted([*ROOT.glob("plugins/ganzoo_*"), ROOT / "plugins" / "ganzoo-example"])
MAX_LINES = 420  # "about 400"
CLI_LAYER = ("ganzoo.cli", "ganzoo.train_command", "ganzoo.train_options")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside a function; ``from a import b`` counts as
    ``a.b`` when that is a module of ours, else as ``a``."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if module_path(candidate) is not None else node.module)
    return found


def module_path(name: str) -> Path | None:
    base = ROOT / Path(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.exists():
            return path
    return None


def core_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in CORE.rglob("*.py")}
    return {name: {m for m in imports(path) if m in modules and m != name} for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
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

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_ganzoo_has_no_import_cycles():
    graph = core_graph()
    assert len(graph) > 30 and graph["ganzoo.training.trainer"]  # the graph was read
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_layers_point_one_way():
    """core imports no other layer; training and evaluation do not import the CLI."""
    for name, targets in core_graph().items():
        if name.startswith("ganzoo.core."):
            assert not {t for t in targets if t.startswith(("ganzoo.training", "ganzoo.evaluation", "ganzoo.cli"))}, name
        if name.startswith(("ganzoo.training.", "ganzoo.evaluation.")):
            assert not {t for t in targets if t.startswith("ganzoo.cli")}, name


def test_no_module_is_far_over_400_lines():
    files = [*CORE.rglob("*.py"), *(p for d in PLUGIN_DIRS for p in d.rglob("*.py"))]
    long = {str(p.relative_to(ROOT)): n for p in files if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


def test_plugins_depend_on_the_core_alone():
    for folder in PLUGIN_DIRS:
        own = folder.name.replace("-", "_")
        for path in folder.rglob("*.py"):
            if "tests" in path.relative_to(folder).parts:
                continue  # a plugin's own tests may drive the CLI
            for name in imports(path):
                where = f"{path.relative_to(ROOT)} imports {name}"
                assert not name.startswith(CLI_LAYER), where
                if name.startswith("ganzoo_"):
                    assert name.split(".")[0] in (own, "ganzoo_example"), where  # its own package only
