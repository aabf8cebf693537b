"""EMA of generator weights (``--ema DECAY``), for any strategy: an observer plugin.

After every generator step, for each generator and every float entry of its state dict
(weights and batch-norm statistics): avg <- d * avg + (1 - d) * live, with d = decay, or with
``--ema-warmup`` d = min(decay, (1 + t) / (10 + t)) at generator step t (the warm-up of
TensorFlow's ExponentialMovingAverage), so that a short run's average is not dominated by the
initial weights: at 0.999 plain, they still make up 26% of the average after 1,330 steps (SNGAN's
first minute on 2 cores; the recipe study, docs/results/recipes, measured FID 1,625 for that average
against 268 for the raw weights). The averages are saved in the run's checkpoint as
``ema.generator.<i>.<key>`` (same file, same atomic write), so a resume continues them exactly.
``ganzoo sample`` and ``ganzoo eval`` use them by default (``--weights raw`` for the trained
ones), and so do the run's own sample grids and ``--eval-every`` evaluations
(``ganzoo_sampling_weights``), so what a run shows while it trains is what it gives.

Each run gets its own averages (``ganzoo_run_observers``, the ``Averages`` in averages.py): two
runs in one process never share them.
"""

from __future__ import annotations

from ganzoo import hookimpl
from ganzoo.core.options import boolean_check, number_check, value_of
from ganzoo.core.parts import TrainOption
from ganzoo.core.search import Search

DECAY = TrainOption(
    "--ema", "ema",
    "Keep an exponential moving average of each generator's weights with this decay (e.g. 0.999); "
    "sample grids, --eval-every, ganzoo sample and ganzoo eval use it. 0: off.",
    type=float, check=number_check(0.0, 1.0, high_open=True, flag="--ema"), default=0.0, search=Search(0.99, 0.9999),
)
WARMUP = TrainOption(
    "--ema-warmup", "ema_warmup",
    "Warm the average up: decay min(DECAY, (1 + t) / (10 + t)) at step t, so early weights fade fast.",
    is_flag=True, check=boolean_check("--ema-warmup"), default=False,
)


@hookimpl
def ganzoo_register_train_options(register):
    register(DECAY)
    register(WARMUP)


@hookimpl
def ganzoo_run_observers(trainer):
    decay = float(value_of(trainer.config, DECAY))
    if not decay:
        return None
    from ganzoo.plugins.ema.averages import Averages  # torch: only once a run uses it

    return Averages(trainer, decay, bool(value_of(trainer.config, WARMUP)))
