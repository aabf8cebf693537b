"""``ganzoo train <strategy>``: the command the core makes for every registered strategy, and
running a training from it.

Settings come from the strategy's defaults, a --config file and the command line
(``ganzoo.core.compose``); the options of each part are accepted only when that part is in use.
"""

from __future__ import annotations

import contextlib
import json
import platform
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import click
import torch

from ganzoo import __version__
from ganzoo.cli import train_options
from ganzoo.cli.context import CONTEXT, get_host, warn_broken
from ganzoo.core import options as part_options
from ganzoo.core.compose import check_values, new_config
from ganzoo.core.config import read_config_file
from ganzoo.core.errors import GanzooError, PluginError, StopRequested
from ganzoo.core.parts import Strategy
from ganzoo.training import distributed, rundir
from ganzoo.training.checkpoint import read_checkpoint
from ganzoo.training.resume import check_resumable, config_from_checkpoint, resolve_device
from ganzoo.training.runtime import stop_with_parent, tune_malloc
from ganzoo.training.state_check import check_manifest_counters
from ganzoo.training.trainer import Trainer

NOT_SETTINGS = {"out", "config_file", "resume", "quiet", "as_json"}
RESUME_MAY_CHANGE = {"epochs", "steps", "minutes", "device", "log_every", "checkpoint_every", "keep_last", "on_nan", "deterministic",
                     "eval_every", "eval_n", "eval_features", "amp", "vmap", "compile", "channels_last"}


def train_command(strategy: Strategy, host: Any) -> click.Command:
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


@contextlib.contextmanager
def _stop_on_signals(trainer: Any) -> Iterator[None]:
    """SIGINT and SIGTERM ask the trainer to finish its step, checkpoint and stop; a second SIGINT
    interrupts at once."""

    def ask_to_stop(number: int, frame: object) -> None:
        if trainer.stop_signal is not None and number == signal.SIGINT:
            raise KeyboardInterrupt
        trainer.stop_signal = number

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, ask_to_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def run_training(ctx: click.Context, strategy: Strategy, values: dict[str, Any]) -> dict[str, Any]:
    host = get_host(ctx)
    warn_broken(host)
    ctx.meta["ganzoo.malloc_tuned"] = tune_malloc()
    stop_with_parent()
    known = part_options.collect(host.registry)
    given_options = train_options.take_part_values(values, known)
    given = {k: v for k, v in values.items() if v is not None and k not in NOT_SETTINGS}
    if values["resume"] is not None:
        run_dir = Path(values["resume"])
        config = _resumed_config(host, strategy, values, given, given_options, known)
    else:
        file_settings = read_config_file(Path(values["config_file"])) if values["config_file"] else {}
        config = new_config(host.registry, strategy.name, file_settings, given, given_options)
        run_dir = Path(values["out"] or rundir.default_run_dir(strategy.name))

    # Under torchrun every rank trains and rank 0 alone writes the run directory (ganzoo.training.distributed).
    world = distributed.join(resolve_device(config.device))
    if world.active and world.size > 1 and values["out"] is None and values["resume"] is None:
        raise GanzooError("under torchrun, give --out: every rank must name the same run directory")
    try:
        return _run(ctx, strategy, values, config, host, run_dir, world)
    finally:
        distributed.leave(world)


def _resumed_config(host: Any, strategy: Strategy, values: dict[str, Any], given: dict[str, Any],
                    given_options: dict[str, Any], known: dict[str, Any]) -> Any:
    run_dir = Path(values["resume"])
    fixed = sorted(known[key].option.flag for key in given_options if not known[key].option.resume)
    if fixed:
        allowed = sorted(o.option.flag for o in known.values() if o.option.resume)
        tail = f"; of the parts' options only {', '.join(allowed)} may be given" if allowed else ""
        raise GanzooError(f"cannot change {', '.join(fixed)} when resuming: the run keeps the value it started with{tail}")
    if values["out"] is not None and Path(values["out"]) != run_dir:
        raise GanzooError("--resume continues the run in place; drop --out")
    if values["config_file"] is not None:
        raise GanzooError("--config cannot be used with --resume: the run's settings are in its checkpoint")
    changed = sorted(set(given) - RESUME_MAY_CHANGE)
    if changed:
        flags = ", ".join("--" + k.replace("_", "-") for k in changed)
        may = ", ".join("--" + k.replace("_", "-") for k in sorted(RESUME_MAY_CHANGE))
        raise GanzooError(f"cannot change {flags} when resuming; only {may}")
    rundir.check(run_dir, resume=True)
    tensors, manifest = read_checkpoint(run_dir / rundir.CHECKPOINT)
    check_manifest_counters(manifest, str(run_dir / rundir.CHECKPOINT))
    if manifest.get("strategy") != strategy.name:
        raise GanzooError(f"{run_dir} is a {manifest.get('strategy')} run; resume it with: ganzoo train {manifest.get('strategy')} --resume {run_dir}")
    config = config_from_checkpoint(manifest, **given, **({"options": given_options} if given_options else {}))
    check_resumable(host, manifest, tensors, config)
    part_options.refuse_unowned(given_options, known, part_options.in_use(config))
    return replace(config, options=check_values(config.options, known))


def _run(ctx: click.Context, strategy: Strategy, values: dict[str, Any], config: Any, host: Any, run_dir: Path,
         world: distributed.World) -> dict[str, Any]:
    resume = values["resume"] is not None
    if not resume and world.writer:
        run_dir = rundir.check(run_dir, resume=False)
    quiet = values["quiet"] or not world.writer

    def log(message: str) -> None:
        if not quiet:
            click.echo(message, err=True)

    if not resume:
        trainer = _trainer(config, host, run_dir, resume=False, log=log, world=world)
        if world.writer:
            rundir.create(run_dir)  # only now: a run that fails its checks leaves nothing behind
    lock = rundir.RunLock(run_dir) if world.writer else contextlib.nullcontext()
    with lock:
        if resume:  # under the lock: restoring trims metrics.jsonl, which a live run may be appending to
            trainer = _trainer(config, host, run_dir, resume=True, log=log, world=world)
        return _train_locked(ctx, strategy, values, trainer, run_dir, config)


def _trainer(config: Any, host: Any, run_dir: Path, *, resume: bool, log: Callable[[str], None],
             world: distributed.World) -> Trainer:
    trainer = Trainer(config, host, run_dir, resume=resume, log=log, world=world)
    if trainer.step >= trainer.total_steps:
        raise GanzooError(
            f"{run_dir} is already at step {trainer.step} (epoch {trainer.epoch}); "
            f"give a larger --steps or --epochs to train on"
        )
    if config.minutes and trainer.state.clock.seconds >= config.minutes * 60:
        raise GanzooError(f"{run_dir} has already trained {trainer.state.clock.seconds / 60:.2f} minutes; "
                          f"give a larger --minutes to train on")
    return trainer


def _save_after_plugin_failure(trainer: Trainer, run_dir: Path, resume_hint: str) -> str:
    """Checkpoint the run where a plugin stopped it, when its state is whole and finite."""
    try:
        if trainer.step and trainer._finite(trainer.state.meter.read(trainer.world)):
            trainer._checkpoint()
            return f"checkpoint saved at step {trainer.step}; {resume_hint}"
    except Exception:  # the plugin may fail again while saving: the last checkpoint stays
        pass
    saved = rundir.checkpoint_step(run_dir)
    return f"the last checkpoint (step {saved}) is kept; {resume_hint}" if saved is not None else "no checkpoint was saved"


def _write_config(ctx: click.Context, strategy: Strategy, values: dict[str, Any], trainer: Any, run_dir: Path, config: Any) -> None:
    rundir.remove_stale_temp_files(run_dir)  # left by a process killed mid-write; the lock says none runs
    command = " ".join(sys.argv)
    before = rundir.read_meta(run_dir)
    first_command = before.get("command", command)
    rundir.write_config(run_dir, config.to_dict(), {
        "ganzoo_version": __version__,
        "strategy": strategy.name,
        "architecture": trainer.arch_name,
        "data_source": trainer.data_source,
        "device": str(trainer.device),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "command": first_command,
        "resumed_with": command if values["resume"] is not None else None,
        "malloc_tuning": ctx.meta.get("ganzoo.malloc_tuned", False),
        "amp": str(trainer.amp).removeprefix("torch.") if trainer.amp else "off",
        "vmap": trainer.vectorized,
        "tf32": trainer.tf32,
        "torch_threads": torch.get_num_threads(),
        "world_size": trainer.world.size,
        "exact_resume": trainer.exact_resume and before.get("exact_resume", True) is not False,  # once not exact, the run is not
    })


def _train_locked(ctx: click.Context, strategy: Strategy, values: dict[str, Any], trainer: Any, run_dir: Path, config: Any) -> dict[str, Any]:
    host = trainer.host
    writer = trainer.world.writer
    if writer:
        _write_config(ctx, strategy, values, trainer, run_dir, config)

    quiet, as_json = values["quiet"] or not writer, values["as_json"] and writer
    observer = None
    if not quiet and not as_json:
        from ganzoo.cli.console import ProgressObserver

        observer = ProgressObserver(trainer)
        host.pm.register(observer, name="ganzoo-progress")
        observer.console.print(f"[bold]{strategy.name}[/] data: {trainer.data_source}")
    resume_hint = f"continue with: ganzoo train {strategy.name} --resume {run_dir}"
    try:
        with _stop_on_signals(trainer):
            record = trainer.run()
    except StopRequested as stop:
        click.echo(f"stopped by signal {stop.signal_number} at step {stop.step}; checkpoint saved in {run_dir}; {resume_hint}", err=True)
        ctx.exit(128 + stop.signal_number)
    except KeyboardInterrupt:  # a second Ctrl-C: stop at once, without saving
        saved = rundir.checkpoint_step(run_dir)
        if saved is None:
            where = "no checkpoint was saved yet, so there is nothing to resume"
        else:
            where = f"the last checkpoint (step {saved}) is in {run_dir}; {resume_hint}"
        click.echo(f"interrupted at step {trainer.step}; {where}", err=True)
        ctx.exit(130)
    except PluginError as exc:  # a plugin raised (or called sys.exit) in a hook: keep what was trained
        raise GanzooError(f"{exc}; {_save_after_plugin_failure(trainer, run_dir, resume_hint)}") from None
    except torch.OutOfMemoryError:
        raise GanzooError(
            f"out of memory on {trainer.device} at batch size {config.batch_size} with {config.n_gens} generator(s); "
            f"try --batch-size {max(1, config.batch_size // 2)}"
        ) from None
    finally:
        if observer is not None:
            observer.close()
            host.pm.unregister(observer)
    record = {**record, "run_dir": str(run_dir)}
    if as_json:
        click.echo(json.dumps(rundir.json_safe(record), allow_nan=False))
    elif not quiet:
        from rich.console import Console

        from ganzoo.cli.console import summary_table

        Console().print(summary_table(record, trainer))
    return record
