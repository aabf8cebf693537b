"""Train options that live in ``config.options``: a strategy's own (``strategy_command(S, [TrainOption(...)])``)
and those plugins add to every ``ganzoo train`` command (``ganzoo_register_train_options``)."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

import click

from ganzoo.config import TrainConfig
from ganzoo.errors import GanzooError
from ganzoo.parts import TrainOption

PREFIX = "option__"  # click parameter names of train options: never a TrainConfig field


class SettingOption(click.Option):
    """A click option that carries the TrainOption it came from."""

    def __init__(self, train_option: TrainOption):
        flag = train_option.flag
        decls = [f"{flag}/--no-{flag[2:]}" if train_option.is_flag else flag, PREFIX + train_option.key]
        kind = {} if train_option.is_flag else {"type": train_option.type}
        super().__init__(decls, default=None, help=train_option.help, **kind)
        self.train_option = train_option


def decorator(option: TrainOption | Callable) -> Callable[[click.Command], click.Command]:
    """A click option decorator for a TrainOption (other decorators are returned as they are)."""
    if not isinstance(option, TrainOption):
        return option

    def add(command: click.Command) -> click.Command:
        command.params.append(SettingOption(option))
        return command

    return add


def _flags(param: click.Parameter) -> set[str]:
    return {*getattr(param, "opts", ()), *getattr(param, "secondary_opts", ())}


def with_train_options(command: click.Command, options: Iterable[TrainOption]) -> click.Command:
    """A copy of a strategy command with the plugins' train options added (the original stays as
    registered, so that a command object reused by another host never collects them twice).

    A plugin's option whose flag the command already has (a shared option such as ``--steps``, the
    strategy's own such as MGAN's ``--beta``, or an earlier plugin's) is left out of this command:
    the flag keeps its meaning instead of silently handing its value to the plugin."""
    have = {p.name for p in command.params}
    taken = {"--help", *(flag for p in command.params for flag in _flags(p))}
    extra = []
    for train_option in options:
        option = SettingOption(train_option)
        if option.name in have or _flags(option) & taken:
            continue
        have.add(option.name)
        taken |= _flags(option)
        extra.append(option)
    if not extra:
        return command
    command = copy.copy(command)
    command.params = [*command.params, *extra]
    return command


def take_option_values(command: click.Command, values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, TrainOption]]:
    """Remove the train options' values from a command's values and check them:
    ({key: value given}, {key: TrainOption})."""
    known = {p.train_option.key: p.train_option for p in command.params if isinstance(p, SettingOption)}
    given = {}
    for key, option in known.items():
        value = values.pop(PREFIX + key, None)
        if value is not None:
            given[key] = option.check(value) if option.check is not None else value
    return given, known


def check_options(config: TrainConfig, known: dict[str, TrainOption]) -> TrainConfig:
    """Apply each known option's check to its value, from the command line or a config file."""
    options = dict(config.options)
    for key, option in known.items():
        if key in options and option.check is not None:
            options[key] = option.check(options[key])
    return replace(config, options=options)


def refuse_resume_changes(given: dict[str, Any], known: dict[str, TrainOption]) -> None:
    fixed = sorted(known[key].flag for key in given if not known[key].resume)
    if fixed:
        allowed = sorted(o.flag for o in known.values() if o.resume)
        tail = f"; of the plugins' options only {', '.join(allowed)} may be given" if allowed else ""
        raise GanzooError(f"cannot change {', '.join(fixed)} when resuming: the run keeps the value it started with{tail}")


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
