"""Real batches for training: the whole split as one uint8 tensor (on the device, or memory-mapped),
drawn in a seeded order without a DataLoader, each batch scaled to [-1, 1], with its labels when a
class-conditional run asks for them."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ganzoo.core.data import to_unit
from ganzoo.core.errors import DataError


class Batches:
    """Draws real batches in a seeded random order, epoch by epoch, without a DataLoader.

    The order of epoch e is a permutation seeded by (seed, e), so a run resumed at any
    (epoch, position) draws exactly the batches it would have drawn. Images in memory move to the
    device once; memory-mapped ones (a folder's cache, which may be larger than RAM: ``release``
    given) stay on disk, each batch gathered on the CPU and moved, and the pages read are let go
    every RELEASE_EVERY batches so that the process's memory stays flat.
    """

    RELEASE_EVERY = 64

    def __init__(self, images: torch.Tensor, batch_size: int, seed: int, device: torch.device | str = "cpu",
                 release: Callable[[], None] | None = None, labels: torch.Tensor | None = None):
        if images.shape[0] < batch_size:
            raise DataError(f"the dataset has {images.shape[0]} images, fewer than the batch size {batch_size}")
        self.device = torch.device(device)
        self.release = release
        self.images = images if release is not None else images.to(self.device)
        self.labels = None if labels is None else labels.to(self.device, torch.long)  # (N,), with the images
        self.batch_size = batch_size
        self.seed = seed
        self.per_epoch = images.shape[0] // batch_size
        self._epoch = -1
        self._order = torch.empty(0, dtype=torch.long)

    def batch(self, index: int) -> torch.Tensor:
        """The index-th batch since training began, scaled to [-1, 1] as float32."""
        return self.draw(index)[0]

    def draw(self, index: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The index-th batch since training began (as ``batch``) and its labels (None without labels)."""
        epoch, position = divmod(index, self.per_epoch)
        if epoch != self._epoch:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            order = torch.randperm(self.images.shape[0], generator=generator)
            self._order = order.to(self.images.device)
            self._epoch = epoch
        take = self._order[position * self.batch_size : (position + 1) * self.batch_size]
        labels = None if self.labels is None else self.labels.index_select(0, take.to(self.labels.device))
        if self.release is None:
            return to_unit(self.images.index_select(0, take)), labels
        if index % self.RELEASE_EVERY == 0:
            self.release()
        return to_unit(self.images.index_select(0, take).to(self.device, non_blocking=True)), labels
