"""The search space of a tune: the declared spaces of the options of the parts the run uses (and of
the core's, ``CORE_SEARCH``), less the options given on the command line (those stay fixed), with
``--search NAME=SPACE`` added or overriding. A parameter is named by its flag without the dashes
(``lr``, ``n-dis``, ``loss``), and a trial passes it to ``ganzoo train`` as that flag."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ganzoo.core.errors import GanzooError
from ganzoo.core.options import collect, in_use, is_used
from ganzoo.core.search import CORE_SEARCH, Search, parse_search


@dataclass(frozen=True)
class Parameter:
    name: str  # the flag without its dashes
    search: Search
    is_flag: bool = False  # an on/off option: --name / --no-name

    def argv(self, value: Any) -> list[str]:
        if self.is_flag:
            return [f"--{self.name}" if value else f"--no-{self.name}"]
        return [f"--{self.name}", repr(value) if isinstance(value, float) else str(value)]


def given_flags(args: tuple[str, ...]) -> set[str]:
    """The option names a train command line sets (``--lr 1e-3``, ``--lr=1e-3``, ``--no-ema-warmup``)."""
    names = set()
    for arg in args:
        if arg.startswith("--"):
            name = arg[2:].split("=")[0]
            names |= {name, name[3:]} if name.startswith("no-") else {name}
    return names


def searchable(registry: Any, config: Any, core: dict[str, bool]) -> dict[str, tuple[Search | None, bool]]:
    """Every option this run could search, by flag name: (its declared space or None, whether it is
    on/off). The core's (``core``: flag name -> on/off; spaces from CORE_SEARCH) and the options of
    the parts in use."""
    found = {name: (CORE_SEARCH.get(name.replace("-", "_")), is_flag) for name, is_flag in core.items()}
    used = in_use(config)
    for owned in collect(registry).values():
        if is_used(owned, used):
            found[owned.option.flag[2:]] = (owned.option.search, owned.option.is_flag)
    return found


def space_of(registry: Any, config: Any, core: dict[str, bool], args: tuple[str, ...], overrides: tuple[str, ...],
             owned: set[str]) -> dict[str, Parameter]:
    """The tune's parameters: declared spaces not fixed by ``args``, then ``--search`` NAME=SPACE."""
    known = searchable(registry, config, core)
    fixed = given_flags(args)
    space = {name: Parameter(name, search, is_flag) for name, (search, is_flag) in known.items() if search and name not in fixed}
    for text in overrides:
        name, sep, spec = text.partition("=")
        name = name.strip().lstrip("-").replace("_", "-")
        if not sep or not name:
            raise GanzooError(f"--search takes NAME=SPACE, e.g. lr=1e-4..3e-3:log or n-dis=1,2; got {text!r}")
        if name in owned:
            raise GanzooError(f"--search {name}: ganzoo tune sets --{name} for every trial; it cannot be searched")
        if name not in known:
            raise GanzooError(f"--search {name}: no option --{name} in this run (ganzoo train {config.strategy} --help lists them)")
        if name in fixed:
            raise GanzooError(f"--search {name}: --{name} is also given a fixed value; give one or the other")
        search = parse_search(spec, name)
        is_flag = known[name][1]
        if is_flag and not set(search.choices) <= {True, False}:
            raise GanzooError(f"--search {name}: --{name} is on or off; search it as {name}=true,false")
        space[name] = Parameter(name, search, is_flag)
    if not space:
        raise GanzooError("nothing to search: every option with a declared range is given a fixed value; add --search NAME=SPACE")
    return dict(sorted(space.items()))


def current_values(config: Any, space: dict[str, Parameter]) -> dict[str, Any]:
    """What the run would use for each parameter without tuning (the strategy's defaults and the
    options given), where it lies in the space: trial 0 of a new study, so that a tune can only
    improve on them. ``--lr-d 0`` means "as --lr", so it is given as lr's value."""
    settings = {**config.to_dict(), **config.options}
    found = {}
    for name, parameter in space.items():
        key = name.replace("-", "_")
        value = settings.get(key)
        if key == "lr_d" and value == 0:
            value = settings.get("lr")
        search = parameter.search
        inside = (value in search.choices) if search.choices else (
            isinstance(value, (int, float)) and not isinstance(value, bool) and search.low <= value <= search.high
            and (not search.integer or float(value).is_integer()))
        if inside:
            found[name] = int(value) if search.integer else value
    return found
