"""Named parts by kind, each remembering the plugin that registered it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ganzoo.core.errors import DuplicateNameError, UnknownNameError

KINDS = ("strategy", "input policy", "aggregation", "architecture", "dataset", "extractor", "train option")


@dataclass(frozen=True)
class Entry:
    name: str
    part: Any
    plugin: str


class Registry:
    """Holds every registered part; ``get`` raises with a "did you mean" for unknown names."""

    def __init__(self) -> None:
        self._entries: dict[str, dict[str, Entry]] = {kind: {} for kind in KINDS}

    def add(self, kind: str, part: Any, plugin: str) -> None:
        name = part.name
        if not isinstance(name, str) or not name or ":" in name:
            raise ValueError(f"{kind} name must be a non-empty string without ':', got {name!r}")
        table = self._entries[kind]
        if name in table:
            raise DuplicateNameError(
                f"{kind} {name!r} is registered by both plugin {table[name].plugin!r} and plugin {plugin!r}"
            )
        table[name] = Entry(name, part, plugin)

    def replace(self, kind: str, part: Any) -> None:
        """Swap a registered part for an updated copy (same name, same plugin)."""
        old = self.entry(kind, part.name)
        self._entries[kind][part.name] = Entry(part.name, part, old.plugin)

    def remove_plugin(self, plugin: str) -> None:
        for table in self._entries.values():
            for name in [n for n, e in table.items() if e.plugin == plugin]:
                del table[name]

    def entry(self, kind: str, name: str) -> Entry:
        table = self._entries[kind]
        if name not in table:
            raise UnknownNameError(kind, name, table)
        return table[name]

    def get(self, kind: str, name: str) -> Any:
        return self.entry(kind, name).part

    def entries(self, kind: str) -> list[Entry]:
        return sorted(self._entries[kind].values(), key=lambda e: e.name)

    def names(self, kind: str) -> list[str]:
        return [e.name for e in self.entries(kind)]
