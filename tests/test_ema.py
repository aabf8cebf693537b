"""The ema plugin (--ema DECAY): the average itself, its place in the checkpoint, exact resume, and sampling."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from ganzoo import hookimpl
from ganzoo.runs.checkpoint import read_checkpoint
from ganzoo.testing import registered, smoke_train
from tests.helpers import TINY, invoke


class Follow:
    """Keeps its own average of the first generator's weights, the plain way (in float64, with
    ``decay_at(step)``), to compare with the plugin's."""

    def __init__(self, decay_at):
        self.decay_at = decay_at
        self.reference: dict[str, torch.Tensor] = {}
        self.plugin: dict[str, torch.Tensor] = {}

    @hookimpl
    def ganzoo_on_train_start(self, trainer):
        self.reference.update({k: v.detach().clone().double() for k, v in trainer.generators[0].state_dict().items()})

    @hookimpl
    def ganzoo_on_step_end(self, trainer, step):
        decay = self.decay_at(step)
        for key, value in trainer.generators[0].state_dict().items():
            if value.is_floating_point():
                self.reference[key] = decay * self.reference[key] + (1 - decay) * value.double()
        (averages,) = trainer.observers("ema")  # this run's own (ganzoo_run_observers)
        self.plugin.update(averages.tables[0])


def test_the_average_follows_the_weights_step_by_step(tiny_host):
    follow = Follow(lambda step: 0.9)
    with registered(follow, tiny_host) as host:
        smoke_train("dcgan", host=host, steps=5, options={"ema": 0.9})
    weight = "net.0.weight"
    torch.testing.assert_close(follow.plugin[weight].double(), follow.reference[weight], rtol=1e-5, atol=1e-7)
    running = "net.2.running_mean"  # batch-norm statistics are averaged too
    torch.testing.assert_close(follow.plugin[running].double(), follow.reference[running], rtol=1e-5, atol=1e-7)
    assert follow.plugin["net.2.num_batches_tracked"].item() == 5  # counters are copied


def test_the_warm_up_lets_early_weights_fade_fast(tiny_host):
    """--ema-warmup: decay min(d, (1 + t) / (10 + t)) at step t, so step 1 keeps only 2/11 of the start."""
    follow = Follow(lambda step: min(0.999, (1 + step) / (10 + step)))
    with registered(follow, tiny_host) as host:
        smoke_train("dcgan", host=host, steps=4, options={"ema": 0.999, "ema_warmup": True})
    torch.testing.assert_close(follow.plugin["net.0.weight"].double(), follow.reference["net.0.weight"], rtol=1e-5, atol=1e-7)


def test_checkpoint_resume_and_sampling_use_the_average(tiny_host, tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert invoke(tiny_host, "train", "psg", *TINY, "--ema", "0.99", "--steps", "4", "--out", str(straight), "--quiet").exit_code == 0
    assert invoke(tiny_host, "train", "psg", *TINY, "--ema", "0.99", "--steps", "2", "--out", str(split), "--quiet").exit_code == 0
    resumed = invoke(tiny_host, "train", "psg", "--resume", str(split), "--steps", "4", "--quiet")
    assert resumed.exit_code == 0, resumed.output
    a, manifest = read_checkpoint(straight)
    b, _ = read_checkpoint(split)
    # --ema replaces psg's 0.999; its warm-up stays
    assert manifest["config"]["options"] == {"ema": 0.99, "ema_warmup": True, "r1": 30.0, "r2": 30.0, "temperature": 1.0, "tensorboard": ""}
    ema_keys = sorted(k for k in a if k.startswith("ema."))
    assert "ema.generator.1.net.0.weight" in ema_keys and len(ema_keys) == len([k for k in a if k.startswith("generator.")])
    assert all(torch.equal(a[k], b[k]) for k in a)  # averages included: the resume is exact
    assert not torch.equal(a["ema.generator.0.net.0.weight"], a["generator.0.net.0.weight"])

    def pixels(*flags):
        out = tmp_path / f"s{len(flags)}.png"
        result = invoke(tiny_host, "sample", str(straight), "--n", "4", "--out", str(out), *flags)
        assert result.exit_code == 0, result.output
        with Image.open(out) as image:
            return result.stdout, np.asarray(image)

    default_text, default = pixels()
    raw_text, raw = pixels("--weights", "raw")
    named_text, named = pixels("--weights", "ema", "--seed", "0")
    assert "(ema weights)" in default_text and "(raw weights)" in raw_text and "(ema weights)" in named_text
    assert np.array_equal(default, named) and not np.array_equal(default, raw)
    missing = invoke(tiny_host, "sample", str(straight), "--weights", "swa")
    assert missing.exit_code == 2 and missing.stderr == "error: this checkpoint has no 'swa' generator weights (it has: raw, ema)\n"


def test_ema_is_off_by_default_and_fixed_once_a_run_started(tiny_host, tmp_path):
    run_dir = tmp_path / "run"
    assert invoke(tiny_host, "train", "dcgan", *TINY, "--steps", "1", "--out", str(run_dir), "--quiet").exit_code == 0
    assert not [k for k in read_checkpoint(run_dir)[0] if k.startswith("ema.")]
    assert "(raw weights)" in invoke(tiny_host, "sample", str(run_dir), "--out", str(tmp_path / "s.png")).stdout
    changed = invoke(tiny_host, "train", "dcgan", "--resume", str(run_dir), "--steps", "2", "--ema", "0.9")
    assert changed.exit_code == 2 and "cannot change --ema when resuming" in changed.stderr
    for bad in ("1", "-0.1", "1.5", "nan"):
        result = invoke(tiny_host, "train", "dcgan", "--ema", bad)
        assert result.exit_code == 2 and "--ema must be a number in [0.0, 1.0)" in result.stderr, bad
    off = tmp_path / "off"  # 0 is off: how a strategy whose defaults average is trained without
    assert invoke(tiny_host, "train", "dcgan", *TINY, "--ema", "0", "--steps", "1", "--out", str(off), "--quiet").exit_code == 0
    assert not [k for k in read_checkpoint(off)[0] if k.startswith("ema.")]


def test_a_submodule_named_generator_is_not_a_weight_set():
    """Only prefixes in front of the trainer's own names are extra sets (ema.generator.0...)."""
    import torch

    from ganzoo.runs.sampling import choose_weights, weight_sets

    plain = {"generator.0.generator.0.weight": torch.zeros(1), "discriminator.generator.0.bias": torch.zeros(1),
             "optimizer.generator.0.x": torch.zeros(1)}
    assert weight_sets(plain) == [] and choose_weights(plain, "auto") == "raw"
    with_ema = {**plain, "ema.generator.0.generator.0.weight": torch.zeros(1)}
    assert weight_sets(with_ema) == ["ema"] and choose_weights(with_ema, "auto") == "ema"
