"""Generated blocks in a markdown page: the text between two marker comments, which a module renders
(the hook reference from the hook specs, the command reference from the click commands) and a test
compares with the page, so that docs and code never drift."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path


def block_of(text: str, begin: str, end: str) -> str:
    """The generated block of a document, markers included ('' when it has none)."""
    start, stop = text.find(begin), text.find(end)
    return text[start : stop + len(end)] if start >= 0 and stop > start else ""


def main(argv: list[str], render: Callable[[], str], begin: str, end: str, what: str, usage: str) -> int:
    """``python -m MODULE`` prints the block; ``--write FILE.md`` replaces the block in the file (exit 2
    when the file has no markers)."""
    if argv[:1] == ["--write"] and len(argv) == 2:
        path = Path(argv[1])
        text = path.read_text(encoding="utf-8")
        old = block_of(text, begin, end)
        if not old:
            print(f"{path} has no {what} markers", file=sys.stderr)
            return 2
        path.write_text(text.replace(old, render()), encoding="utf-8")
        return 0
    if argv:
        print(f"usage: {usage}", file=sys.stderr)
        return 2
    print(render())
    return 0
