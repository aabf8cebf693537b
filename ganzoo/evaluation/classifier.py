"""A small LeNet-style classifier trained on a dataset's training split, cached as safetensors.

Its penultimate layer gives the features for FID, KID, precision/recall and density/coverage
("Frechet LeNet distance"), and its logits give classes covered, KL and the classifier IS. The
numbers are comparable only between runs evaluated with the same classifier, so the cache file is
keyed by the recipe and by hashes of the images it was trained and tested on, and every result
records the weights' own hash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn

from ganzoo.training.checkpoint import read_checkpoint, save_checkpoint
from ganzoo.core.errors import CheckpointError
from ganzoo.training.images import to_unit
from ganzoo.core.parts import ImageData

RECIPE = "lenet-v1: conv32-conv64-fc128, Adam 1e-3 batch 128, 3 epochs, lr x0.1 for the last, seed 0"
EPOCHS = 3
FEATURES = 128


class LeNet(nn.Module):
    """conv(5x5, 32) - pool - conv(5x5, 64) - pool - fc 128 - fc classes, for any square size.

    Input: (B, C, H, W) in [-1, 1]. ``features`` is the 128-d penultimate layer (after ReLU).
    """

    def __init__(self, channels: int, size: int, classes: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(),
        )
        side = (size // 2 - 4) // 2
        self.fc = nn.Sequential(nn.Linear(64 * side * side, FEATURES), nn.ReLU())
        self.head = nn.Linear(FEATURES, classes)

    def features(self, x: Tensor) -> Tensor:
        return self.fc(self.body(x))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


def data_hash(data: ImageData) -> str:
    digest = hashlib.sha256()
    digest.update(data.images.contiguous().numpy().tobytes())
    if data.labels is not None:
        digest.update(data.labels.contiguous().numpy().tobytes())
    return digest.hexdigest()


def cache_key(name: str, train: ImageData, test: ImageData) -> str:
    text = json.dumps([RECIPE, name, data_hash(train), data_hash(test)])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def weights_hash(model: nn.Module) -> str:
    digest = hashlib.sha256()
    for key, tensor in sorted(model.state_dict().items()):
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


@torch.no_grad()
def accuracy(model: LeNet, data: ImageData, batch: int = 1000) -> float:
    model.eval()
    right = 0
    for start in range(0, len(data.images), batch):
        x = to_unit(data.images[start:start + batch])
        right += int((model(x).argmax(1) == data.labels[start:start + batch]).sum())
    return right / len(data.images)


def train_classifier(train: ImageData, test: ImageData, log: Callable[[str], None] = lambda _: None) -> tuple[LeNet, float]:
    """Train on ``train`` with the fixed recipe; return the model and its accuracy on ``test``."""
    if train.labels is None or test.labels is None:
        raise ValueError("a classifier needs labelled data")
    torch.manual_seed(0)
    _, channels, size, _ = train.images.shape
    classes = int(train.labels.max()) + 1
    model = LeNet(channels, size, classes)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    rng = torch.Generator().manual_seed(0)
    n, batch = len(train.images), 128
    for epoch in range(EPOCHS):
        if epoch == EPOCHS - 1:
            for group in optimizer.param_groups:
                group["lr"] = 1e-4
        model.train()
        order = torch.randperm(n, generator=rng)
        for start in range(0, n, batch):
            index = order[start:start + batch]
            loss = nn.functional.cross_entropy(model(to_unit(train.images[index])), train.labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        log(f"classifier epoch {epoch + 1}/{EPOCHS}: test accuracy {accuracy(model, test):.4f}")
    model.eval()
    return model, accuracy(model, test)


def cached_classifier(name: str, train: ImageData, test: ImageData, cache_dir: Path, *, retrain: bool = False,
                      log: Callable[[str], None] = lambda _: None) -> tuple[LeNet, float, Path]:
    """The classifier for this data from ``cache_dir``, training and saving it first when needed.

    Returns the model (eval mode), its test accuracy and the cache file.
    """
    key = cache_key(name, train, test)
    path = Path(cache_dir) / f"classifier-{name}-{key}.safetensors"
    _, channels, size, _ = train.images.shape
    classes = int(train.labels.max()) + 1 if train.labels is not None else 0
    if path.exists() and not retrain:
        tensors, meta = read_checkpoint(path)
        model = LeNet(channels, size, classes)
        try:
            model.load_state_dict(tensors)
            return model.eval(), float(meta["test_accuracy"]), path
        except (RuntimeError, KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{path} is not a classifier for this data ({exc}); rebuild it with --retrain-classifier") from None
    log(f"training the {name} classifier once (cached in {path})")
    model, test_accuracy = train_classifier(train, test, log)
    meta = {"dataset": name, "recipe": RECIPE, "test_accuracy": test_accuracy, "key": key}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(path, dict(model.state_dict()), meta)
    return model, test_accuracy, path
