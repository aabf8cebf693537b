"""Options that belong to parts: who declares each one, and the checks plugins use for their values.

Every strategy, input policy and aggregation may declare ``TrainOption``s; observer plugins add
theirs with ``ganzoo_register_train_options``. Values live in ``config.options[key]``. An option is
accepted only when a part that declares it is in use (observers always are), so that
``ganzoo train sngan --gman-lambda 3`` is an error rather than a silent no-op.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ganzoo.core.config import FIELD_TYPES
from ganzoo.core.errors import GanzooError
from ganzoo.core.parts import TrainOption

# Flags of the core's own options: no plugin may declare them (the core's would silently win).
CLI_ONLY_FLAGS = ("--out", "--config", "--resume", "--quiet", "--json", "--help")
RESERVED_FLAGS = frozenset(
    {"--" + name.replace("_", "-") for name in FIELD_TYPES}
    | {"--no-" + name.replace("_", "-") for name, kind in FIELD_TYPES.items() if kind is bool}
    | set(CLI_ONLY_FLAGS)
)
RESERVED_KEYS = frozenset(FIELD_TYPES)

# The kinds of part whose options a run may use, in the order --help groups them.
PART_KINDS = ("strategy", "input policy", "aggregation")
OBSERVER = "observer"


@dataclass(frozen=True)
class OwnedOption:
    """A TrainOption and the parts that declare it: (kind, name) pairs, kind "observer" for the
    options of ``ganzoo_register_train_options`` (name: the plugin)."""

    option: TrainOption
    owners: tuple[tuple[str, str], ...]

    def owner_text(self) -> str:
        return ", ".join(f"{kind} {name}" if kind != OBSERVER else f"plugin {name}" for kind, name in self.owners)


def check_declarable(option: TrainOption) -> None:
    """Refuse an option that would take a flag or key of the core (raised at registration, so the
    plugin is listed as broken instead of silently losing to the built-in)."""
    if not isinstance(option, TrainOption):
        raise TypeError(f"options must be TrainOption objects, got {type(option).__name__}")
    flags = {option.flag, "--no-" + option.flag[2:]} if option.is_flag else {option.flag}
    if not option.flag.startswith("--") or len(option.flag) < 3:
        raise ValueError(f"option flag must look like --name, got {option.flag!r}")
    if flags & RESERVED_FLAGS:
        raise ValueError(f"option {option.flag} collides with ganzoo train's own {sorted(flags & RESERVED_FLAGS)[0]}")
    if option.key in RESERVED_KEYS:
        raise ValueError(f"option key {option.key!r} is a core setting's name")


def collect(registry: Any) -> dict[str, OwnedOption]:
    """Every part option in the registry by key. Parts may share an option (binary and pac both
    declare --loss) when they declare it with the same flag."""
    found: dict[str, OwnedOption] = {}

    def add(option: TrainOption, owner: tuple[str, str]) -> None:
        have = found.get(option.key)
        if have is None:
            found[option.key] = OwnedOption(option, (owner,))
        elif have.option.flag == option.flag:
            found[option.key] = OwnedOption(have.option, (*have.owners, owner))
        # a clash of flags was refused at registration (ganzoo.core.host)

    for kind in PART_KINDS:
        for entry in registry.entries(kind):
            for option in getattr(entry.part, "options", ()):
                add(option, (kind, entry.name))
    for entry in registry.entries("train option"):
        add(entry.part, (OBSERVER, entry.plugin))
    return found


def in_use(config: Any) -> set[tuple[str, str]]:
    return {("strategy", config.strategy), ("input policy", config.policy), ("aggregation", config.aggregation)}


def refuse_unowned(given: Mapping[str, Any], known: Mapping[str, OwnedOption], used: set[tuple[str, str]],
                   where: str = "") -> None:
    """A given option must belong to a part in use (or an observer); else a one-line error naming its parts."""
    for key in given:
        owned = known.get(key)
        if owned is None or is_used(owned, used):
            continue  # unknown keys: the caller reports them
        using = ", ".join(f"{kind} {name}" for kind, name in sorted(used) if kind != "strategy")
        raise GanzooError(f"{owned.option.flag}{where} belongs to {owned.owner_text()}, which this run does not use ({using})")


def declared_defaults(known: Mapping[str, OwnedOption], used: set[tuple[str, str]]) -> dict[str, Any]:
    """The declared defaults (``TrainOption.default``) of the options of the parts in use and of the observers."""
    return {key: owned.option.default for key, owned in known.items()
            if owned.option.default is not None and is_used(owned, used)}


def is_used(owned: OwnedOption, used: set[tuple[str, str]]) -> bool:
    return any(kind == OBSERVER or (kind, name) in used for kind, name in owned.owners)


def keep_used(options: Mapping[str, Any], known: Mapping[str, OwnedOption], used: set[tuple[str, str]],
              swapped: set[tuple[str, str]] = frozenset()) -> dict[str, Any]:
    """A strategy's default options, less those of parts the run does not use (sngan's loss when
    it runs with --policy tuple) and those of its own parts that the user swapped out (psg's R1
    and R2, a recipe for its tuple policy, when it runs with --policy binary, which also takes --r1)."""
    kept = {}
    for key, value in options.items():
        owned = known.get(key)
        if owned is None or (is_used(owned, used) and not swapped & set(owned.owners)):
            kept[key] = value
    return kept


def value_of(config: Any, option: TrainOption) -> Any:
    """The option's value in a run: what ``config.options`` holds, else the option's declared default."""
    return config.options.get(option.key, option.default)


def number_check(low: float, high: float, *, low_open: bool = False, high_open: bool = False, flag: str = "",
                 kind: type = float) -> Callable[[Any], Any]:
    """A TrainOption check: a number in [low, high] (ends open when asked); bools are refused."""

    def check(value: Any) -> Any:
        ok_type = isinstance(value, (int, float)) and not isinstance(value, bool) and (kind is float or isinstance(value, int))
        above = ok_type and (value > low if low_open else value >= low)
        below = ok_type and (value < high if high_open else value <= high)
        if not (above and below):
            left, right = "(" if low_open else "[", ")" if high_open else "]"
            raise GanzooError(f"{flag} must be a {'number' if kind is float else 'whole number'} in {left}{low}, {high}{right}, got {value!r}")
        return kind(value)

    return check


def boolean_check(flag: str) -> Callable[[Any], bool]:
    """A TrainOption check for an on/off flag: true or false, nothing else (a config file's "yes" is refused)."""

    def check(value: Any) -> bool:
        if not isinstance(value, bool):
            raise GanzooError(f"{flag} must be true or false, got {value!r}")
        return value

    return check


def choice_check(flag: str, choices: tuple[str, ...]) -> Callable[[Any], str]:
    """A TrainOption check: one of the given strings (for values from a config file too)."""

    def check(value: Any) -> str:
        if value not in choices:
            raise GanzooError(f"{flag} must be one of {', '.join(choices)}, got {value!r}")
        return str(value)

    return check
