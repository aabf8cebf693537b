"""Putting a run together from parts: a strategy's defaults, a --config file, the command line, and
the check that the chosen strategy, input policy and aggregation can work together.

Everything here runs before a run directory exists, so an impossible combination costs nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ganzoo.core import options as part_options
from ganzoo.core.config import FIELD_TYPES, TrainConfig, check_type, make_config
from ganzoo.core.errors import GanzooError
from ganzoo.core.parts import Supports


def split_file_settings(settings: Mapping[str, Any], known: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Settings (a config file's, or a strategy's defaults) as (core settings, part options): part
    options may sit under ``options`` or at the top level (``loss = "hinge"``)."""
    core, options = {}, dict(settings.get("options", {})) if isinstance(settings.get("options"), dict) else {}
    for key, value in settings.items():
        if key == "options" and isinstance(value, dict):
            continue
        if key not in FIELD_TYPES and key in known:
            options[key] = value
        else:
            core[key] = value
    return core, options


def new_config(registry: Any, strategy_name: str, file_settings: Mapping[str, Any] | None = None,
               given: Mapping[str, Any] | None = None, given_options: Mapping[str, Any] | None = None) -> TrainConfig:
    """The settings of a new run: TrainConfig defaults < the strategy's defaults < the file < the
    command line, and for part options: the option's declared default < the strategy's < the file <
    the command line. Part options given by the user must belong to a part in use; when the user
    swaps the strategy's policy or aggregation, the strategy's default options for the part swapped
    out (even those the new part also takes) and for parts no longer in use are dropped. Every
    option value given is checked; every option of the parts in use that declares a default is in
    the result."""
    strategy = registry.get("strategy", strategy_name)
    known = part_options.collect(registry)
    file_core, file_options = split_file_settings(file_settings or {}, known)
    defaults, default_options = split_file_settings(strategy.defaults, known)  # a 0.2 strategy may set "loss" at the top
    config = make_config(strategy_name, defaults, file_core, dict(given or {}))
    used = part_options.in_use(config)
    user_options = {**file_options, **(given_options or {})}
    for options, where in ((file_options, " in the config file"), (given_options or {}, "")):
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise GanzooError(f"unknown option {unknown[0]!r}{where} (ganzoo list --json shows each part's options)")
        part_options.refuse_unowned(options, known, used, where=f" ({where.strip()})" if where else "")
    own_recipe = config.policy == defaults.get("policy", config.policy) and config.aggregation == defaults.get("aggregation", config.aggregation)
    if not own_recipe:  # the user swapped a part: the strategy's options for it, and for parts no longer used, go
        swapped = {(kind, defaults[field]) for kind, field in (("input policy", "policy"), ("aggregation", "aggregation"))
                   if field in defaults and getattr(config, field) != defaults[field]}
        default_options = part_options.keep_used(default_options, known, used, swapped)
    merged = check_values({**default_options, **user_options}, known)
    return replace(config, options=check_type("options", {**part_options.declared_defaults(known, used), **merged}))


# What a resume may change: budgets, logging and speed switches, never what the next step computes.
RESUME_MAY_CHANGE = frozenset({"data_root", "epochs", "steps", "minutes", "device", "log_every", "checkpoint_every", "keep_last", "on_nan",
                               "deterministic", "eval_every", "eval_every_steps", "eval_every_seconds", "eval_n", "eval_n_real", "eval_features",
                               "amp", "vmap", "compile", "channels_last"})


def refuse_resume_changes(registry: Any, changes: Mapping[str, Any], option_changes: Mapping[str, Any]) -> None:
    """A resume changes only what cannot change the training: a one-line error otherwise."""
    known = part_options.collect(registry)
    unknown = sorted(set(option_changes) - set(known))
    if unknown:
        raise GanzooError(f"unknown option {unknown[0]!r} (ganzoo list --json shows each part's options)")
    fixed = sorted(known[key].option.flag for key in option_changes if not known[key].option.resume)
    if fixed:
        allowed = sorted(o.option.flag for o in known.values() if o.option.resume)
        tail = f"; of the parts' options only {', '.join(allowed)} may be given" if allowed else ""
        raise GanzooError(f"cannot change {', '.join(fixed)} when resuming: the run keeps the value it started with{tail}")
    changed = sorted(set(changes) - RESUME_MAY_CHANGE)
    if changed:
        flags = ", ".join("--" + k.replace("_", "-") for k in changed)
        may = ", ".join("--" + k.replace("_", "-") for k in sorted(RESUME_MAY_CHANGE - {"eval_every_steps", "eval_every_seconds"}))
        raise GanzooError(f"cannot change {flags} when resuming; only {may}")


def resumed_config(registry: Any, config: TrainConfig, option_changes: Mapping[str, Any]) -> TrainConfig:
    """A checkpoint's settings with a resume's option changes (``refuse_resume_changes`` has let them
    through): each must belong to a part in use, and every option of those parts that declares a
    default is in the result (a run from before the default was declared gets it)."""
    known = part_options.collect(registry)
    used = part_options.in_use(config)
    part_options.refuse_unowned(option_changes, known, used)
    options = {**part_options.declared_defaults(known, used), **config.options, **check_values(option_changes, known)}
    return replace(config, options=check_type("options", options))


def check_values(values: Mapping[str, Any], known: Mapping[str, Any]) -> dict[str, Any]:
    """Each known option's check applied to its value (from a file, a strategy or the command line)."""
    checked = dict(values)
    for key, value in values.items():
        owned = known.get(key)
        if owned is not None and owned.option.check is not None:
            checked[key] = owned.option.check(value)
    return checked


def parts_of(registry: Any, config: TrainConfig) -> list[tuple[str, str, Any]]:
    """(kind, name, part) of the run's strategy, input policy and aggregation."""
    return [(kind, name, registry.get(kind, name)) for kind, name in sorted(part_options.in_use(config))]


def check_composition(registry: Any, config: TrainConfig) -> None:
    """Refuse, in one line, a combination the parts declare impossible (their ``supports``)."""
    parts = parts_of(registry, config)
    declared = [(kind, name, getattr(part, "supports", None) or Supports()) for kind, name, part in parts]
    if config.conditional:
        check_conditional(registry, config, declared)
    provided = set().union(*(s.provides for kind, _, s in declared if kind == "input policy"))
    for kind, name, supports in declared:
        if config.n_gens < supports.min_gens or (supports.max_gens is not None and config.n_gens > supports.max_gens):
            top = "any number" if supports.max_gens is None else str(supports.max_gens)
            raise GanzooError(f"{kind} {name} works with {supports.min_gens} to {top} generators, not --n-gens {config.n_gens}")
        missing = sorted(supports.requires - provided)
        if missing:
            raise GanzooError(
                f"{kind} {name} needs an input policy that provides {', '.join(missing)}; "
                f"policy {config.policy} does not (ganzoo list --json shows what each part provides)"
            )
        if supports.double_backward and config.compile:
            raise GanzooError(f"{kind} {name} needs double backward (a gradient penalty), which --compile does not support; drop --compile")
        penalties = penalties_on(supports, config)
        if penalties and config.compile:
            known = part_options.collect(registry)
            flags = [known[key].option.flag if key in known else key for key in penalties]
            given = ", ".join(f"{flag} {config.options[key]:g}" for flag, key in zip(flags, penalties))
            raise GanzooError(f"{kind} {name} needs double backward for {given} (a gradient penalty), which --compile "
                              f"does not support; drop --compile or set {' and '.join(flags)} to 0")


def check_conditional(registry: Any, config: TrainConfig, declared: list[tuple[str, str, Supports]]) -> None:
    """A class-conditional run needs an input policy that takes labels, and an --arch that can condition
    when one is named (the dataset's labels are checked when it is loaded)."""
    for kind, name, supports in declared:
        if kind == "input policy" and not supports.conditional:
            able = sorted(entry.part.name for entry in registry.entries("input policy")
                          if getattr(entry.part.supports, "conditional", False))
            raise GanzooError(f"input policy {name} cannot condition on classes (--conditional); policies that can: "
                              f"{', '.join(able) or 'none'}")
    if config.arch and not registry.get("architecture", config.arch).conditional:
        able = sorted(entry.part.name for entry in registry.entries("architecture") if entry.part.conditional)
        raise GanzooError(f"architecture {config.arch} cannot condition on classes (--conditional); architectures that can: "
                          f"{', '.join(able) or 'none'}")


def penalties_on(supports: Supports, config: TrainConfig) -> list[str]:
    """The part's penalty options (``supports.double_backward_options``) that are above 0 in this run."""
    values = {key: config.options.get(key) for key in supports.double_backward_options}
    return sorted(k for k, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0)
