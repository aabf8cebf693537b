"""Tests of the example plugin, written with ganzoo.testing as a plugin author would."""

from __future__ import annotations

import importlib.metadata
import json

import pytest
import torch

from ganzoo.core.tensorfile import read_tensor_file
from ganzoo.testing import invoke, make_host, smoke_resume, smoke_train
from ganzoo_example import least_squares_losses


def test_installed_through_its_entry_point():
    (entry,) = [ep for ep in importlib.metadata.entry_points(group="ganzoo") if ep.name == "lsgan"]
    assert entry.value == "ganzoo_example" and entry.dist.metadata["Name"] == "ganzoo-example"
    host = make_host()
    assert host.registry.entry("strategy", "lsgan").plugin == "lsgan"
    assert host.plugins["lsgan"].distribution == "ganzoo-example"


def test_losses_match_hand_computation():
    scores = torch.tensor([[0.5, 2.0], [0.0, 1.5]])  # real row, one generator
    out = least_squares_losses(scores)
    # tuple 0: 1/2 (0.5 - 1)^2 + 1/2 (0 - 0)^2 = 0.125; tuple 1: 1/2 (2 - 1)^2 + 1/2 (1.5)^2 = 1.625
    assert out.d_losses.tolist() == pytest.approx([0.125, 1.625])
    assert out.g_losses[0].tolist() == pytest.approx([0.5, 0.125])  # 1/2 (s - 1)^2
    assert out.correct.tolist() == [0.5, 0.5]  # tuple 0: real 0.5 is not above 0.5; fake 0 below
    symmetric = least_squares_losses(scores, "symmetric")
    assert symmetric.g_losses[0].tolist() == pytest.approx([0.0, 1.125])  # 1/2 (s - 0)^2


def test_smoke_train_learns_to_tell_real_from_fake():
    metrics = smoke_train("lsgan", steps=16)
    assert metrics["step"] == 16 and metrics["chance"] == 0.5
    assert metrics["d_accuracy"] > 0.8  # the tiny squares are easy to tell from an untrained G
    assert metrics["d_loss"] < 0.25  # below the 0.25 of a D that outputs 0.5 for everything


def test_the_coding_option_is_kept_in_the_run(tmp_path):
    run_dir = tmp_path / "run"
    args = ["train", "lsgan", "--dataset", "tiny", "--batch-size", "16", "--steps", "2", "--device", "cpu",
            "--coding", "symmetric", "--out", str(run_dir), "--json"]
    result = invoke(make_host(), *args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["step"] == 2
    assert 'lsgan_coding = "symmetric"' in (run_dir / "config.toml").read_text()
    bad = invoke(make_host(), "train", "lsgan", "--coding", "squares")
    assert bad.exit_code == 2 and "'squares' is not one of" in bad.output


def test_a_resumed_run_goes_on_exactly(tmp_path):
    host = make_host()
    straight = smoke_train("lsgan", host=host, steps=4, run_dir=tmp_path / "straight")
    smoke_train("lsgan", host=host, steps=2, run_dir=tmp_path / "split")
    resumed = smoke_resume(tmp_path / "split", host=host, steps=4)
    assert (resumed["d_loss"], resumed["g_loss"]) == (straight["d_loss"], straight["g_loss"])  # the same numbers, bit for bit
    a, b = (read_tensor_file(tmp_path / run / "checkpoint.safetensors")[0] for run in ("straight", "split"))
    assert a.keys() == b.keys() and [name for name in a if not torch.equal(a[name], b[name])] == []  # every weight and state
