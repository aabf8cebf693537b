"""``ganzoo train <strategy>``: the options every strategy shares, and running a training from them.

A strategy plugin adds its subcommand with ``register(strategy_command(STRATEGY, OPTIONS), group="train")``.
"""

from __future__ import annotations

import contextlib
import json
import platform
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import click
import torch

from ganzoo import __version__, distributed, rundir, train_options
from ganzoo.checkpoint import read_checkpoint
from ganzoo.config import AMP_CHOICES, VMAP_CHOICES, make_config, read_config_file
from ganzoo.errors import GanzooError, StopRequested
from ganzoo.parts import Strategy, TrainOption
from ganzoo.runtime import stop_with_parent, tune_malloc
from ganzoo.trainer import Trainer, check_resumable, config_from_checkpoint, resolve_device

COMMON_OPTIONS = [
    click.option("--dataset", default=None, help="mnist, fashion-mnist, cifar10, idx:PATH, or a plugin's. [default: mnist]"),
    click.option("--data-root", default=None, help="Folder with torchvision-layout datasets. [default: $GANZOO_DATA or ~/.cache/ganzoo]"),
    click.option("--epochs", type=int, default=None, help="Epochs in total (a resumed run continues up to this). [default: 1]"),
    click.option("--steps", type=int, default=None, help="Stop after this many generator steps in total; overrides --epochs."),
    click.option("--batch-size", type=int, default=None, help="Real images per batch. [default: 64]"),
    click.option("--lr", type=float, default=None, help="Adam learning rate of G and D. [default: the strategy's]"),
    click.option("--beta1", type=float, default=None, help="Adam beta1. [default: the strategy's]"),
    click.option("--beta2", type=float, default=None, help="Adam beta2. [default: the strategy's]"),
    click.option("--n-dis", type=int, default=None, help="Discriminator steps per generator step. [default: the strategy's]"),
    click.option("--z-dim", type=int, default=None, help="Dimension of z. [default: 100]"),
    click.option("--arch", default=None, help="dcgan28, cnn32, or a plugin's. [default: the dataset's]"),
    click.option("--seed", type=int, default=None, help="Seed of weights, data order and z. [default: 0]"),
    click.option("--device", default=None, help="auto, cpu or cuda. [default: auto]"),
    click.option("--limit-data", type=int, default=None, help="Train on the first K images only."),
    click.option("--log-every", type=int, default=None, help="Read metrics (and check them for NaN/Inf) every K steps. [default: 20]"),
    click.option("--checkpoint-every", type=int, default=None, help="Also checkpoint every K generator steps. [default: 0, epoch ends only]"),
    click.option("--keep-last", type=int, default=None, help="With M > 1, also keep the M newest checkpoints under checkpoints/. [default: 1]"),
    click.option("--on-nan", type=click.Choice(["stop", "rollback"]), default=None,
                 help="On a NaN/Inf loss or weight: stop, or reload the last checkpoint with half the learning rate (up to 3 times). [default: stop]"),
    click.option("--eval-every", type=int, default=None, help="Evaluate every K epochs (FID, KID, classes... as ganzoo eval) into metrics.jsonl. [default: 0, never]"),
    click.option("--eval-n", type=int, default=None, help="Samples per evaluation during training. [default: 2000]"),
    click.option("--eval-features", default=None, help="Feature extractor for those evaluations (ganzoo list extractors). [default: lenet]"),
    click.option("--amp", type=click.Choice(AMP_CHOICES), default=None,
                 help="bf16 autocast for the networks; auto: on for CPUs with AMX/AVX512-BF16 and bf16 GPUs. [default: auto]"),
    click.option("--vmap", type=click.Choice(VMAP_CHOICES), default=None,
                 help="Run the N generators as one vmapped call; auto: on for CUDA, off for CPU (measured). [default: auto]"),
    click.option("--compile/--no-compile", default=None, help="torch.compile the networks (slower on CPU, see docs/performance.md). [default: off]"),
    click.option("--channels-last/--no-channels-last", default=None, help="Channels-last memory format for the networks. [default: off]"),
    click.option("--deterministic/--no-deterministic", default=None, help="Deterministic torch kernels, for bit-exact reruns and resumes. [default: off]"),
    click.option("--out", type=click.Path(path_type=Path), default=None, help="Run directory. [default: runs/<strategy>-<timestamp>]"),
    click.option("--config", "config_file", type=click.Path(path_type=Path), default=None, help="TOML file of settings; options given here win."),
    click.option("--resume", type=click.Path(path_type=Path), default=None, help="Continue the run in this directory."),
    click.option("--quiet", is_flag=True, help="No progress bar and no summary."),
    click.option("--json", "as_json", is_flag=True, help="Print the final metrics as JSON on stdout, nothing else."),
]

NOT_SETTINGS = {"out", "config_file", "resume", "quiet", "as_json"}
RESUME_MAY_CHANGE = {"epochs", "steps", "device", "log_every", "checkpoint_every", "keep_last", "on_nan", "deterministic",
                     "eval_every", "eval_n", "eval_features", "amp", "vmap", "compile", "channels_last"}


def strategy_command(strategy: Strategy, options: Sequence[Callable | TrainOption] = ()) -> click.Command:
    """A ``ganzoo train <strategy.name>`` command with the common options plus the strategy's own.

    ``options`` are click option decorators (for TrainConfig fields) or ``TrainOption`` objects
    (for settings kept in ``config.options``).
    """

    def callback(**values: Any) -> None:
        ctx = click.get_current_context()
        run_training(ctx, strategy, values)

    command = click.Command(
        strategy.name,
        callback=callback,
        help=f"{strategy.summary}.\n\nDefaults: {strategy.sources}." if strategy.sources else f"{strategy.summary}.",
        short_help=strategy.summary,
        context_settings={"help_option_names": ["-h", "--help"], "show_default": False},
    )
    for option in [*COMMON_OPTIONS, *options]:  # on a Command, click.option appends: keep this order
        command = train_options.decorator(option)(command)
    command.ganzoo_strategy = strategy  # marks it as taking the plugins' train options too
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
    from ganzoo.cli import get_host, warn_broken  # ganzoo.cli imports the plugins that import this module

    host = get_host(ctx)
    warn_broken(host)
    ctx.meta["ganzoo.malloc_tuned"] = tune_malloc()
    stop_with_parent()
    given_options, known_options = train_options.take_option_values(ctx.command, values)
    given = {k: v for k, v in values.items() if v is not None and k not in NOT_SETTINGS}
    if values["resume"] is not None:
        train_options.refuse_resume_changes(given_options, known_options)
        run_dir = Path(values["resume"])
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
        if manifest.get("strategy") != strategy.name:
            raise GanzooError(f"{run_dir} is a {manifest.get('strategy')} run; resume it with: ganzoo train {manifest.get('strategy')} --resume {run_dir}")
        config = config_from_checkpoint(manifest, **given, **({"options": given_options} if given_options else {}))
        config = train_options.check_options(config, known_options)
        check_resumable(host, manifest, tensors, config)
    else:
        file_settings = read_config_file(values["config_file"]) if values["config_file"] else {}
        config = make_config(strategy.name, strategy.defaults, file_settings, given, {"options": given_options})
        config = train_options.check_options(config, known_options)
        run_dir = Path(values["out"] or rundir.default_run_dir(strategy.name))

    # Under torchrun every rank trains and rank 0 alone writes the run directory (ganzoo.distributed).
    world = distributed.join(resolve_device(config.device))
    if world.active and world.size > 1 and values["out"] is None and values["resume"] is None:
        raise GanzooError("under torchrun, give --out: every rank must name the same run directory")
    try:
        return _run(ctx, strategy, values, config, host, run_dir, world)
    finally:
        distributed.leave(world)


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
    return trainer


def _write_config(ctx: click.Context, strategy: Strategy, values: dict[str, Any], trainer: Any, run_dir: Path, config: Any) -> None:
    rundir.remove_stale_temp_files(run_dir)  # left by a process killed mid-write; the lock says none runs
    command = " ".join(sys.argv)
    first_command = rundir.read_meta(run_dir).get("command", command)
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
    })


def _train_locked(ctx: click.Context, strategy: Strategy, values: dict[str, Any], trainer: Any, run_dir: Path, config: Any) -> dict[str, Any]:
    host = trainer.host
    writer = trainer.world.writer
    if writer:
        _write_config(ctx, strategy, values, trainer, run_dir, config)

    quiet, as_json = values["quiet"] or not writer, values["as_json"] and writer
    observer = None
    if not quiet and not as_json:
        from ganzoo.progress import ProgressObserver

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

        from ganzoo.progress import summary_table

        Console().print(summary_table(record, trainer))
    return record
