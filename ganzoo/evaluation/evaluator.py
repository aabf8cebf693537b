"""Evaluation of generators against a dataset split: one Evaluator per (dataset, extractor), reused.

The data path: load the extractor through the registry, extract the real split's features once
(cached on disk), then for each evaluation draw n samples round-robin from the generators, extract
their features and class logits batch by batch, and compute every metric from ganzoo.evaluation.metrics.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ganzoo import __version__
from ganzoo.core.config import EVAL_FEATURES
from ganzoo.core.data import default_root, load_data, to_unit
from ganzoo.core.digests import data_hash
from ganzoo.core.errors import GanzooError
from ganzoo.core.host import Host
from ganzoo.core.parts import ExtractorRequest, ImageData
from ganzoo.core.safe_read import check_memory
from ganzoo.core.tensorfile import read_tensor_file, save_tensor_file
from ganzoo.evaluation import metrics, per_class

BATCH = 500
Progress = Callable[[str, int, int], None]  # progress(what, done, total), for a progress bar
KID_SUBSETS, KID_SUBSET_SIZE = 100, 1000
PR_K, DC_K = 3, 5


def default_cache() -> Path:
    """$GANZOO_CACHE, else ~/.cache/ganzoo (classifier weights and real-feature files)."""
    return Path(os.environ.get("GANZOO_CACHE") or Path.home() / ".cache" / "ganzoo")


KNN_CHUNK = 2048  # rows of a k-NN distance matrix at a time (ganzoo.evaluation.metrics)


def scoring_bytes(n_fake: int, n_real: int, num_features: int) -> int:
    """About the most memory scoring takes: the features (and their copies while they are gathered),
    a chunk of k-NN distances (with cdist's and topk's work space), FID's covariances."""
    features = 4 * num_features * 2 * (n_fake + n_real)
    distances = 3 * 4 * KNN_CHUNK * max(n_fake, n_real)
    return features + distances + 6 * 8 * num_features * num_features


@dataclass
class Evaluator:
    """Scores generators against the real features of one split. Build it with ``build_evaluator``."""

    extractor: nn.Module
    real_features: Tensor
    protocol: dict[str, Any]
    real_radii: dict[int, Tensor] = field(default_factory=dict)  # k -> metrics.real_radii, cached with the features
    real_labels: Tensor | None = None  # (len(real_features),) the real images' labels, when the split has them
    class_names: tuple[str, ...] | None = None  # the dataset's names of its classes, by label

    @torch.no_grad()
    def __call__(self, generators: nn.ModuleList, *, n: int, seed: int, z_dim: int,
                 progress: Progress | None = None, classes: int = 0,
                 class_names: tuple[str, ...] | None = None) -> dict[str, Any]:
        """Metrics of n samples drawn round-robin from the generators (sample i from generator
        i mod N, its own z from a generator seeded with ``seed``); per generator too when N > 1.
        classes: K > 0 for class-conditional generators, called g(z, y): sample i asks for class
        (i // N) mod K (``per_class.asked_classes``; z as without classes), and the result adds the
        class scores (``per_class.class_scores``). class_names: the run's, else the dataset's."""
        if n < 2 * len(generators):
            raise GanzooError(f"evaluating {len(generators)} generators needs at least {2 * len(generators)} samples, got {n}")
        check_memory(scoring_bytes(n, len(self.real_features), int(self.real_features.shape[1])),
                     f"evaluating {n:,} samples against {len(self.real_features):,} real images", hint="; lower --n (or --eval-n)")
        device = next(itertools.chain(generators.parameters(), generators.buffers())).device
        modes = [g.training for g in generators]
        generators.eval()
        rng = torch.Generator(device).manual_seed(seed)
        n_gens = len(generators)
        features, labels, owner, asked = [], [], [], []
        try:
            for start in range(0, n, BATCH):
                count = min(BATCH, n - start)
                index = torch.arange(start, start + count) % n_gens
                z = torch.randn(count, z_dim, generator=rng, device=device)
                y = per_class.asked_classes(start, count, n_gens, classes).to(device) if classes else None
                images = torch.empty(0)
                for i, g in enumerate(generators):
                    rows = (index == i).nonzero().flatten()
                    if len(rows):
                        rows_ = rows.to(device)
                        made = g(z[rows_]) if y is None else g(z[rows_], y[rows_])
                        if not bool(torch.isfinite(made).all()):  # NaN features crash FID's BLAS (a segfault)
                            raise GanzooError(f"generator {i + 1} made NaN or infinite pixels; its weights cannot be evaluated")
                        if images.numel() == 0:
                            images = made.new_empty(count, *made.shape[1:])
                        images[rows.to(device)] = made
                images = images.clamp(-1, 1).to(self.real_features.device)
                features.append(self.extractor(images).float())
                if self.extractor.logits is not None:
                    labels.append(self.extractor.logits(images).float())
                owner.append(index)
                if y is not None:
                    asked.append(y.cpu())
                if progress is not None:
                    progress("generated samples", start + count, n)
        finally:
            for g, mode in zip(generators, modes):
                g.train(mode)
        fake = torch.cat(features)
        if not bool(torch.isfinite(fake).all()):
            raise GanzooError(f"the {self.protocol['extractor']} features of the samples hold NaN or infinite values")
        logits = torch.cat(labels) if labels else None
        result = {"protocol": {**self.protocol, "n_fake": n, "seed": seed, "n_generators": n_gens}}
        steps = 1 + (n_gens if n_gens > 1 else 0)  # the k-NN metrics over all samples take seconds at 10,000
        result.update(self.scores(fake, logits))
        if progress is not None:
            progress("metrics", 1, steps)
        owner_ = torch.cat(owner).to(fake.device)
        if n_gens > 1:
            result["generators"] = []
            for i in range(n_gens):
                rows = owner_ == i
                result["generators"].append(self.scores(fake[rows], None if logits is None else logits[rows], knn=False))
                if progress is not None:
                    progress("metrics", 2 + i, steps)
        if classes:
            self._class_scores(result, fake, logits, torch.cat(asked), owner_, classes, class_names)
        return result

    def _class_scores(self, result: dict[str, Any], fake: Tensor, logits: Tensor | None, asked: Tensor, owner: Tensor,
                      classes: int, class_names: tuple[str, ...] | None) -> None:
        """A conditional run's class consistency, intra-class FID and per-class scores, into result."""
        predicted, how = per_class.predicted_classes(self.extractor, logits, classes)
        names = tuple(class_names or self.class_names or ())
        names = names if len(names) == classes else tuple(str(k) for k in range(classes))
        n_gens = result["protocol"]["n_generators"]
        scores, generators = per_class.class_scores(self.real_features, self.real_labels, fake, asked, predicted, classes, names,
                                                    pr_k=PR_K, owner=owner, n_gens=n_gens)
        result.update(scores)
        for mine, extra in zip(result.get("generators", []), generators):
            mine.update(extra)
        skipped = [c["class"] for c in scores["per_class"] if c["fid"] is None]
        result["protocol"].update(
            classes=classes, class_sampling=per_class.CLASS_SAMPLING, class_consistency_note=how,
            intra_class=per_class.INTRA_CLASS.format(k=PR_K) if self.real_labels is not None
            else "not reported: the real split has no labels",
            classes_skipped=skipped)

    def scores(self, fake: Tensor, logits: Tensor | None, *, knn: bool = True) -> dict[str, Any]:
        real = self.real_features
        out: dict[str, Any] = {"fid": metrics.fid(real, fake)}
        kid_mean, kid_std = metrics.kid(real, fake, subsets=KID_SUBSETS, subset_size=KID_SUBSET_SIZE)
        out.update(kid=kid_mean, kid_std=kid_std)
        if knn:
            out["precision"], out["recall"] = metrics.precision_recall(real, fake, k=PR_K, radii=self.real_radii.get(PR_K))
            out["density"], out["coverage"] = metrics.density_coverage(real, fake, k=DC_K, radii=self.real_radii.get(DC_K))
        if logits is not None:
            classes = logits.shape[-1]
            if logits.dim() == 3:  # one label per channel: modes are the label tuples
                channel_labels = logits.argmax(dim=2)
                n_modes = classes ** channel_labels.shape[1]
                histogram = metrics.class_histogram(metrics.mode_labels(channel_labels, classes), n_modes)
                out.update(modes=metrics.covered(histogram), modes_total=n_modes, modes_kl=metrics.kl_to_uniform(histogram))
            else:
                histogram = metrics.class_histogram(logits.argmax(dim=1), classes)
                out.update(
                    classes=metrics.covered(histogram),
                    class_kl=metrics.kl_to_uniform(histogram),
                    inception_score=metrics.inception_score(logits),
                    class_histogram=histogram.tolist(),
                )
        return out


def spread(total: int, count: int) -> Tensor:
    """count indices evenly spaced through 0..total-1: a subset that spans a split stored in class
    order (a folder's sorted subfolders) as well as a shuffled one."""
    return torch.linspace(0, total - 1, count).round().long()


def features_for(host: Host, dataset: str, features: str | None = None) -> str:
    """The extractor of an evaluation: the one named, else the dataset's (lenet; inception for folders)."""
    if features:
        return features
    return getattr(host.registry.get("dataset", dataset.partition(":")[0]), "eval_features", EVAL_FEATURES) or EVAL_FEATURES


def build_evaluator(host: Host, dataset: str, *, features: str | None = None, split: str = "test", n_real: int = 0,
                    data_root: Path | None = None, cache_dir: Path | None = None, retrain: bool = False,
                    device: torch.device | str = "cpu", log: Callable[[str], None] = lambda _: None,
                    progress: Progress | None = None, image_shape: tuple[int, ...] | None = None,
                    resolution: int = 0, channels: int = 0) -> Evaluator:
    """Load the extractor and the real split's features (from the cache when they were computed before).
    n_real: K > 0 uses K real images evenly spaced through the split (``spread``); 0: all.

    image_shape (C, H, W): the generators' images; a dataset that resizes (folder:PATH) is read at
    that size, and any other must have it. resolution, channels: a folder's settings without an
    image_shape (0: as stored)."""
    registry = host.registry
    features = features_for(host, dataset, features)
    entry = registry.entry("extractor", features)
    root = Path(data_root) if data_root else default_root()
    cache = Path(cache_dir) if cache_dir else default_cache()
    device = torch.device(device)
    loaded: dict[tuple[str, str], ImageData] = {}

    dataset_part = registry.get("dataset", dataset.partition(":")[0])
    if image_shape is not None and dataset_part.resizes:
        channels, resolution = int(image_shape[0]), int(image_shape[-1])

    def load_split(spec: str, which: str) -> ImageData:
        if (spec, which) not in loaded:
            sizes = {"resolution": resolution, "channels": channels} if spec == dataset else {}
            loaded[spec, which] = load_data(registry, spec, root, which, **sizes)
        return loaded[spec, which]

    real = load_split(dataset, split)
    subset = 0 < n_real < len(real.images)
    images = real.images[spread(len(real.images), n_real)] if subset else real.images
    if len(images) <= DC_K:  # the k-th neighbour radii of density/coverage need k + 1 images
        raise GanzooError(f"the {split} split of {dataset!r} has {len(images)} images; evaluation needs at least {DC_K + 1}")
    if image_shape is not None and tuple(images.shape[1:]) != tuple(image_shape):
        shape = "x".join(map(str, images.shape[1:]))
        raise GanzooError(f"{dataset!r} has {shape} images (CxHxW); the generators make {'x'.join(map(str, image_shape))}")
    request = ExtractorRequest(
        dataset=dataset, channels=int(images.shape[1]), stacked_from=dataset_part.stacked_from,
        load_split=load_split, cache_dir=cache, retrain=retrain, device=device, log=log,
    )
    extractor = entry.part.load(request)
    for attribute in ("num_features", "fingerprint", "logits"):
        if not hasattr(extractor, attribute):
            raise GanzooError(f"extractor {features!r} from plugin {entry.plugin!r} lacks the attribute {attribute!r}")
    labels = None if real.labels is None else (real.labels[spread(len(real.images), n_real)] if subset else real.labels)
    real_data = ImageData(images, None, real.source, digest=None if subset else real.digest, release=None if subset else real.release)
    real_features, radii = _real_features(extractor, real_data, cache, f"{features}-{extractor.fingerprint}", device, log, progress)
    protocol = {
        "dataset": dataset,
        "split": split,
        "n_real": len(images),
        "extractor": features,
        "extractor_plugin": entry.plugin,
        "extractor_fingerprint": extractor.fingerprint,
        "extractor_test_accuracy": getattr(extractor, "test_accuracy", None),
        "extractor_weights": getattr(extractor, "weights_source", None),  # e.g. "shipped", "trained here"
        "extractor_weights_sha256": getattr(extractor, "weights_sha256", None),
        "extractor_protocol": getattr(extractor, "protocol", None),
        "num_features": int(extractor.num_features),
        "kid_subsets": KID_SUBSETS,
        "kid_subset_size": KID_SUBSET_SIZE,
        "precision_recall_k": PR_K,
        "density_coverage_k": DC_K,
        "ganzoo_version": __version__,
    }
    return Evaluator(extractor, real_features, protocol, radii,
                     None if labels is None else labels.long().to(real_features.device), real.classes)


@torch.no_grad()
def _real_features(extractor: nn.Module, data: ImageData, cache: Path, tag: str, device: torch.device,
                   log: Callable[[str], None], progress: Progress | None) -> tuple[Tensor, dict[int, Tensor]]:
    """The real split's features and their k-th-neighbour radii (k = PR_K, DC_K), from the cache
    beside the extractor's weights when there, else computed and cached."""
    key = hashlib.sha256(f"{tag}:{data_hash(data)}".encode()).hexdigest()[:16]
    path = cache / f"features-{tag}-{key}.safetensors"
    wanted = {k: f"radii.k{k}" for k in (PR_K, DC_K)}
    if path.exists():
        tensors, _ = read_tensor_file(path)
        features = tensors.get("features")
        if features is not None and features.shape == (len(data.images), extractor.num_features):
            radii = {k: tensors[name].to(device) for k, name in wanted.items() if tensors.get(name) is not None
                     and tensors[name].shape == (len(features),)}
            if len(radii) < len(wanted):  # a cache from before the radii were kept: add them once
                radii = {k: metrics.real_radii(features, k) for k in wanted}
                save_tensor_file(path, {"features": features, **{wanted[k]: r for k, r in radii.items()}},
                                {"tag": tag, "images": len(data.images)})
            return features.to(device), {k: r.to(device) for k, r in radii.items()}
    check_memory(scoring_bytes(0, len(data.images), int(extractor.num_features)) + BATCH * data.images[0].numel() * 4 * 8,
                 f"extracting the features of {len(data.images):,} real images", hint="; lower --n-real")
    log(f"extracting features of {len(data.images)} real images (cached for next time)")
    out = []
    for start in range(0, len(data.images), BATCH):
        out.append(extractor(to_unit(data.images[start:start + BATCH]).to(device)).float())
        if data.release is not None:  # a memory-mapped split: its pages read so far leave the process
            data.release()
        if progress is not None:
            progress("real features", min(start + BATCH, len(data.images)), len(data.images))
    features = torch.cat(out)
    radii = {k: metrics.real_radii(features, k) for k in wanted}
    cache.mkdir(parents=True, exist_ok=True)
    save_tensor_file(path, {"features": features, **{wanted[k]: r for k, r in radii.items()}}, {"tag": tag, "images": len(data.images)})
    return features, radii
