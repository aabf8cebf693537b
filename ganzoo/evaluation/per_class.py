"""Class-conditional evaluation: which class each sample was asked for, whether the evaluator's
classifier agrees (class consistency), and FID, precision and recall within each class against the
real images of that label (intra-class FID), over all generators and per generator.

The evaluator (``ganzoo.evaluation.evaluator``) draws the samples and calls ``class_scores``; the
definitions are in docs/evaluation.md ("Class-conditional runs").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ganzoo.evaluation import metrics

CLASS_SAMPLING = "balanced: sample i from generator i mod N asks for class (i // N) mod K"
MIN_SAMPLES = 2  # a class with fewer real or fake samples gets no FID (a covariance needs two)
INTRA_CLASS = ("per class k: FID, and precision/recall (k-NN, k = {k}), of the samples asked for class k against the real "
               "images labelled k; intra_fid_mean and intra_fid_worst over the classes scored (each with at least "
               f"{MIN_SAMPLES} real and {MIN_SAMPLES} generated samples)")


def asked_classes(start: int, count: int, n_gens: int, classes: int) -> Tensor:
    """The class samples start..start+count-1 ask for: sample i, drawn from generator i mod N, asks for
    class (i // N) mod K, so every generator is asked for every class, as often as the others."""
    return (torch.arange(start, start + count) // n_gens) % classes


def predicted_classes(extractor: nn.Module, logits: Tensor | None, classes: int) -> tuple[Tensor | None, str]:
    """The class the extractor's classifier gives each sample, when it classifies this dataset's K
    classes, and how (for the protocol); else None and why not.

    A classifier counts when it was trained on the evaluated dataset's labels: the extractor says so
    with ``classifies_dataset``, else its ``test_accuracy`` (measured on the dataset's labelled test
    split, as the lenet extractor's is) tells; Inception's ImageNet classes never count. One label per
    channel (Stacked MNIST, ``label_channels``) counts when the channel labels encode the class as
    its digits: K = c ** C, class = sum over channels of label_c * c ** (C - 1 - c)."""
    if logits is None:
        return None, "not reported: the extractor has no classifier"
    trained = getattr(extractor, "classifies_dataset", None)
    if trained is None:
        trained = getattr(extractor, "test_accuracy", None) is not None
    if not trained:
        return None, "not reported: the extractor's classifier was not trained on this dataset's labels"
    if logits.dim() == 3:  # (n, channels, c): one label per channel
        channels, per = int(logits.shape[1]), int(logits.shape[2])
        if per ** channels != classes:
            return None, (f"not reported: the classifier labels each of {channels} channels with one of {per} classes, "
                          f"which does not encode the run's {classes} classes")
        return metrics.mode_labels(logits.argmax(dim=2), per), (
            f"the classifier's label of each of the {channels} channels, read as the digits of a class "
            f"(base {per}, first channel first), against the asked class")
    if logits.shape[-1] != classes:
        return None, f"not reported: the classifier has {logits.shape[-1]} classes, the run {classes}"
    return logits.argmax(dim=1), "the classifier's argmax against the asked class"


def class_scores(real: Tensor, real_labels: Tensor | None, fake: Tensor, asked: Tensor, predicted: Tensor | None,
                 classes: int, names: Sequence[str], *, pr_k: int, owner: Tensor | None = None, n_gens: int = 1
                 ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The class scores of one evaluation (top-level keys) and, with ``owner`` and N > 1, each
    generator's (class_consistency, intra_fid_mean and the per-class lists)."""
    asked = asked.to(fake.device)
    right = None if predicted is None else (predicted.to(fake.device) == asked)
    real_rows = [None if real_labels is None else (real_labels == k).nonzero().flatten() for k in range(classes)]
    fake_rows = [(asked == k).nonzero().flatten() for k in range(classes)]
    per_class = []
    for k in range(classes):
        entry = _one_class(real, real_rows[k], fake, fake_rows[k], right, pr_k=pr_k)
        per_class.append({"class": k, "name": names[k] if k < len(names) else str(k), **entry})
    fids = [(c["fid"], c["class"]) for c in per_class if c["fid"] is not None and math.isfinite(c["fid"])]
    worst = max(fids, default=None)
    out: dict[str, Any] = {
        "class_consistency": None if right is None else float(right.float().mean()),
        "intra_fid_mean": _mean([f for f, _ in fids]),
        "intra_fid_worst": None if worst is None else worst[0],
        "intra_fid_worst_class": None if worst is None else worst[1],
        "intra_precision_mean": _mean([c["precision"] for c in per_class if c["precision"] is not None]),
        "intra_recall_mean": _mean([c["recall"] for c in per_class if c["recall"] is not None]),
        "per_class": per_class,
    }
    generators = []
    if owner is not None and n_gens > 1:
        owner = owner.to(fake.device)
        for i in range(n_gens):
            mine = owner == i
            fid_k, consistency_k = [], []
            for k in range(classes):
                rows = fake_rows[k][mine[fake_rows[k]]]
                entry = _one_class(real, real_rows[k], fake, rows, right, pr_k=pr_k, knn=False)
                fid_k.append(entry["fid"])
                consistency_k.append(entry["consistency"])
            generators.append({
                "class_consistency": None if right is None or not bool(mine.any()) else float(right[mine].float().mean()),
                "intra_fid_mean": _mean([f for f in fid_k if f is not None]),
                "per_class_fid": fid_k,
                "per_class_consistency": consistency_k,
            })
    return out, generators


def _one_class(real: Tensor, real_rows: Tensor | None, fake: Tensor, fake_rows: Tensor, right: Tensor | None, *,
               pr_k: int, knn: bool = True) -> dict[str, Any]:
    n_real = 0 if real_rows is None else len(real_rows)
    entry: dict[str, Any] = {"fid": None, "precision": None, "recall": None,
                             "consistency": None if right is None or not len(fake_rows) else float(right[fake_rows].float().mean()),
                             "n_fake": len(fake_rows), "n_real": n_real, "note": None}
    if real_rows is None:
        entry["note"] = "the real split has no labels"
    elif n_real < MIN_SAMPLES or len(fake_rows) < MIN_SAMPLES:
        entry["note"] = f"skipped: fewer than {MIN_SAMPLES} " + ("real images" if n_real < MIN_SAMPLES else "samples") + " of this class"
    else:
        r, f = real[real_rows], fake[fake_rows]
        entry["fid"] = class_fid(r, f)
        if knn and min(len(r), len(f)) > pr_k:  # a k-th neighbour needs k others
            entry["precision"], entry["recall"] = metrics.precision_recall(r, f, k=pr_k)
    return entry


def class_fid(real: Tensor, fake: Tensor) -> float:
    """FID of one class's features: ``metrics.fid`` (the evaluator's FID), or its exact low-rank form
    ``metrics.fid_low_rank`` when a set has fewer samples than features (then far cheaper)."""
    if min(len(real), len(fake)) < real.shape[1]:
        return metrics.fid_low_rank(real, fake)
    return metrics.fid(real, fake)


def _mean(values: list[float]) -> float | None:
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else None
