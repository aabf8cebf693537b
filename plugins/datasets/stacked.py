"""Stacked MNIST (Metz et al. 2017; Srivastava et al. 2017; Lin et al. 2018): three MNIST digits as
the three channels of one 28x28 image, so 1,000 modes (label = 100 d1 + 10 d2 + d3).

The images are composed by a fixed seed, so every run and every machine sees the same set:
25,600 training images (the protocol's size) drawn from MNIST's training split and 10,000 test
images drawn from its test split.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ganzoo.core.parts import ImageData

from .mnist import load_mnist

SIZES = {"train": 25_600, "test": 10_000}
SEEDS = {"train": 2017, "test": 2018}


def compose(digits: ImageData, count: int, seed: int) -> ImageData:
    """``count`` images whose channel c is digit image ``index[:, c]``, drawn uniformly with a seeded RNG."""
    rng = torch.Generator().manual_seed(seed)
    index = torch.randint(len(digits.images), (count, 3), generator=rng)
    images = digits.images[index, 0]  # (count, 3, 28, 28)
    labels = None
    if digits.labels is not None:
        triple = digits.labels[index]
        labels = triple[:, 0] * 100 + triple[:, 1] * 10 + triple[:, 2]
    return ImageData(images.contiguous(), labels, f"stacked from {digits.source} (seed {seed})")


def load_stacked_mnist(argument: str | None, root: Path, split: str) -> ImageData:
    return compose(load_mnist(None, root, split), SIZES[split], SEEDS[split])
