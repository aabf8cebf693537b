"""The "inception" extractor's clean-fid protocol (plugins/features/inception.py) checked against PIL
itself: quantise to uint8 as a saved PNG, resize each channel with PIL's bicubic filter in float
mode to 299x299, clip to [0, 255]. The legacy bilinear resize ("inception-bilinear") is far off."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from ganzoo.core.data import default_root, load_data, to_unit
from ganzoo.plugins.features import inception
from ganzoo.runs.images import grid

# Largest |ours - PIL| seen, in pixel values 0..255 (float32, CPU): 0.0005 on MNIST digits, 0.0005,
# 0.0009 and 0.0018 on random RGB noise at 32, 64 and 128 px (noise is the worst case).
TOLERANCE = 0.003
# The legacy bilinear resize is 40 to 50 pixel values off PIL on the same images.
BILINEAR_AT_LEAST = 20.0


def pil_clean_resize(images: np.ndarray) -> np.ndarray:
    """clean-fid's resize (cleanfid/resize.py, make_resizer("PIL", False, "bicubic", (299, 299)))
    of uint8 images (B, C, H, W), channel by channel: float32 (B, C, 299, 299) in [0, 255]."""
    def channel(pixels: np.ndarray) -> np.ndarray:
        image = Image.fromarray(pixels.astype(np.float32), mode="F").resize((299, 299), resample=Image.BICUBIC)
        return np.asarray(image).clip(0, 255)

    return np.stack([[channel(c) for c in image] for image in images])


@pytest.fixture(scope="module")
def digits(host):
    return load_data(host.registry, "mnist", default_root(), "test").images[:6]


def random_rgb(size: int, n: int = 2) -> torch.Tensor:
    return torch.randint(0, 256, (n, 3, size, size), generator=torch.Generator().manual_seed(size), dtype=torch.uint8)


def cases(digits):
    return [("mnist 28px", digits), *((f"rgb {s}px", random_rgb(s)) for s in (32, 64, 128))]


def test_clean_resize_matches_pil_channel_by_channel(digits):
    for name, images in cases(digits):
        ours = inception.clean_resize(to_unit(images)).numpy()
        reference = pil_clean_resize(images.numpy())
        assert ours.shape == reference.shape == (len(images), images.shape[1], 299, 299)
        difference = float(np.abs(ours - reference).max())
        assert difference < TOLERANCE, f"{name}: max |ours - PIL| = {difference}"


def test_the_legacy_bilinear_resize_is_far_from_pil(digits):
    for name, images in cases(digits):
        legacy = inception.bilinear_resize(to_unit(images))[:, : images.shape[1]].add(1).mul(127.5).numpy()
        difference = float(np.abs(legacy - pil_clean_resize(images.numpy())).max())
        assert difference > BILINEAR_AT_LEAST, f"{name}: max |bilinear - PIL| = {difference}"


def test_quantisation_is_that_of_saved_pngs():
    levels = torch.arange(256, dtype=torch.uint8).reshape(1, 1, 16, 16)
    assert torch.equal(inception.quantise(to_unit(levels)), levels.float())  # real images keep their pixels
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, 20, 20, generator=generator) * 2.4 - 1.2  # beyond [-1, 1] too
    x[0, 0, 0, :4] = torch.tensor([0.5, 1.5, 2.5, 3.5]) / 127.5 - 1  # exact halves: the same tie rule
    png = grid([x], columns=1, pad=0)  # (H, W, C) uint8, as ganzoo saves samples
    assert torch.equal(inception.quantise(x)[0].permute(1, 2, 0), png.float())
    # generated images are quantised before resizing: as if saved as PNG and read back
    assert torch.equal(inception.clean_resize(x), inception.clean_resize(to_unit(png.permute(2, 0, 1)[None])))


@pytest.fixture(scope="module")
def extractors():
    import warnings

    path = inception.weights_file()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load's deprecation notice
        return inception.InceptionFeatures(path, "clean"), inception.InceptionFeatures(path, "bilinear")


def test_the_protocol_is_named_and_changes_the_fingerprint(extractors):
    clean, bilinear = extractors
    assert "clean-fid" in clean.protocol and "bilinear" in bilinear.protocol
    assert clean.weights_sha256 == bilinear.weights_sha256
    assert bilinear.fingerprint == bilinear.weights_sha256[:16]  # what every result had before "clean"
    assert clean.fingerprint != bilinear.fingerprint and len(clean.fingerprint) == 16
    with pytest.raises(Exception, match="unknown inception protocol"):
        inception.InceptionFeatures(inception.weights_file(), "nearest")


def test_network_input_is_clean_fids(extractors, digits):
    clean, _ = extractors
    grey = clean.resize(to_unit(digits))
    assert grey.shape == (len(digits), 3, 299, 299)
    assert torch.equal(grey[:, 0], grey[:, 1]) and torch.equal(grey[:, 0], grey[:, 2])
    expected = (torch.from_numpy(pil_clean_resize(digits.numpy())) - 128) / 128  # cleanfid/inception_torchscript.py
    assert float((grey[:, :1] - expected).abs().max()) < TOLERANCE / 128
    white, black = clean.resize(torch.ones(1, 3, 32, 32)), clean.resize(-torch.ones(1, 3, 32, 32))
    assert float(white.min()) == pytest.approx(127 / 128, abs=1e-5) and float(white.max()) <= 127 / 128  # not 1
    assert float(black.min()) == float(black.max()) == -1


def test_evaluations_record_the_protocol_and_cache_under_its_fingerprint(host, tmp_path):
    from ganzoo.evaluation.evaluator import build_evaluator

    evaluator = build_evaluator(host, "mnist", features="inception", n_real=8, cache_dir=tmp_path)
    assert evaluator.protocol["extractor_protocol"] == inception.PROTOCOLS["clean"]
    fingerprint = evaluator.protocol["extractor_fingerprint"]
    assert fingerprint != evaluator.protocol["extractor_weights_sha256"][:16]  # never the bilinear cache
    assert [p.name.startswith(f"features-inception-{fingerprint}-") for p in tmp_path.iterdir()] == [True]
    assert evaluator.real_features.shape == (8, 2048)
