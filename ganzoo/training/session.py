"""One training run in one folder, from the checks to the last checkpoint: the one path that the
command line, the Python API (``ganzoo.api``), ``ganzoo compare``'s runs and the benchmarks share.

A new run: every check (settings, parts that compose, the folder can take a run) and the trainer's
build (data, networks) come before anything is written; then the folder is made, locked, and
config.toml written. A resume: the folder is locked first (restoring trims metrics.jsonl, which a
live run may be appending to), its checkpoint is read once (the header, then the data once the run
is built from it), and only settings that cannot change the training may change. A plugin that
fails in a hook stops the run with a checkpoint of its last whole, finite state.
"""

from __future__ import annotations

import contextlib
import platform
import signal
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch

from ganzoo import __version__
from ganzoo.core.compose import refuse_resume_changes, resumed_config
from ganzoo.core.config import TrainConfig
from ganzoo.core.data import read_only_root
from ganzoo.core.errors import GanzooError, PluginError
from ganzoo.core.host import Host
from ganzoo.runs import rundir
from ganzoo.runs.checkpoint import open_checkpoint
from ganzoo.runs.manifest import TRAINING_KINDS, require_parts
from ganzoo.runs.models import resolve_device
from ganzoo.training import distributed, nan_guard
from ganzoo.training.resume import config_from_checkpoint
from ganzoo.training.runtime import tune_malloc
from ganzoo.training.trainer import MakeEvaluator, Trainer


class Session:
    """A run ready to train: ``Session.new(...)`` or ``Session.resume(...)``, then ``run()``.

    ``trainer`` is public: a signal handler sets ``trainer.stop_signal`` to stop after the current
    step with a checkpoint. Use it as a context manager under torchrun (it leaves the process group).
    """

    def __init__(self, trainer: Trainer, run_dir: Path, *, resumed: bool, command: str, malloc_tuned: bool = False):
        self.trainer, self.run_dir, self.resumed, self.command = trainer, run_dir, resumed, command
        self.malloc_tuned = malloc_tuned
        self.closed = False
        self._lock: rundir.RunLock | contextlib.nullcontext = contextlib.nullcontext()

    @classmethod
    def new(cls, host: Host, config: TrainConfig, run_dir: Path, *, observers: Iterable[object] = (),
            make_evaluator: MakeEvaluator | None = None, log: Callable[[str], None] | None = None, command: str = "") -> Session:
        """Check everything and build the trainer, then make and lock the run folder."""
        tuned = tune_malloc()
        world = distributed.join(resolve_device(config.device))
        session = None
        try:
            run_dir = Path(run_dir)
            if world.writer:
                rundir.check(run_dir, resume=False)
            trainer = Trainer(config, host, run_dir, log=log, world=world, observers=observers, make_evaluator=make_evaluator)
            session = cls(trainer, run_dir, resumed=False, command=command, malloc_tuned=tuned)
            if world.writer:
                rundir.create(run_dir)  # only now: a run that fails its checks leaves nothing behind
                lock = rundir.RunLock(run_dir)
                lock.__enter__()
                session._lock = lock
        except BaseException:
            _let_go(session, contextlib.nullcontext(), world)
            raise
        return session

    @classmethod
    def resume(cls, host: Host, run_dir: Path, *, changes: Mapping[str, Any] | None = None,
               option_changes: Mapping[str, Any] | None = None, strategy: str | None = None, observers: Iterable[object] = (),
               make_evaluator: MakeEvaluator | None = None, log: Callable[[str], None] | None = None, command: str = "") -> Session:
        """Continue the run in ``run_dir``; ``changes`` (settings) and ``option_changes`` (part
        options) may change only what a resume may (``RESUME_MAY_CHANGE``, options with resume=True)."""
        tuned = tune_malloc()
        run_dir = rundir.check(Path(run_dir), resume=True)
        changes, option_changes = dict(changes or {}), dict(option_changes or {})
        refuse_resume_changes(host.registry, changes, option_changes)
        writer = distributed.env_rank() == 0  # rank 0 writes the run folder; under torchrun the others only read it
        lock = rundir.RunLock(run_dir) if writer else contextlib.nullcontext()
        lock.__enter__()
        world, session = None, None
        try:
            with open_checkpoint(run_dir) as checkpoint:  # one read: the header now, the data once the run is built
                saved = checkpoint.manifest
                if strategy is not None and saved.get("strategy") != strategy:
                    raise GanzooError(f"{run_dir} is a {saved.get('strategy')} run; resume it with: "
                                      f"ganzoo train {saved.get('strategy')} --resume {run_dir}")
                config = config_from_checkpoint(saved, **changes)
                require_parts(host, saved, TRAINING_KINDS, discriminators=True)
                config = resumed_config(host.registry, config, option_changes)
                if writer:
                    rundir.create(run_dir)  # a run folder whose samples/ went missing gets it back
                world = distributed.join(resolve_device(config.device))
                saved_root = Path(config.data_root) if config.data_root and "data_root" not in changes else None
                with read_only_root(saved_root):  # the data root a checkpoint names is read, never written
                    trainer = Trainer(config, host, run_dir, log=log, world=world, observers=observers, make_evaluator=make_evaluator)
                session = cls(trainer, run_dir, resumed=True, command=command, malloc_tuned=tuned)
                session._lock = lock
                trainer.load_checkpoint(checkpoint)
            check_budget(trainer)
        except BaseException:
            _let_go(session, lock, world)
            raise
        return session

    def run(self) -> dict[str, Any]:
        """Train to the end of the budget; return the last record (with ``run_dir``). The session is
        closed at the end, whatever happens (when the run failed, a failing ``close()`` does not
        hide why)."""
        trainer = self.trainer
        try:
            if trainer.world.writer:
                rundir.remove_stale_temp_files(self.run_dir)  # left by a process killed mid-write; the lock says none runs
                write_config(self)
            try:
                record = trainer.run()
            except PluginError as exc:  # a plugin raised (or exited) in a hook: keep what was trained
                raise PluginError(f"{exc}; {self.save_after_failure()}") from None
            except torch.OutOfMemoryError:
                config = trainer.config
                raise GanzooError(f"out of memory on {trainer.device} at batch size {config.batch_size} with {config.n_gens} "
                                  f"generator(s); try --batch-size {max(1, config.batch_size // 2)}") from None
        except BaseException:
            with contextlib.suppress(Exception):
                self.close()
            raise
        self.close()
        return {**record, "run_dir": str(self.run_dir)}

    def resume_hint(self) -> str:
        return f"continue with: ganzoo train {self.trainer.config.strategy} --resume {self.run_dir}"

    def save_after_failure(self) -> str:
        """Checkpoint the run where a plugin stopped it, when its state is whole and finite; say where
        it stands. Not under torchrun with several ranks: the others are still training, and a save
        there needs them all."""
        trainer = self.trainer
        if trainer.world.size > 1 or not trainer.consistent:
            return self.last_checkpoint()
        try:  # looked at, never rolled back: a failure is no time to reload the state
            metrics = trainer.state.meter.read(trainer.world)
            if trainer.step and not nan_guard.non_finite(metrics, nan_guard.watched(trainer, whole=True)):
                trainer.save_checkpoint()
                return f"checkpoint saved at step {trainer.step}; {self.resume_hint()}"
        except Exception:  # the plugin may fail again while saving: the last checkpoint stays
            pass
        return self.last_checkpoint()

    def last_checkpoint(self) -> str:
        saved = rundir.checkpoint_step(self.run_dir)
        if saved is None:
            return "no checkpoint was saved yet, so there is nothing to resume"
        return f"the last checkpoint (step {saved}) is in {self.run_dir}; {self.resume_hint()}"

    def close(self) -> None:
        """End the session, however the run ended: its observers' ``close()``, the lock, the process
        group. ``run()`` calls it; closing again does nothing."""
        if self.closed:
            return
        self.closed = True
        try:
            self.trainer.dispatch.close()
        finally:
            self._lock.__exit__(None, None, None)
            self._lock = contextlib.nullcontext()
            distributed.leave(self.trainer.world)

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _let_go(session: Session | None, lock: Any, world: distributed.World | None) -> None:
    """A session that failed while being made: close it (its observers, lock and process group) once
    it exists, else let go of what was taken so far. The error that stopped it is what is reported."""
    if session is not None:
        with contextlib.suppress(Exception):
            session.close()
        return
    lock.__exit__(None, None, None)
    if world is not None:
        distributed.leave(world)


def check_budget(trainer: Trainer) -> None:
    """Refuse a run that has nothing left to train."""
    config = trainer.config
    if trainer.step >= trainer.total_steps:
        raise GanzooError(f"{trainer.run_dir} is already at step {trainer.step} (epoch {trainer.epoch}); "
                          f"give a larger --steps or --epochs to train on")
    if config.minutes and trainer.state.clock.seconds >= config.minutes * 60:
        raise GanzooError(f"{trainer.run_dir} has already trained {trainer.state.clock.seconds / 60:.2f} minutes; "
                          f"give a larger --minutes to train on")


def write_config(session: Session) -> None:
    """config.toml: every setting, the parts' options with their defaults, under [train]; provenance under [meta]."""
    trainer, run_dir = session.trainer, session.run_dir
    before = rundir.read_meta(run_dir)
    rundir.write_config(run_dir, trainer.config.to_dict(), {
        "ganzoo_version": __version__,
        "strategy": trainer.config.strategy,
        "architecture": trainer.arch_name,
        "data_source": trainer.data_source,
        "device": str(trainer.device),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "command": before.get("command", session.command),
        "resumed_with": session.command if session.resumed else None,
        "malloc_tuning": session.malloc_tuned,
        "amp": str(trainer.calls.amp).removeprefix("torch.") if trainer.calls.amp else "off",
        "vmap": trainer.calls.vectorized,
        "tf32": trainer.calls.tf32,
        "torch_threads": torch.get_num_threads(),
        "world_size": trainer.world.size,
        "exact_resume": trainer.exact_resume and before.get("exact_resume", True) is not False,  # once not exact, the run is not
    })


@contextlib.contextmanager
def stop_on_signals(trainer: Trainer) -> Iterator[None]:
    """SIGINT, SIGTERM and SIGUSR2 (Slurm's warning before a time limit or preemption, as submitit
    asks for it: ``--signal=USR2@90``; its default action would kill the run without a checkpoint)
    ask the trainer to finish its step, checkpoint and stop (StopRequested; the first signal is the
    one reported); a second SIGINT interrupts at once (KeyboardInterrupt). A SIGINT after another
    signal is not a second Ctrl-C: a launcher passing on a stop it received (a Slurm job's USR2 reaches
    the training both from Slurm and from the job) must not lose the work since the last checkpoint.
    Only in the main thread."""
    interrupts = 0

    def ask_to_stop(number: int, frame: object) -> None:
        nonlocal interrupts
        if number == signal.SIGINT:
            interrupts += 1
            if interrupts > 1:
                raise KeyboardInterrupt
        if trainer.stop_signal is None:
            trainer.stop_signal = number

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    stops = (signal.SIGINT, signal.SIGTERM, *((signal.SIGUSR2,) if hasattr(signal, "SIGUSR2") else ()))
    previous = {s: signal.signal(s, ask_to_stop) for s in stops}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
