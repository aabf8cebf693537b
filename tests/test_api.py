"""The Python API (ganzoo.api): train, resume, load, sample and evaluate from a notebook or script,
with plain results and one-line GanzooErrors; the same runs the command line makes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganzoo import api
from ganzoo.core.errors import GanzooError
from ganzoo.runs.checkpoint import read_checkpoint
from tests.helpers import invoke

TINY = {"dataset": "tiny", "batch_size": 16, "device": "cpu", "sample_count": 4}


def test_train_reports_progress_and_returns_the_run(tiny_host, tmp_path):
    seen = []
    run = api.train("psg", tmp_path / "run", n_gens=2, steps=10, log_every=4, options={"ema": 0.9}, progress=seen.append,
                    host=tiny_host, **TINY)
    assert (run.path, run.strategy, run.step, run.epoch) == (tmp_path / "run", "psg", 10, 1)  # 8 steps an epoch
    assert run.settings["n_gens"] == 2 and run.settings["options"]["ema"] == 0.9
    assert [r["step"] for r in run.records] == [8, 10] and run.last["step"] == 10
    # every logging point (4 steps), and the end of the epoch (step 8); the run's end inside epoch 2 is in run.records
    assert [(p.step, p.epoch, p.epoch_end) for p in seen] == [(4, 0, False), (8, 0, False), (8, 1, True)]
    assert seen[-1].metrics["step"] == 8 and seen[-1].metrics == run.records[0]
    assert all(p.total_steps == 10 and "d_loss" in p.metrics for p in seen)


def test_resume_continues_exactly_and_refuses_what_would_change_the_training(tiny_host, tmp_path):
    straight = api.train("sngan", tmp_path / "straight", steps=6, host=tiny_host, **TINY)
    api.train("sngan", tmp_path / "split", steps=3, host=tiny_host, **TINY)
    resumed = api.resume(tmp_path / "split", steps=6, host=tiny_host)
    assert resumed.step == straight.step == 6
    a, b = read_checkpoint(straight.path)[0], read_checkpoint(resumed.path)[0]
    assert [k for k in a if not torch.equal(a[k], b[k])] == []
    with pytest.raises(GanzooError, match="cannot change --lr when resuming"):
        api.resume(tmp_path / "split", steps=8, lr=1.0, host=tiny_host)


def test_sample_gives_the_images_ganzoo_sample_writes(tiny_host, tmp_path):
    run = api.train("psg", tmp_path / "run", n_gens=2, steps=2, host=tiny_host, **TINY)
    images = api.sample(run.path, n=5, seed=3, host=tiny_host)
    assert images.shape == (2, 5, 28, 28, 1) and images.dtype == np.uint8
    assert api.sample(run.path, n=5, seed=3, generator=2, host=tiny_host).shape == (1, 5, 28, 28, 1)
    assert invoke(tiny_host, "sample", str(run.path), "--n", "5", "--seed", "3", "--format", "npz",
                  "--out", str(tmp_path / "s.npz")).exit_code == 0
    with np.load(tmp_path / "s.npz") as saved:
        assert np.array_equal(saved["images"], images.reshape(10, 28, 28, 1))


def test_evaluate_scores_the_run_and_saves_it_when_asked(tiny_host, tmp_path):
    run = api.train("dcgan", tmp_path / "run", steps=2, host=tiny_host, **TINY)
    scores = api.evaluate(run.path, n=64, save=False, host=tiny_host)
    assert scores["fid"] > 0 and scores["protocol"]["n_fake"] == 64 and scores["protocol"]["step"] == 2
    assert not (run.path / "eval-lenet.json").exists()
    api.evaluate(run.path, n=64, host=tiny_host)
    assert (run.path / "eval-lenet.json").exists()


def test_bad_input_is_a_one_line_ganzoo_error(tiny_host, tmp_path):
    run = api.train("psg", tmp_path / "run", n_gens=2, steps=1, host=tiny_host, **TINY)
    cases = [
        (lambda: api.train("psg", tmp_path / "a", n_gens=0, host=tiny_host, **TINY), "n-gens must be at least 1, got 0"),
        (lambda: api.train("psgg", tmp_path / "b", host=tiny_host), "unknown strategy 'psgg'; did you mean 'psg'"),
        (lambda: api.train("psg", tmp_path / "c", nonsense=1, host=tiny_host), "unknown setting 'nonsense'"),
        (lambda: api.train("sngan", tmp_path / "d", options={"pack": 2}, host=tiny_host, **TINY), "--pack belongs to input policy pac"),
        (lambda: api.load_run(tmp_path), "holds no run"),
        (lambda: api.sample(tmp_path / "nothing", host=tiny_host), "checkpoint not found: .*nothing"),
        (lambda: api.sample(run.path, generator=0, host=tiny_host), "--generator 0: this run has 2 generators, numbered from 1"),
        (lambda: api.sample(run.path, n=0, host=tiny_host), "n must be between 1 and 1000000, got 0"),
    ]
    for call, message in cases:
        with pytest.raises(GanzooError, match=message) as caught:
            call()
        assert "\n" not in str(caught.value)
    assert not any((tmp_path / name).exists() for name in "abcd")  # nothing written for a refused run


def test_sample_refuses_what_memory_cannot_hold_before_drawing(tiny_host, tmp_path, monkeypatch):
    from ganzoo.core import safe_read

    run = api.train("dcgan", tmp_path / "run", steps=1, host=tiny_host, **TINY)
    assert api.sample(run.path, n=4, host=tiny_host).shape == (1, 4, 28, 28, 1)
    monkeypatch.setattr(safe_read, "available_memory", lambda: 50 << 20)  # enough for the checkpoint (3 MB)
    with pytest.raises(GanzooError, match=r"drawing 100000 samples per generator needs about 0.2 GB of memory, but only 52.4 MB is available; lower n"):
        api.sample(run.path, n=100_000, host=tiny_host)  # 100,000 images of 28x28, twice
