"""EMA of generator weights (``--ema DECAY``), for any strategy: an observer plugin.

After every generator step, for each generator and every float entry of its state dict
(weights and batch-norm statistics): avg <- d * avg + (1 - d) * live, with d = decay, or with
``--ema-warmup`` d = min(decay, (1 + t) / (10 + t)) at generator step t (the warm-up of
TensorFlow's ExponentialMovingAverage), so that a short run's average is not dominated by the
initial weights: at 0.999 plain, they still make up 26% of the average after 1,330 steps (SNGAN's
first minute on 2 cores; the recipe study, docs/results/recipes, measured FID 1,625 for that average
against 268 for the raw weights). The averages are
saved in the run's checkpoint as ``ema.generator.<i>.<key>`` (same file, same atomic write), so a
resume continues them exactly. ``ganzoo sample`` and ``ganzoo eval`` use them by default
(``--weights raw`` for the trained ones), and so do the run's own sample grids and ``--eval-every``
evaluations (``ganzoo_sampling_weights``), so what a run shows while it trains is what it gives.
"""

from __future__ import annotations

import weakref

import torch

from ganzoo import hookimpl
from ganzoo.core.errors import CheckpointError
from ganzoo.core.parts import TrainOption
from ganzoo.core.options import boolean_check, number_check

PREFIX = "ema"

# trainer -> one {state key: average} per generator; weak, so a finished trainer takes its averages along
_AVERAGES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def decay_of(trainer) -> float | None:
    decay = trainer.config.options.get("ema")
    return float(decay) if decay else None


def averages(trainer) -> list[dict[str, torch.Tensor]] | None:
    """The trainer's current averages (None when the run has no --ema)."""
    return _AVERAGES.get(trainer)


def _copy_of(trainer) -> list[dict[str, torch.Tensor]]:
    return [{k: v.detach().clone() for k, v in g.state_dict().items()} for g in trainer.generators]


@hookimpl
def ganzoo_register_train_options(register):
    register(TrainOption(
        "--ema", "ema",
        "Keep an exponential moving average of each generator's weights with this decay (e.g. 0.999); "
        "sample grids, --eval-every, ganzoo sample and ganzoo eval use it. 0: off. [default: off]",
        type=float, check=number_check(0.0, 1.0, high_open=True, flag="--ema"),
    ))
    register(TrainOption(
        "--ema-warmup", "ema_warmup",
        "Warm the average up: decay min(DECAY, (1 + t) / (10 + t)) at step t, so early weights fade fast. [default: no]",
        is_flag=True, check=boolean_check("--ema-warmup"),
    ))


@hookimpl
def ganzoo_on_train_start(trainer):
    if decay_of(trainer) is not None and trainer not in _AVERAGES:
        _AVERAGES[trainer] = _copy_of(trainer)  # a new run starts its averages at the initial weights


@hookimpl
def ganzoo_on_step_end(trainer, step):
    decay = decay_of(trainer)
    table = _AVERAGES.get(trainer)
    if decay is None or table is None:
        return
    if trainer.config.options.get("ema_warmup"):
        decay = min(decay, (1 + step) / (10 + step))
    with torch.no_grad():  # in-place device ops only: no host sync on the hot path
        for generator, average in zip(trainer.generators, table):
            for key, live in generator.state_dict().items():
                if live.is_floating_point():
                    average[key].lerp_(live, 1.0 - decay)
                else:
                    average[key].copy_(live)  # counters such as BN's num_batches_tracked


@hookimpl
def ganzoo_sampling_weights(trainer):
    table = _AVERAGES.get(trainer)
    return (PREFIX, table) if decay_of(trainer) is not None and table is not None else None


@hookimpl
def ganzoo_add_checkpoint_tensors(trainer, tensors):
    for i, average in enumerate(_AVERAGES.get(trainer) or ()):
        for key, value in average.items():
            tensors[f"{PREFIX}.generator.{i}.{key}"] = value


@hookimpl
def ganzoo_on_checkpoint_load(trainer, tensors):
    if decay_of(trainer) is None:
        return
    table = _copy_of(trainer)
    for i, average in enumerate(table):
        for key in average:
            name = f"{PREFIX}.generator.{i}.{key}"
            saved = tensors.get(name)
            if saved is None:  # a checkpoint saved before --ema existed starts from the weights
                continue
            if not isinstance(saved, torch.Tensor) or saved.shape != average[key].shape:
                raise CheckpointError(f"checkpoint tensor {name!r} does not fit generator {i + 1} "
                                      f"(shape {tuple(getattr(saved, 'shape', ()))}, needs {tuple(average[key].shape)})")
            average[key] = saved.to(device=average[key].device, dtype=average[key].dtype).clone()
    _AVERAGES[trainer] = table
