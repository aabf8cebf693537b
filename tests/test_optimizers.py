"""Optimizers (--optimizer, --optimizer-d, --momentum, --weight-decay) and learning-rate schedules
(--lr-schedule): what each builds, what a checkpoint holds of each, exact resumes, and refusals."""

from __future__ import annotations

import json
import math

import pytest
import torch

from ganzoo import hookimpl
from ganzoo.core.errors import GanzooError
from ganzoo.runs.checkpoint import read_checkpoint
from ganzoo.testing import registered, smoke_resume, smoke_train
from ganzoo.training.optimizers import OptimizerSettings, lr_factor, make_optimizer, parameter_state
from tests.helpers import TINY, invoke


@pytest.mark.parametrize("kind, momentum", [("adam", 0.0), ("adamw", 0.0), ("rmsprop", 0.0), ("rmsprop", 0.9), ("sgd", 0.0),
                                            ("sgd", 0.9)])
def test_the_checkpoint_layout_of_each_optimizer_is_what_torch_keeps(kind, momentum):
    """parameter_state (what a resume checks a checkpoint against) is exactly the state torch keeps after a step."""
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 1))
    optimizer = make_optimizer(list(model.parameters()), OptimizerSettings(kind, 1e-3, (0.5, 0.99), momentum, 0.01))
    model(torch.randn(5, 3)).sum().backward()
    optimizer.step()
    kept = {f"optimizer.d.{index}.{name}": (tuple(value.shape), value.dtype)
            for index, state in optimizer.state_dict()["state"].items() for name, value in state.items()}
    declared = {name: spec for group in parameter_state(optimizer, "optimizer.d") for name, spec in group.items()}
    assert kept == declared


def test_the_settings_reach_torch(tiny_host, tmp_path):
    result = invoke(tiny_host, "train", "sngan", *TINY, "--optimizer", "sgd", "--optimizer-d", "rmsprop", "--momentum", "0.5",
                    "--weight-decay", "0.01", "--lr", "0.01", "--lr-d", "0.003", "--steps", "1", "--out", str(tmp_path / "run"), "--json")
    assert result.exit_code == 0, result.output
    groups = read_checkpoint(tmp_path / "run")[1]["optimizer_groups"]
    g, d = groups["generator.0"][0], groups["discriminator"][0]
    assert (g["lr"], g["momentum"], g["weight_decay"], "nesterov" in g) == (0.01, 0.5, 0.01, True)  # torch's SGD
    assert (d["lr"], d["momentum"], d["weight_decay"], d["alpha"]) == (0.003, 0.5, 0.01, 0.99)  # torch's RMSprop


def test_lr_factors():
    assert [lr_factor("constant", s, 4) for s in range(4)] == [1.0] * 4
    assert [lr_factor("linear", s, 4) for s in range(5)] == [1.0, 0.75, 0.5, 0.25, 0.0]
    assert [round(lr_factor("cosine", s, 4), 6) for s in (0, 2, 4)] == [1.0, 0.5, 0.0]
    assert lr_factor("cosine", 1, 4) == pytest.approx((1 + math.cos(math.pi / 4)) / 2)


class LearningRates:
    """Records the learning rate each step ran with (read at the start of the next step's hook)."""

    def __init__(self):
        self.seen = []

    def ganzoo_on_step_end(self, trainer, step):
        self.seen.append((step, trainer.state.g_optimizers[0].param_groups[0]["lr"], trainer.d_optimizer.param_groups[0]["lr"]))


def test_a_linear_schedule_decays_every_optimizer_and_a_resume_keeps_its_end(tiny_host, tmp_path):
    rates = LearningRates()

    class Watch:
        @hookimpl
        def ganzoo_run_observers(self, trainer):
            return rates

    with registered(Watch(), tiny_host) as host:
        smoke_train("psg", host=host, steps=4, lr=0.01, lr_d=0.02, lr_schedule="linear", optimizer="rmsprop", run_dir=tmp_path / "straight")
    assert rates.seen == [(1, 0.01, 0.02), (2, 0.0075, 0.015), (3, 0.005, 0.01), (4, 0.0025, 0.005)]  # step s used lr x (1 - s/4)

    smoke_train("psg", host=tiny_host, steps=2, lr=0.01, lr_d=0.02, lr_schedule="linear", optimizer="rmsprop", run_dir=tmp_path / "split")
    with pytest.raises(GanzooError, match="decays to 0 at step 2"):  # the schedule's end is the first run's
        smoke_resume(tmp_path / "split", host=tiny_host, steps=4)
    assert read_checkpoint(tmp_path / "split")[1]["lr_schedule_steps"] == 2  # where the decay ends, kept with the run


class StopAt:
    """Asks the run to stop after a step, as SIGTERM does."""

    def __init__(self, step: int):
        self.step = step

    @hookimpl
    def ganzoo_on_step_end(self, trainer, step):
        if step == self.step:
            trainer.stop_signal = 15


@pytest.mark.parametrize("args", [["psg", "--n-gens", "2", "--optimizer", "rmsprop", "--lr-schedule", "linear"],
                                  ["sngan", "--optimizer", "adamw", "--weight-decay", "0.01", "--lr-schedule", "cosine"],
                                  ["dcgan", "--optimizer", "sgd", "--momentum", "0.9", "--lr", "0.01"]])
def test_each_optimizer_and_schedule_trains_resumes_bit_exactly_and_samples(tiny_host, tmp_path, args):
    straight, split = tmp_path / "straight", tmp_path / "split"
    common = [*TINY, "--epochs", "1"]  # the tiny data's epoch: 8 steps; the schedule decays over them
    done = invoke(tiny_host, "train", *args, *common, "--out", str(straight), "--json")
    assert done.exit_code == 0, done.output
    with registered(StopAt(3), tiny_host) as host:  # as a preempted job: a signal, a checkpoint at step 3, stop
        assert invoke(host, "train", *args, *common, "--out", str(split), "--quiet").exit_code == 128 + 15
    resumed = invoke(tiny_host, "train", args[0], "--resume", str(split), "--epochs", "1", "--json")
    assert resumed.exit_code == 0, resumed.output
    assert json.loads(resumed.stdout)["step"] == json.loads(done.stdout)["step"] == 8
    a, b = read_checkpoint(straight)[0], read_checkpoint(split)[0]
    assert a.keys() == b.keys() and [k for k in a if not torch.equal(a[k], b[k])] == []
    assert invoke(tiny_host, "sample", str(split), "--n", "4", "--out", str(tmp_path / "s.png")).exit_code == 0
    assert (tmp_path / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_refusals_are_one_line_before_anything_is_written(tiny_host, tmp_path):
    cases = [
        (["train", "sngan", "--lr-schedule", "linear", "--minutes", "1"], "--lr-schedule linear decays over the run's steps; give --steps or --epochs"),
        (["train", "sngan", "--optimizer", "lbfgs"], "'lbfgs' is not one of"),
        (["train", "sngan", "--momentum", "1.5"], "momentum must be in [0, 1), got 1.5"),
        (["train", "sngan", "--weight-decay", "-1"], "weight-decay must be in [0, 1], got -1.0"),
    ]
    for args, message in cases:
        out = tmp_path / "never"
        result = invoke(tiny_host, *args, *TINY, "--out", str(out))
        assert result.exit_code == 2 and message in result.stderr, (args, result.stderr)
        assert not out.exists()
    run = tmp_path / "run"
    assert invoke(tiny_host, "train", "sngan", *TINY, "--steps", "1", "--out", str(run), "--quiet").exit_code == 0
    changed = invoke(tiny_host, "train", "sngan", "--resume", str(run), "--steps", "2", "--optimizer", "sgd")
    assert changed.exit_code == 2 and "cannot change --optimizer when resuming" in changed.stderr
