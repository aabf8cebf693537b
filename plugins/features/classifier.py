"""A small LeNet-style classifier trained on a dataset's training split by a fixed recipe.

Its penultimate layer gives the features for FID, KID, precision/recall and density/coverage
("Frechet LeNet distance"), and its logits give classes covered, KL and the classifier IS. The
numbers are comparable only between evaluations with the same classifier, so ganzoo ships the
weights for canonical MNIST and Fashion-MNIST (every machine then computes the same FID) and trains
any other dataset's once, caching it under a key made of the recipe and hashes of the images it was
trained and tested on. Every result records the weights' hashes and where they came from.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from ganzoo.core.data import to_unit
from ganzoo.core.digests import data_hash, file_sha256
from ganzoo.core.errors import CheckpointError
from ganzoo.core.parts import ImageData
from ganzoo.core.tensorfile import read_tensor_file, save_tensor_file

RECIPE = "lenet-v1: conv32-conv64-fc128, Adam 1e-3 batch 128, 3 epochs, lr x0.1 for the last, seed 0"
EPOCHS = 3
FEATURES = 128
WEIGHTS_DIR = Path(__file__).parent / "weights"


@dataclass(frozen=True)
class ShippedWeights:
    """A classifier trained once by RECIPE on a canonical dataset, shipped in ``WEIGHTS_DIR``.

    It is used only for data whose training and test splits hash (``data_hash``) to what it was
    trained and tested on, whatever the dataset is called: any other data trains its own.
    """

    dataset: str
    file: str
    sha256: str  # of the file, checked on every load
    train_data: str  # data_hash of the training split
    test_data: str  # data_hash of the test split


# Canonical = the IDX files whose MD5s torchvision lists (and ganzoo checks), decoded.
SHIPPED = (
    ShippedWeights(
        "mnist", "lenet-mnist.safetensors",  # test accuracy 0.9930
        sha256="68868f0501609e47ee4c3f033ee01a47e127a0f225dc1550188c1579d9ff39ca",
        train_data="d18cfd466eb143ac1097fde604dba9eec4116885869d04cc648b510949f9e88c",
        test_data="a0863a96c44e5666edbb30c4071ee79ca0514c621e6349c5967fc78e7305c891",
    ),
    ShippedWeights(
        "fashion-mnist", "lenet-fashion-mnist.safetensors",  # test accuracy 0.9017
        sha256="3a65f5d994903a9f21b718bd2ea47548a71fb7b63091873a78fc64561e14ee6c",
        train_data="1f243a60b4b748a44c48b9a6f6907be2a08bee3e4e226f0e86fbde8e147b745a",
        test_data="9a494dc49efeb996f4076c469b31cd058152067b1594ba6ab85dd739fce3775e",
    ),
)


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


@dataclass(frozen=True)
class Classifier:
    """A loaded classifier and where it came from.

    source: "shipped" (the file inside ganzoo), "trained here" (by the recipe on this machine, now
    or earlier, from the cache) or "retrained here" (rebuilt by the recipe on request).
    sha256: of its safetensors file.
    """

    model: LeNet
    test_accuracy: float
    path: Path
    sha256: str
    source: str


def shipped_for(train_data: str, test_data: str) -> ShippedWeights | None:
    """The shipped weights trained and tested on exactly this data, if any."""
    return next((w for w in SHIPPED if (w.train_data, w.test_data) == (train_data, test_data)), None)


def _read(path: Path, channels: int, size: int, classes: int) -> tuple[LeNet, float]:
    tensors, meta = read_tensor_file(path)
    model = LeNet(channels, size, classes)
    try:
        model.load_state_dict(tensors)
        return model.eval(), float(meta["test_accuracy"])
    except (RuntimeError, KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path} is not a classifier for this data ({exc}); rebuild it with --retrain-classifier") from None


def load_shipped(weights: ShippedWeights, channels: int, size: int, classes: int) -> Classifier:
    """The shipped classifier, after checking its file against the sha256 recorded in ``SHIPPED``."""
    path = WEIGHTS_DIR / weights.file
    if not path.is_file():
        raise CheckpointError(f"{path} is missing from the ganzoo installation; reinstall ganzoo or pass --retrain-classifier")
    actual = file_sha256(path)
    if actual != weights.sha256:
        raise CheckpointError(f"{path} fails its sha256 check (expected {weights.sha256[:16]}..., found {actual[:16]}...); "
                              "reinstall ganzoo or pass --retrain-classifier")
    model, test_accuracy = _read(path, channels, size, classes)
    return Classifier(model, test_accuracy, path, actual, "shipped")


def load_classifier(name: str, train: ImageData, test: ImageData, cache_dir: Path, *, retrain: bool = False,
                    log: Callable[[str], None] = lambda _: None) -> Classifier:
    """The classifier for this data: the shipped one when the data is canonical (unless ``retrain``),
    else the one cached in ``cache_dir``, training it by the recipe and caching it first when needed."""
    _, channels, size, _ = train.images.shape
    classes = int(train.labels.max()) + 1 if train.labels is not None else 0
    train_data, test_data = data_hash(train), data_hash(test)
    shipped = shipped_for(train_data, test_data)
    if shipped is not None and not retrain:
        return load_shipped(shipped, channels, size, classes)
    key = hashlib.sha256(json.dumps([RECIPE, name, train_data, test_data]).encode()).hexdigest()[:16]
    path = Path(cache_dir) / f"classifier-{name}-{key}.safetensors"
    if path.exists() and not retrain:
        model, test_accuracy = _read(path, channels, size, classes)
        return Classifier(model, test_accuracy, path, file_sha256(path), "trained here")
    log(f"training the {name} classifier once (cached in {path})")
    model, test_accuracy = train_classifier(train, test, log)
    meta = {"dataset": name, "recipe": RECIPE, "test_accuracy": test_accuracy, "key": key,
            "train_data_sha256": train_data, "test_data_sha256": test_data}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_tensor_file(path, dict(model.state_dict()), meta)
    return Classifier(model, test_accuracy, path, file_sha256(path), "retrained here" if retrain else "trained here")
