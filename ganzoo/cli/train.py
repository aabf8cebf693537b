"""``ganzoo train <strategy>``: the command the core makes for every registered strategy. It parses
the options into settings and hands them to a training session (``ganzoo.training.session``), which
runs the training; this module refuses what it can before torch is imported, and prints.

Settings come from the strategy's defaults, a --config file and the command line
(``ganzoo.core.compose``); the options of each part are accepted only when that part is in use.
Nothing heavy is imported until a run starts, so that ``ganzoo train psg --help`` answers at once.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from ganzoo.cli import train_options
from ganzoo.cli.context import CONTEXT, get_host, warn_broken
from ganzoo.cli.interrupt import importing
from ganzoo.core import options as part_options
from ganzoo.core.compose import new_config, refuse_resume_changes
from ganzoo.core.config import TrainConfig, read_config_file
from ganzoo.core.errors import GanzooError, StopRequested
from ganzoo.core.files import json_safe
from ganzoo.core.host import Host
from ganzoo.core.parts import Strategy

NOT_SETTINGS = {"out", "config_file", "resume", "quiet", "as_json"}


def train_command(strategy: Strategy, host: Host) -> click.Command:
    """``ganzoo train <strategy.name>``: the core's options, then every part's (those of parts not in
    use are refused when given), grouped in --help by who owns them."""

    def callback(**values: Any) -> None:
        run_training(click.get_current_context(), strategy, values)

    known = part_options.collect(host.registry)
    help_text = f"{strategy.summary}.\n\nDefaults: {strategy.sources}." if strategy.sources else f"{strategy.summary}."
    command = train_options.TrainCommand(
        strategy.name, callback=callback, help=help_text, short_help=strategy.summary,
        context_settings={**CONTEXT, "show_default": False},
        params=[*train_options.core_options(strategy), *train_options.part_options(strategy, known)],
    )
    command.ganzoo_strategy = strategy
    return command


def given_values(host: Host, values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(settings, part options) the user gave, from a train command's values (each part option checked)."""
    values = dict(values)
    given_options = train_options.take_part_values(values, part_options.collect(host.registry))
    return {k: v for k, v in values.items() if v is not None and k not in NOT_SETTINGS}, given_options


def config_of(host: Host, strategy: Strategy, values: dict[str, Any]) -> TrainConfig:
    """A new run's settings from a train command's values (also how ``ganzoo compare`` checks a configuration)."""
    given, given_options = given_values(host, values)
    file_settings = read_config_file(Path(values["config_file"])) if values.get("config_file") else {}
    return new_config(host.registry, strategy.name, file_settings, given, given_options)


def run_training(ctx: click.Context, strategy: Strategy, values: dict[str, Any]) -> dict[str, Any]:
    from ganzoo.training.runtime import stop_with_parent  # no torch: what can be refused is refused at once

    stop_with_parent()
    host = get_host(ctx)
    warn_broken(host)
    resume = values["resume"] is not None
    if resume:
        if values["out"] is not None and Path(values["out"]) != Path(values["resume"]):
            raise GanzooError("--resume continues the run in place; drop --out")
        if values["config_file"] is not None:
            raise GanzooError("--config cannot be used with --resume: the run's settings are in its checkpoint")
        changes, option_changes = given_values(host, values)
        refuse_resume_changes(host.registry, changes, option_changes)  # here too, to refuse before torch is imported
    else:
        if values["out"] is None and os.environ.get("WORLD_SIZE", "1") != "1":
            raise GanzooError("under torchrun, give --out: every rank must name the same run directory")
        config = config_of(host, strategy, values)
    with importing():  # torch and the training code: seconds, and nothing written yet
        from ganzoo.evaluation.in_training import training_evaluator
        from ganzoo.runs import rundir
        from ganzoo.training import distributed
        from ganzoo.training.session import Session

    quiet = values["quiet"] or values["as_json"] or distributed.env_rank() != 0
    log = (lambda message: None) if quiet else (lambda message: click.echo(message, err=True))
    progress = []
    if not quiet:
        from ganzoo.cli.console import ProgressObserver

        progress.append(ProgressObserver())
    common = {"observers": progress, "make_evaluator": training_evaluator(host, log), "log": log, "command": " ".join(sys.argv)}
    if resume:
        session = Session.resume(host, Path(values["resume"]), changes=changes, option_changes=option_changes,
                                 strategy=strategy.name, **common)
    else:
        session = Session.new(host, config, Path(values["out"] or rundir.default_run_dir(strategy.name)), **common)
    with session:  # the lock, the process group and the observers are let go however the run ends
        for observer in progress:
            observer.console.print(f"[bold]{strategy.name}[/] data: {session.trainer.data_source}")
        return _train(ctx, session, values, quiet)


def _train(ctx: click.Context, session: Any, values: dict[str, Any], quiet: bool) -> dict[str, Any]:
    from ganzoo.training.session import stop_on_signals

    trainer = session.trainer
    try:
        with stop_on_signals(trainer):
            record = session.run()
    except StopRequested as stop:
        click.echo(f"stopped by signal {stop.signal_number} at step {stop.step}; checkpoint saved in {session.run_dir}; "
                   f"{session.resume_hint()}", err=True)
        ctx.exit(128 + stop.signal_number)
    except KeyboardInterrupt:  # a second Ctrl-C: stop at once, without saving
        click.echo(f"interrupted at step {trainer.step}; {session.last_checkpoint()}", err=True)
        ctx.exit(130)
    if values["as_json"] and trainer.world.writer:
        click.echo(json.dumps(json_safe(record), allow_nan=False))
    elif not quiet:
        from rich.console import Console

        from ganzoo.cli.console import summary_table

        Console().print(summary_table(record, trainer))
    return record
