"""The "lenet" extractor: a classifier trained on the dataset itself by a fixed recipe, shipped for
canonical MNIST and Fashion-MNIST, trained once and cached for other data (see classifier.py)."""

from __future__ import annotations

from torch import Tensor, nn

from ganzoo.core.parts import ExtractorRequest
from ganzoo.plugins.features.classifier import FEATURES, Classifier, load_classifier, weights_hash


class ClassifierFeatures(nn.Module):
    """Features and logits of a trained LeNet; with ``label_channels`` every channel of the input is
    a separate image for the classifier (Stacked MNIST), and the features are concatenated."""

    def __init__(self, loaded: Classifier, label_channels: int) -> None:
        super().__init__()
        self.classifier = loaded.model.eval()
        self.test_accuracy = loaded.test_accuracy
        self.label_channels = label_channels > 1
        self.num_features = FEATURES * label_channels
        self.fingerprint = weights_hash(loaded.model)
        self.weights_source = loaded.source
        self.weights_sha256 = loaded.sha256

    def _split(self, x: Tensor) -> Tensor:
        return x.reshape(-1, 1, *x.shape[2:]) if self.label_channels else x

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier.features(self._split(x)).reshape(len(x), -1)

    def logits(self, x: Tensor) -> Tensor:
        out = self.classifier(self._split(x))
        return out.reshape(len(x), -1, out.shape[1]) if self.label_channels else out


def load_lenet(request: ExtractorRequest) -> nn.Module:
    spec = request.stacked_from or request.dataset
    train, test = request.load_split(spec, "train"), request.load_split(spec, "test")
    if train.labels is None or test.labels is None:
        from ganzoo.core.errors import DataError

        raise DataError(f"the lenet extractor trains a classifier, and dataset {spec!r} has no labels; use --features inception")
    name = spec.partition(":")[0]
    loaded = load_classifier(name, train, test, request.cache_dir, retrain=request.retrain, log=request.log)
    per_channel = request.channels if request.stacked_from else 1
    return ClassifierFeatures(loaded, per_channel).to(request.device)
