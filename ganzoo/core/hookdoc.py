"""The hook reference of docs/plugins.md, rendered from the docstrings in ganzoo/hookspecs.py.

    python -m ganzoo.core.hookdoc                      # print it
    python -m ganzoo.core.hookdoc --write docs/plugins.md   # replace the block between the markers

A test compares the file's block with this rendering, so specs and docs never drift.
"""

from __future__ import annotations

import inspect
import re
import sys

from ganzoo.core import docblock, hookspecs

BEGIN = "<!-- hook reference: generated from ganzoo/core/hookspecs.py by `python -m ganzoo.core.hookdoc --write docs/plugins.md`; do not edit by hand -->"
END = "<!-- end of hook reference -->"
GROUPS = (("ganzoo_register_", "Registration hooks"), ("ganzoo_run_", "Per-run observers"),
          (("ganzoo_on_", "ganzoo_add_"), "Observer hooks"), ("ganzoo_sampling_", "Answering hooks"))


def hook_specs() -> list[tuple[str, object]]:
    """(name, function) of every hook spec, in the order of hookspecs.py."""
    specs = [(n, f) for n, f in vars(hookspecs).items() if n.startswith("ganzoo_") and callable(f)]
    return sorted(specs, key=lambda item: item[1].__code__.co_firstlineno)


def signature(name: str, function: object) -> str:
    return f"{name}{inspect.signature(function)}"


def firstresult(function: object) -> bool:
    return bool(getattr(function, "ganzoo_spec", {}).get("firstresult", False))


def _render_one(name: str, function: object) -> str:
    doc = inspect.getdoc(function) or ""
    text, params, returns, since = [], [], ["", "nothing"], "?"
    current: list[str] | None = None
    for line in doc.splitlines():
        param = re.match(r":param (\w+): ?(.*)", line)
        if param:
            params.append([f"`{param[1]}`", param[2]])
            current = params[-1]
        elif line.startswith(":return:"):
            returns = ["", line[len(":return:"):].strip()]
            current = returns
        elif line.startswith(".. versionadded::"):
            since = line.split("::", 1)[1].strip()
            current = None
        elif line.startswith("    ") and current is not None:
            current[1] += " " + line.strip()
        else:
            current = None
            text.append(line)
    body = re.sub(r"\n{3,}", "\n\n", "\n".join(text).strip())
    lines = [f"#### `{signature(name, function)}`", "", body, ""]
    if params:
        lines += ["Arguments:", ""] + [f"- {p}: {d}" for p, d in params] + [""]
    first = "yes (stops at the first non-None result)" if firstresult(function) else "no (every implementation is called)"
    lines += [f"Returns: {returns[1].rstrip('.')}.", "", f"firstresult: {first}. Since: {since}.", ""]
    return "\n".join(lines)


def render() -> str:
    parts = [BEGIN, ""]
    for prefix, title in GROUPS:
        parts += [f"### {title}", ""]
        parts += [_render_one(n, f) for n, f in hook_specs() if n.startswith(prefix)]
    parts.append(END)
    return "\n".join(parts)


def documented_block(text: str) -> str:
    """The generated block of a document, markers included ('' when it has none)."""
    return docblock.block_of(text, BEGIN, END)


def main(argv: list[str]) -> int:
    return docblock.main(argv, render, BEGIN, END, "hook reference", "python -m ganzoo.core.hookdoc [--write FILE.md]")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
