"""The core loop on real MNIST slices: learning signals, exact resume, observers, SNGAN's spectral norm."""

from __future__ import annotations

import math

import pytest
import torch

from ganzoo import hookimpl
from ganzoo.core.config import make_config
from ganzoo.core.errors import DataError, GanzooError
from ganzoo.core.host import load_host
from ganzoo.training.trainer import Trainer


def test_psg_discriminator_learns_and_generators_differ(small_run):
    trainer = small_run("psg", n_gens=2, steps=20, limit_data=640)
    record = trainer.latest
    assert record["chance"] == pytest.approx(1 / 3)
    assert record["d_accuracy"] > 1 / 3 + 0.2  # D beats chance quickly on MNIST
    g1, g2 = trainer.generators
    assert not torch.equal(g1.net[0].weight, g2.net[0].weight)  # initialised from different seeds
    assert record["g_loss"][0] != record["g_loss"][1]
    assert record["loss_gap"] == pytest.approx(abs(record["d_loss"] - sum(record["g_loss"]) / 2))
    assert all(math.isfinite(v) for v in record["g_loss"])


@pytest.mark.parametrize("aggregation", ["mean", "independent", "algorithm1"])
@pytest.mark.parametrize("n_gens", [1, 3])
def test_every_aggregation_trains(small_run, aggregation, n_gens):
    trainer = small_run("psg", n_gens=n_gens, aggregation=aggregation, steps=3)
    assert len(trainer.latest["g_loss"]) == n_gens
    assert all(math.isfinite(v) for v in trainer.latest["g_loss"])
    assert trainer.latest["chance"] == pytest.approx(1 / (n_gens + 1))


def test_n_dis_discriminator_steps_per_generator_step(small_run):
    trainer = small_run("sngan", n_dis=3, steps=2)
    d_state = trainer.d_optimizer.state_dict()["state"]
    g_state = trainer.g_optimizers[0].state_dict()["state"]
    assert {v["step"].item() for v in d_state.values()} == {6.0}
    assert {v["step"].item() for v in g_state.values()} == {2.0}


def test_sngan_discriminator_layers_have_spectral_norm_one(small_run):
    trainer = small_run("sngan", steps=15)
    d = trainer.discriminator.eval()
    layers = [m for m in d.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert len(layers) == 3
    for layer in layers:
        assert hasattr(layer, "parametrizations")
        weight = layer.weight.detach().reshape(layer.weight.shape[0], -1)
        sigma = torch.linalg.matrix_norm(weight, ord=2).item()
        assert sigma == pytest.approx(1.0, abs=0.05)  # one power iteration per step lags a little


def test_psg_has_no_spectral_norm_unless_asked(small_run):
    plain = small_run("psg", steps=1)
    assert not any(hasattr(m, "parametrizations") for m in plain.discriminator.modules())
    normed = small_run("psg", steps=1, spectral_norm=True)
    assert any(hasattr(m, "parametrizations") for m in normed.discriminator.modules())


def _state(trainer):
    return {k: v.clone() for k, v in trainer.tensors().items() if not k.startswith("metrics")}


def test_resume_continues_exactly(host, small_run, resume_run, tmp_path):
    straight = small_run("psg", steps=6, out=tmp_path / "straight")
    assert small_run("psg", steps=3, out=tmp_path / "split").step == 3
    resumed = resume_run(tmp_path / "split", steps=6)
    a, b = _state(straight), _state(resumed)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert resumed.latest["d_loss"] == pytest.approx(straight.latest["d_loss"], rel=1e-6)


class Recorder:
    def __init__(self):
        self.calls = []

    @hookimpl
    def ganzoo_on_train_start(self, trainer):
        self.calls.append(("start", trainer.step))

    @hookimpl
    def ganzoo_on_step_end(self, trainer, step):
        self.calls.append(("step", step))

    @hookimpl
    def ganzoo_on_epoch_end(self, trainer, epoch, metrics):
        self.calls.append(("epoch", epoch, metrics["step"]))

    @hookimpl
    def ganzoo_on_checkpoint_saved(self, trainer, path):
        self.calls.append(("checkpoint", path.name))

    @hookimpl
    def ganzoo_on_train_end(self, trainer, metrics):
        self.calls.append(("end", metrics["step"], metrics["partial"]))


def test_observer_hooks_are_called_in_order(tmp_path):
    recorder = Recorder()
    host = load_host(plugins=[recorder])
    config = make_config("sngan", host.registry.get("strategy", "sngan").defaults,
                         {"limit_data": 64, "batch_size": 32, "steps": 3, "device": "cpu", "sample_count": 4})
    (tmp_path / "samples").mkdir()
    Trainer(config, host, tmp_path).run()  # a trainer of one's own trains in a folder one made
    assert recorder.calls == [
        ("start", 0),
        ("step", 1), ("step", 2), ("checkpoint", "checkpoint.safetensors"), ("epoch", 1, 2),
        ("step", 3), ("checkpoint", "checkpoint.safetensors"),
        ("end", 3, True),
    ]


def test_architecture_must_fit_the_data(small_run):
    with pytest.raises(DataError, match="cnn32.*32x32.*28x28"):
        small_run("sngan", arch="cnn32")


def test_cnn32_trains_on_32x32_data(host, tmp_path):
    from tests.test_data import write_idx

    write_idx(tmp_path / "train-images-idx3-ubyte", torch.randint(0, 256, (64, 32, 32), dtype=torch.uint8))
    config = make_config("sngan", host.registry.get("strategy", "sngan").defaults,
                         {"dataset": f"idx:{tmp_path}", "arch": "cnn32", "batch_size": 16, "steps": 2, "device": "cpu", "sample_count": 4})
    run_dir = tmp_path / "run"
    (run_dir / "samples").mkdir(parents=True)
    trainer = Trainer(config, host, run_dir)
    trainer.run()
    assert trainer.image_shape == (1, 32, 32)
    assert math.isfinite(trainer.latest["d_loss"])


class Exploding:
    @hookimpl
    def ganzoo_on_epoch_end(self, trainer, epoch, metrics):
        raise ValueError("disk of the dashboard is full")


def test_an_observer_that_raises_is_named(tmp_path):
    from ganzoo.core.errors import PluginError

    host = load_host(plugins=[Exploding()])
    config = make_config("sngan", host.registry.get("strategy", "sngan").defaults,
                         {"limit_data": 64, "batch_size": 32, "steps": 3, "device": "cpu", "sample_count": 4})
    (tmp_path / "samples").mkdir()
    with pytest.raises(PluginError, match="plugin 'Exploding' raised in ganzoo_on_epoch_end at step 2: ValueError: disk"):
        Trainer(config, host, tmp_path).run()
    assert (tmp_path / "checkpoint.safetensors").exists()  # the epoch's checkpoint came first
    with pytest.raises(GanzooError, match="is not a run folder"):
        Trainer(config, host, tmp_path / "never-made").run()


def test_resume_drops_records_the_checkpoint_never_saw(host, small_run, resume_run, tmp_path):
    import json

    run_dir = tmp_path / "run"
    small_run("sngan", steps=3, limit_data=64, out=run_dir)  # 2 steps an epoch: records at 2 and 3
    metrics = run_dir / "metrics.jsonl"
    lines = metrics.read_text().splitlines()
    # a crash after appending a record but before its checkpoint, then a torn line
    metrics.write_text("\n".join(lines + [lines[-1].replace('"step": 3', '"step": 4'), '{"epoch": 3, "st']) + "\n")
    resume_run(run_dir, steps=6)
    records = [json.loads(line) for line in metrics.read_text().splitlines()]
    # the planted step-4 record (partial) is gone; the real one (a full epoch 2) took its place
    assert [(r["step"], r["partial"]) for r in records] == [(2, False), (3, True), (4, False), (6, False)]
