"""Evaluating a saved run (``ganzoo eval``, ``ganzoo.api.evaluate``): its generators against its
dataset's test split, the result saved with its protocol beside the checkpoint as eval-<features>.json."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ganzoo.core.data import read_only_root
from ganzoo.core.errors import GanzooError
from ganzoo.core.files import json_safe, write_atomic
from ganzoo.core.host import Host
from ganzoo.evaluation.evaluator import build_evaluator, features_for
from ganzoo.runs import rundir
from ganzoo.runs.models import resolve_device
from ganzoo.runs.sampling import check_seed, class_names, load_generators, run_classes


def evaluate_run(host: Host, run: Path, *, n: int | None = None, features: str | None = None, split: str = "test", n_real: int = 0,
                 seed: int = 0, weights: str = "auto", retrain: bool = False, data_root: Path | None = None,
                 device: str = "cpu", log: Any = lambda _: None, progress: Any = None, save: bool = True,
                 reference: str | None = None) -> dict[str, Any]:
    """Evaluate the checkpoint of a run directory (or a checkpoint file) and return the result;
    with ``save``, also write it to ``result_path(run, features, reference)``. features None: the
    dataset's extractor. reference: another dataset spec to compare with (e.g. a held-apart
    "folder:PATH"), read at the run's image size; by default the run's own dataset."""
    run = Path(run)
    check_run_path(run)
    check_seed(seed)
    generators, manifest = load_generators(host, run, device, weights)
    config = manifest["config"]
    saved_root = Path(config["data_root"]) if config.get("data_root") and not data_root else None  # read, never written
    root = data_root or saved_root
    dataset = reference or config["dataset"]
    if n is None:
        n = host.registry.get("dataset", dataset.partition(":")[0]).eval_samples
    features = features_for(host, config["dataset"], features)
    with read_only_root(saved_root):
        evaluator = build_evaluator(host, dataset, features=features, split=split, n_real=n_real, data_root=root, retrain=retrain,
                                    device=resolve_device(device), log=log, progress=progress,
                                    image_shape=tuple(int(d) for d in manifest["image_shape"]))
    classes = run_classes(manifest)  # a conditional run: every generator is asked for every class
    result = evaluator(generators, n=n, seed=seed, z_dim=int(config["z_dim"]), progress=progress, classes=classes,
                       class_names=class_names(manifest) if classes else None)
    result["protocol"].update(step=manifest.get("step"), strategy=manifest.get("strategy"), weights=manifest["weights"])
    if save:
        text = json.dumps(json_safe(result), indent=1, allow_nan=False)
        write_atomic(result_path(run, features, reference), (text + "\n").encode())
    return result


def result_path(run: Path, features: str, reference: str | None = None) -> Path:
    """eval-<features>.json against the run's dataset; eval-<features>-reference.json against a --reference."""
    return (run if run.is_dir() else run.parent) / f"eval-{features}{'-reference' if reference else ''}.json"


def check_run_path(run: Path) -> None:
    """A run directory with a checkpoint, or a checkpoint file: anything else is a one-line error."""
    try:
        if not run.exists():
            raise GanzooError(f"no such run directory or checkpoint: {run}")
        if run.is_dir() and not os.path.lexists(run / rundir.CHECKPOINT):
            raise GanzooError(f"{run} has no {rundir.CHECKPOINT}; is it a ganzoo run directory?")
    except OSError as exc:  # a name too long, a folder we may not enter
        raise GanzooError(f"cannot use {run}: {exc.strerror or exc}") from None
