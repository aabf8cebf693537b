"""Evaluations while a run trains (``--eval-every``): the evaluator a training session is handed, so
that training reaches evaluation only through a callable it is given (``ganzoo.training.session``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganzoo.core.config import TrainConfig
from ganzoo.core.host import Host
from ganzoo.evaluation.evaluator import Evaluator, build_evaluator


def training_evaluator(host: Host, log: Callable[[str], None] = lambda _: None
                       ) -> Callable[[TrainConfig, torch.device], Callable[..., dict[str, Any]]]:
    """For ``Session.new``/``resume(make_evaluator=...)``: builds a run's evaluator from its config
    (its dataset's test split, ``--eval-features``), before the run trains a step. What it returns
    is called ``evaluate(generators, config, classes=K)``, K the classes of a conditional run (0: none)."""

    def make(config: TrainConfig, device: torch.device) -> Callable[..., dict[str, Any]]:
        evaluator = build_evaluator(host, config.dataset, features=config.eval_features or None, n_real=config.eval_n_real,
                                    resolution=config.resolution,
                                    channels=config.channels, data_root=Path(config.data_root) if config.data_root else None,
                                    device=device, log=log)
        def evaluate(generators: nn.ModuleList, run_config: TrainConfig, classes: int = 0) -> dict[str, Any]:
            return flat_scores(evaluator, generators, run_config, classes=classes)

        return evaluate

    return make


def flat_scores(evaluator: Evaluator, generators: nn.ModuleList, config: Any, classes: int = 0) -> dict[str, Any]:
    """An evaluation during training (``--eval-every``): ``eval_n`` samples (same z every time),
    flattened for metrics.jsonl; with ``classes`` K > 0, a conditional run's class scores too."""
    started = time.perf_counter()
    result = evaluator(generators, n=config.eval_n, seed=config.seed, z_dim=config.z_dim, classes=classes)
    flat = {k: v for k, v in result.items() if isinstance(v, (int, float))}
    if "class_histogram" in result:
        flat["class_histogram"] = result["class_histogram"]
    for scores in result.get("generators", []):
        for key in ("fid", "classes", "modes", "class_histogram", "class_consistency", "intra_fid_mean"):
            if key in scores:
                flat.setdefault(f"{key}_per_generator", []).append(scores[key])
    protocol = result["protocol"]
    flat["eval_protocol"] = {k: protocol.get(k) for k in ("dataset", "extractor", "extractor_fingerprint", "extractor_weights",
                                                      "extractor_weights_sha256", "extractor_protocol", "split", "n_real", "n_fake", "seed")}
    flat["eval_protocol"].update({k: protocol[k] for k in ("classes", "class_sampling", "class_consistency_note") if k in protocol})
    flat["eval_seconds"] = time.perf_counter() - started
    return flat
