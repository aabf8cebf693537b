"""ganzoo from Python, for notebooks and scripts: train a strategy into a folder, resume it, load a
run, sample from it, evaluate it. Each function returns plain data (dataclasses, dicts, numpy
arrays) and raises a ``ganzoo.core.errors.GanzooError`` with a one-line message for bad input; the
runs are the same folders ``ganzoo train`` makes (docs/python-api.md).

    from ganzoo import api

    run = api.train("psg", "runs/psg2", n_gens=2, steps=500, options={"ema": 0.999}, progress=print)
    images = api.sample(run.path, n=16)       # uint8, (generators, 16, H, W, C)
    scores = api.evaluate(run.path, n=2000)   # {"fid": ..., "kid": ..., "protocol": {...}}
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ganzoo.core.compose import new_config
from ganzoo.core.environment import check_environment
from ganzoo.core.errors import GanzooError
from ganzoo.core.host import Host, load_host
from ganzoo.core.safe_read import check_memory
from ganzoo.core.tensorfile import read_manifest
from ganzoo.evaluation.in_training import training_evaluator
from ganzoo.evaluation.run_eval import evaluate_run
from ganzoo.runs import rundir
from ganzoo.runs.checkpoint import check_manifest
from ganzoo.runs.sampling import check_seed, open_draw, pick_classes
from ganzoo.training.session import Session, stop_on_signals


@dataclass(frozen=True)
class Progress:
    """What a training run reports to a ``progress`` callback: at every logging point (``log_every``
    steps) and at every epoch's end (``epoch_end``)."""

    step: int
    total_steps: int  # the step budget (2**62 for a run limited by minutes only)
    epoch: int
    metrics: dict[str, Any]  # the last logged metrics: d_loss, g_loss, d_accuracy, chance, ... (and FID when evaluated)
    epoch_end: bool = False


@dataclass(frozen=True)
class Run:
    """A run folder as data: its settings (config.toml's [train]), its records (metrics.jsonl) and where its checkpoint is."""

    path: Path
    strategy: str
    step: int
    epoch: int
    settings: dict[str, Any]
    records: list[dict[str, Any]]

    @property
    def last(self) -> dict[str, Any]:
        """The last record (the end of the run, or of its last epoch)."""
        return self.records[-1] if self.records else {}


class _Reporter:
    """Calls ``progress(Progress(...))``: an observer of one run."""

    def __init__(self, progress: Callable[[Progress], Any]):
        self.progress = progress

    def ganzoo_on_step_end(self, trainer, step):
        if step % trainer.config.log_every == 0:
            self.progress(Progress(step, trainer.total_steps, trainer.epoch, dict(trainer.latest)))

    def ganzoo_on_epoch_end(self, trainer, epoch, metrics):
        self.progress(Progress(trainer.step, trainer.total_steps, epoch, dict(metrics), epoch_end=True))


def _host(host: Host | None) -> Host:
    check_environment()  # GANZOO_DATA, GANZOO_CACHE, ...: as the command line checks them
    return host if host is not None else load_host()


def _observers(progress: Callable[[Progress], Any] | None) -> list[object]:
    return [] if progress is None else [_Reporter(progress)]


def _train(session: Session) -> Run:
    with session, stop_on_signals(session.trainer):  # Ctrl-C (a notebook's interrupt): stop after this step, with a checkpoint
        session.run()
    return load_run(session.run_dir)


def train(strategy: str, out: str | Path | None = None, *, options: dict[str, Any] | None = None,
          progress: Callable[[Progress], Any] | None = None, host: Host | None = None, **settings: Any) -> Run:
    """Train ``strategy`` into the folder ``out`` (default runs/<strategy>-<time>) and return the run.

    ``settings`` are ``ganzoo train``'s options by their names in config.toml (``n_gens=2``,
    ``steps=500``, ``lr=2e-4``, ``dataset="fashion-mnist"``, ``eval_every="2m"``, ...), ``options``
    the parts' (``{"ema": 0.999, "loss": "hinge"}``): checked as the command line checks them. A
    Ctrl-C stops after the current step with a checkpoint (StopRequested); ``resume`` goes on.
    """
    host = _host(host)
    config = new_config(host.registry, strategy, None, settings, options)
    run_dir = Path(out) if out is not None else rundir.default_run_dir(strategy)
    session = Session.new(host, config, run_dir, observers=_observers(progress), make_evaluator=training_evaluator(host),
                          command=f"ganzoo.api.train({strategy!r})")
    return _train(session)


def resume(run_dir: str | Path, *, options: dict[str, Any] | None = None, progress: Callable[[Progress], Any] | None = None,
           host: Host | None = None, **changes: Any) -> Run:
    """Continue a run to a larger budget (``steps=1000``, ``epochs=5``, ``minutes=10``); only what
    cannot change the training may change (budgets, logging, evaluation, speed switches)."""
    host = _host(host)
    session = Session.resume(host, Path(run_dir), changes=changes, option_changes=options, observers=_observers(progress),
                             make_evaluator=training_evaluator(host), command="ganzoo.api.resume()")
    return _train(session)


def load_run(run_dir: str | Path) -> Run:
    """A run folder's settings, records and step, read without loading any network."""
    path = Path(run_dir)
    if not (path / rundir.CHECKPOINT).exists():
        raise GanzooError(f"{path} holds no run (no {rundir.CHECKPOINT})")
    settings = rundir.read_meta(path, "train")
    records = rundir.read_metrics(path)
    manifest = check_manifest(read_manifest(path / rundir.CHECKPOINT), str(path / rundir.CHECKPOINT))
    return Run(path, str(manifest.get("strategy", settings.get("strategy", ""))), int(manifest.get("step", 0)),
               int(manifest.get("epoch", 0)), settings, records)


def sample(run_dir: str | Path, n: int = 64, *, generator: int | None = None, seed: int = 0, weights: str = "auto",
           device: str = "cpu", classes: str | int | None = None, host: Host | None = None) -> np.ndarray:
    """``n`` samples per generator as uint8 (generators, n, H, W, C); ``generator`` (1-based) picks
    one. The same images as ``ganzoo sample --seed`` draws; ``weights``: auto (a saved average such
    as EMA when the run has one), raw, or a set's name.

    A class-conditional run gives (generators, classes, n, H, W, C): ``classes`` picks them as
    ``ganzoo sample --class`` does (a label, a name, a comma list, "all"; None: every class), in
    that order; sample i of every class has the same z."""
    check_seed(seed)
    if not 1 <= n <= 1_000_000:
        raise GanzooError(f"n must be between 1 and 1000000, got {n}")
    draw = open_draw(_host(host), Path(run_dir), generator=generator, device=device, weights=weights)
    labels = pick_classes(draw, None if classes is None else str(classes))
    # the chunks, then their copy in one array: twice the images' bytes
    check_memory(2 * n * max(1, len(labels)) * len(draw.indices) * math.prod(draw.image_shape),
                 f"drawing {n} samples per generator{' and class' if labels else ''}", hint="; lower n")

    def images(position: int, label: int | None) -> np.ndarray:
        return np.concatenate([chunk.numpy() for chunk in draw.chunks(position, n, seed, label=label)]).transpose(0, 2, 3, 1)

    if not labels:
        return np.stack([images(position, None) for position in range(len(draw.indices))])
    return np.stack([np.stack([images(position, label) for label in labels]) for position in range(len(draw.indices))])


def evaluate(run_dir: str | Path, *, n: int | None = None, features: str | None = None, split: str = "test", seed: int = 0,
             weights: str = "auto", device: str = "cpu", save: bool = True, reference: str | None = None,
             host: Host | None = None) -> dict[str, Any]:
    """Evaluate a run as ``ganzoo eval`` does (FID, KID, precision/recall, density/coverage, classes,
    per generator too) and, with ``save``, write it beside the checkpoint as eval-<features>.json.
    features None: the dataset's extractor (lenet; inception for folders); reference: another
    dataset spec to compare with, e.g. a held-apart "folder:PATH"."""
    return evaluate_run(_host(host), Path(run_dir), n=n, features=features, split=split, seed=seed, weights=weights,
                        device=device, save=save, reference=reference)
