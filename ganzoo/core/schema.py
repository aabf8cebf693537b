"""One small validator for the files ganzoo reads: a schema says what each field must be (type,
range, length, choices), and ``check`` refuses a value that does not fit with one line naming the
file, the field and what was expected. The schemas themselves are in ``ganzoo.runs.schemas``.

A schema is built from the classes below: ``Int(1, 256)``, ``Num()``, ``Str()``, ``Bool()``,
``ListOf(Int(), max_len=8)``, ``Items(Int(), Int(), Int())`` (a fixed-length list),
``Record({"step": Int(), "fid": Opt(Num())})`` (a JSON object: listed keys, others allowed unless
``extra=False``), ``MapOf(Num())`` (an object of any keys), ``Either(Str(), Null())``, ``Anything()``, and
``Described(spec, "words")`` for a spec that says what it wants in its own words.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from ganzoo.core.errors import GanzooError

MAX_NAME = 4096  # a name, a path, a label: far above any real one


class SchemaError(GanzooError):
    """A field that does not fit its schema (exit 2, like all bad input)."""


class Spec:
    """One field's rule: ``fits(value)`` returns None, or (path below this field, what was expected)."""

    def fits(self, value: Any) -> tuple[str, str] | None:
        raise NotImplementedError

    def __str__(self) -> str:  # what a value must be, in words
        raise NotImplementedError


def _bare(what: str) -> tuple[str, str]:
    return "", what


@dataclass(frozen=True)
class Int(Spec):
    lo: int = -(1 << 63)
    hi: int = (1 << 63) - 1

    def fits(self, value):
        return None if type(value) is int and self.lo <= value <= self.hi else _bare(str(self))

    def __str__(self):
        return f"an integer in [{self.lo}, {self.hi}]"


@dataclass(frozen=True)
class Num(Spec):
    """A finite number (an int or a float, not a bool) in [lo, hi]."""

    lo: float = -1e300
    hi: float = 1e300

    def fits(self, value):
        ok = type(value) in (int, float) and math.isfinite(value) and self.lo <= value <= self.hi
        return None if ok else _bare(str(self))

    def __str__(self):
        return "a finite number" if (self.lo, self.hi) == (-1e300, 1e300) else f"a number in [{self.lo:g}, {self.hi:g}]"


@dataclass(frozen=True)
class Str(Spec):
    max_len: int = MAX_NAME
    choices: tuple[str, ...] = ()

    def fits(self, value):
        ok = isinstance(value, str) and len(value) <= self.max_len and (not self.choices or value in self.choices)
        return None if ok else _bare(str(self))

    def __str__(self):
        return f"one of {', '.join(map(repr, self.choices))}" if self.choices else f"a text of at most {self.max_len} characters"


@dataclass(frozen=True)
class Bool(Spec):
    def fits(self, value):
        return None if type(value) is bool else _bare("true or false")

    def __str__(self):
        return "true or false"


@dataclass(frozen=True)
class Null(Spec):
    def fits(self, value):
        return None if value is None else _bare("null")

    def __str__(self):
        return "null"


@dataclass(frozen=True)
class Anything(Spec):
    def fits(self, value):
        return None

    def __str__(self):
        return "anything"


@dataclass(frozen=True)
class Either(Spec):
    options: tuple[Spec, ...]

    def __init__(self, *options: Spec):
        object.__setattr__(self, "options", options)

    def fits(self, value):
        problems = [spec.fits(value) for spec in self.options]
        if any(p is None for p in problems):
            return None
        deeper = [p for p in problems if p[0]]  # the right type, a wrong field inside: say which
        return deeper[0] if len(deeper) == 1 else _bare(str(self))

    def __str__(self):
        return " or ".join(map(str, self.options))


@dataclass(frozen=True)
class ListOf(Spec):
    item: Spec
    min_len: int = 0
    max_len: int = 1 << 20

    def fits(self, value):
        if not isinstance(value, list) or not self.min_len <= len(value) <= self.max_len:
            return _bare(str(self))
        for index, item in enumerate(value):
            if (problem := self.item.fits(item)) is not None:
                return f"[{index}]{problem[0]}", problem[1]
        return None

    def __str__(self):
        size = f"{self.min_len} to {self.max_len}" if self.min_len != self.max_len else str(self.min_len)
        return f"a list of {size} items, each {self.item}"


@dataclass(frozen=True)
class Items(Spec):
    """A list of exactly these items, in order (an image shape: channels, height, width)."""

    items: tuple[Spec, ...]

    def __init__(self, *items: Spec):
        object.__setattr__(self, "items", items)

    def fits(self, value):
        if not isinstance(value, list) or len(value) != len(self.items):
            return _bare(str(self))
        for index, (spec, item) in enumerate(zip(self.items, value)):
            if (problem := spec.fits(item)) is not None:
                return f"[{index}]{problem[0]}", problem[1]
        return None

    def __str__(self):
        return f"a list of {len(self.items)} items ({'; '.join(map(str, self.items))})"


@dataclass(frozen=True)
class Described(Spec):
    """``spec`` with its own words for what a value must be."""

    spec: Spec
    words: str

    def fits(self, value):
        found = self.spec.fits(value)
        return None if found is None else (found[0], found[1] if found[0] else self.words)

    def __str__(self):
        return self.words


@dataclass(frozen=True)
class Opt:
    """A key of a Record that may be absent (when present, it must fit ``spec``)."""

    spec: Spec


@dataclass(frozen=True)
class Record(Spec):
    fields: dict[str, Spec | Opt]
    extra: bool = True  # keys the schema does not list are allowed (plugins' and newer versions' fields)
    max_keys: int = 1 << 16

    def fits(self, value):
        if not isinstance(value, dict) or len(value) > self.max_keys:
            return _bare(str(self))
        for key, spec in self.fields.items():
            if key not in value:
                if isinstance(spec, Opt):
                    continue
                return f".{key}", "present"
            if (problem := (spec.spec if isinstance(spec, Opt) else spec).fits(value[key])) is not None:
                return f".{key}{problem[0]}", problem[1]
        if not self.extra:
            unknown = sorted(k for k in value if k not in self.fields)
            if unknown:
                return f".{_short(unknown[0], 40)}", "absent (not a field of this file)"
        return None

    def __str__(self):
        return "an object" + (f" with {', '.join(self.fields)}" if self.fields else "")


@dataclass(frozen=True)
class MapOf(Spec):
    """An object of any keys (texts), every value fitting ``value``."""

    value: Spec
    max_keys: int = 1 << 16

    def fits(self, value):
        if not isinstance(value, dict) or len(value) > self.max_keys:
            return _bare(str(self))
        for key, item in value.items():
            if len(key) > MAX_NAME:
                return f".{_short(key, 40)}", f"a key of at most {MAX_NAME} characters"
            if (problem := self.value.fits(item)) is not None:
                return f".{_short(key, 40)}{problem[0]}", problem[1]
        return None

    def __str__(self):
        return f"an object of {self.value}"


def check(value: Any, spec: Spec, where: str, error: type[GanzooError] = SchemaError) -> Any:
    """Return ``value`` when it fits ``spec``; else raise ``error``: "WHERE: field F is X; expected Y"."""
    found = spec.fits(value)
    if found is None:
        return value
    path, expected = found
    name = f"field {path.lstrip('.')!r}" if path else "the document"
    if expected == "present":
        raise error(f"{where}: {name} is missing")
    raise error(f"{where}: {name} is {_describe(_at(value, path))}; expected {expected}")


def _at(value: Any, path: str) -> Any:
    """The value at a path that ``fits`` returned (".a.b[2].c"), or a marker when it cannot be followed."""
    for part in re.findall(r"\.([^.\[]+)|\[(\d+)\]", path):
        key, index = part
        try:
            value = value[int(index)] if index else value[key]
        except (KeyError, IndexError, TypeError):
            return _Absent()
    return value


class _Absent:
    pass


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe(value: Any) -> str:
    """A short account of a value for an error line: never its whole text, never a huge number's digits."""
    if isinstance(value, _Absent):
        return "absent"
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    if type(value) is int:
        return repr(value) if value.bit_length() <= 64 else f"an integer of {len(str(value)) if value.bit_length() < 10000 else 'many'} digits"
    if type(value) is float:
        return repr(value)
    if isinstance(value, str):
        return repr(_short(value)) if len(value) <= 60 else f"a text of {len(value):,} characters"
    if isinstance(value, list):
        return f"a list of {len(value):,} items"
    if isinstance(value, dict):
        return f"an object of {len(value):,} fields"
    return type(value).__name__
