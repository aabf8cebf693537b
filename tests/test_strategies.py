"""The strategy plugins: their losses on hand-made D outputs, their D contracts, and, for every
registered strategy (a new plugin's too), train -> checkpoint -> sample -> exact resume through the CLI."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from ganzoo.core.config import make_config
from ganzoo.plugins.binary.pac_policy import PacPolicy, pack
from ganzoo.plugins.gman.aggregation import Gman
from ganzoo.plugins.madgan.policy import madgan_losses
from ganzoo.plugins.mgan.policy import mgan_losses
from ganzoo.plugins.psg.tuple_policy import tuple_losses
from ganzoo.runs.checkpoint import read_checkpoint
from ganzoo.testing import make_host
from ganzoo.training.trainer import Trainer
from tests.helpers import TINY, invoke

# -- every registered strategy ------------------------------------------------------------------


def _strategies() -> list[str]:
    return make_host().registry.names("strategy")


@pytest.mark.parametrize("strategy", _strategies())
def test_every_strategy_trains_checkpoints_samples_and_resumes_exactly(tiny_host, tmp_path, strategy):
    straight, split = tmp_path / "straight", tmp_path / "split"
    done = invoke(tiny_host, "train", strategy, *TINY, "--steps", "3", "--out", str(straight), "--json")
    assert done.exit_code == 0, done.output
    record = json.loads(done.stdout)
    assert record["step"] == 3 and all(math.isfinite(v) for v in [record["d_loss"], *record["g_loss"]])
    assert 0 <= record["d_accuracy"] <= 1 and 0 < record["chance"] < 1

    assert invoke(tiny_host, "train", strategy, *TINY, "--steps", "2", "--out", str(split), "--quiet").exit_code == 0
    resumed = invoke(tiny_host, "train", strategy, "--resume", str(split), "--steps", "3", "--json")
    assert resumed.exit_code == 0, resumed.output
    a, b = read_checkpoint(straight)[0], read_checkpoint(split)[0]
    assert a.keys() == b.keys()
    assert [k for k in a if not torch.equal(a[k], b[k])] == []  # bit-identical after the resume

    n_gens = len(record["g_loss"])
    out = tmp_path / "sample.png"
    sampled = invoke(tiny_host, "sample", str(split), "--n", "4", "--out", str(out))
    assert sampled.exit_code == 0, sampled.output
    with Image.open(out) as image:
        if make_host().registry.get("strategy", strategy).defaults.get("conditional"):  # acgan: a row of 4 per class (tiny has 4)
            assert image.size == (122, n_gens * 122 + (n_gens - 1) * 6)
        else:
            assert image.size == (242, n_gens * 32 + (n_gens - 1) * 6)  # one row of 4 per generator


# -- MAD-GAN ------------------------------------------------------------------------------------


def test_madgan_losses_match_hand_computation():
    # N = 2, B = 1: rows are the real image, G_1's and G_2's; columns the classes real, G_1, G_2
    logits = torch.tensor([[[2.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]], [[1.0, 0.0, 3.0]]], dtype=torch.float64)
    out = madgan_losses(logits)
    p = logits.softmax(-1)[:, 0]  # (3, 3)
    expected_d = -(math.log(p[0, 0]) + math.log(p[1, 1]) + math.log(p[2, 2])) / 3
    assert out.d_losses.item() == pytest.approx(expected_d)
    assert out.g_losses[:, 0].tolist() == pytest.approx([-math.log(p[1, 0]), -math.log(p[2, 0])])
    assert out.correct.item() == 1.0 and out.chance == pytest.approx(1 / 3)
    assert out.picks.item() == 0  # the real image has the highest "real" probability
    fooled = madgan_losses(torch.tensor([[[0.0, 2.0, 0.0]], [[0.0, 1.0, 0.0]], [[3.0, 0.0, 0.0]]]))
    assert fooled.correct.item() == pytest.approx(1 / 3) and fooled.picks.item() == 2


def test_madgan_discriminator_has_n_plus_one_outputs_and_learns(tiny_host):
    config = make_config("madgan", tiny_host.registry.get("strategy", "madgan").defaults,
                         {"dataset": "tiny", "batch_size": 16, "device": "cpu", "n_gens": 2})
    trainer = Trainer(config, tiny_host, "never-written")
    assert trainer.discriminator(torch.zeros(5, 1, 28, 28)).shape == (5, 3)
    for _ in range(10):
        trainer.train_step()
    with torch.no_grad():
        out = trainer.policy(trainer.discriminator, trainer.batches.batch(50), trainer._fakes(16), "generator")
    assert out.chance == pytest.approx(1 / 3)
    # ln 3 is the loss of D's untrained, nearly uniform softmax (measured: 1.09 at step 1, 0.87 at step 10)
    assert out.d_losses.mean().item() < math.log(3) - 0.15


# -- MGAN ---------------------------------------------------------------------------------------


def test_mgan_losses_match_hand_computation():
    # N = 2, B = 1: column 0 the binary head, columns 1-2 the classifier
    logits = torch.tensor([[[1.5, 0.0, 0.0]], [[-1.0, 2.0, 0.0]], [[0.5, 1.0, 1.0]]], dtype=torch.float64)
    out = mgan_losses(logits, beta=0.5)
    sp = lambda x: math.log1p(math.exp(x))
    ce1 = -math.log(math.exp(2) / (math.exp(2) + 1))  # C says G_1 for G_1's image
    ce2 = -math.log(0.5)  # C undecided on G_2's image
    assert out.d_losses.item() == pytest.approx(sp(-1.5) + (sp(-1.0) + sp(0.5)) / 2 + (ce1 + ce2) / 2)
    assert out.g_losses[:, 0].tolist() == pytest.approx([sp(1.0) + 0.5 * ce1, sp(-0.5) + 0.5 * ce2])
    assert out.correct.item() == pytest.approx(2 / 3)  # real > 0 yes, G_1 < 0 yes, G_2 < 0 no
    assert out.chance == 0.5
    plain = mgan_losses(logits, beta=0.0)
    torch.testing.assert_close(plain.g_losses, F.softplus(-logits[1:, :, 0]))
    torch.testing.assert_close(plain.d_losses, out.d_losses)  # beta weighs G's loss only


def _mgan_trainer(host, n_gens: int, share: bool):
    config = make_config("mgan", host.registry.get("strategy", "mgan").defaults,
                         {"dataset": "tiny", "batch_size": 16, "device": "cpu", "n_gens": n_gens, "log_every": 10,
                          "options": {"share_layers": share}})
    return Trainer(config, host, "never-written")


def test_mgan_shares_all_but_the_first_layer(tiny_host):
    trainer = _mgan_trainer(tiny_host, 3, share=True)
    g1, g2, g3 = trainer.generators
    assert g1.net[0] is not g2.net[0] and g2.net[0] is not g3.net[0]  # z -> h: each its own
    assert all(g.net[i] is g1.net[i] for g in (g2, g3) for i in (2, 4, 5, 7))  # BN and transposed convs shared
    counts = [sum(p.numel() for group in o.param_groups for p in group["params"]) for o in trainer.g_optimizers]
    assert counts[1] == counts[2] == g1.net[0].weight.numel()  # generators 2 and 3 step their first layer only
    assert trainer.discriminator(torch.zeros(2, 1, 28, 28)).shape == (2, 4)
    trainer.train_step()
    assert torch.equal(g2.net[4].weight, g1.net[4].weight)  # still one tensor after an update


def test_mgan_classifier_learns_to_tell_the_generators_apart(tiny_host):
    trainer = _mgan_trainer(tiny_host, 2, share=False)
    for _ in range(12):
        trainer.train_step()
    with torch.no_grad():
        z = torch.randn(64, trainer.config.z_dim)
        logits = trainer.discriminator(torch.cat([g(z) for g in trainer.generators]))[:, 1:]
    accuracy = (logits.argmax(1) == torch.arange(2).repeat_interleave(64)).float().mean().item()
    assert accuracy > 0.8  # chance 1/2


def test_mgan_options_from_the_command_line_and_a_config_file(tiny_host, tmp_path):
    run_dir = tmp_path / "run"
    result = invoke(tiny_host, "train", "mgan", *TINY, "--n-gens", "2", "--no-share-layers", "--beta", "0.1", "--steps", "1",
                    "--out", str(run_dir), "--json")
    assert result.exit_code == 0, result.output
    tensors, manifest = read_checkpoint(run_dir)
    assert manifest["config"]["options"] == {"mgan_beta": 0.1, "share_layers": False, "ema": 0.0, "ema_warmup": False, "tensorboard": ""}
    assert manifest["discriminator"] == {"packing": 1, "outputs": 3}
    assert not torch.equal(tensors["generator.0.net.4.weight"], tensors["generator.1.net.4.weight"])  # not shared
    config = tmp_path / "mgan.toml"
    config.write_text('[options]\nshare_layers = "yes"\n')
    bad = invoke(tiny_host, "train", "mgan", "--config", str(config))
    assert bad.exit_code == 2 and bad.stderr == "error: --share-layers must be true or false, got 'yes'\n"


# -- GMAN ---------------------------------------------------------------------------------------


def _out(g_losses):
    losses = torch.tensor(g_losses, dtype=torch.float64, requires_grad=True)
    scores = torch.zeros(len(g_losses) + 1, len(g_losses[0]), dtype=torch.float64)
    template = tuple_losses(scores)
    from dataclasses import replace

    return replace(template, g_losses=losses, g_losses_own=losses), losses


def test_gman_is_the_mean_at_zero_and_tends_to_the_max():
    out, _ = _out([[1.0, 3.0], [0.5, 0.5], [4.0, 2.0]])  # V = (2, 0.5, 3)
    assert Gman(0.0)(out).generators.item() == pytest.approx(5.5 / 3)
    assert Gman(1000.0)(out).generators.item() == pytest.approx(3.0)
    w = torch.softmax(torch.tensor([2.0, 0.5, 3.0]), 0)
    assert Gman(1.0)(out).generators.item() == pytest.approx((w * torch.tensor([2.0, 0.5, 3.0])).sum().item())


def test_gman_gradient_weights_each_generator_by_its_softmax_weight():
    out, losses = _out([[1.0, 3.0], [0.5, 0.5]])  # V = (2, 0.5)
    Gman(2.0)(out).generators.backward()
    w = torch.softmax(torch.tensor([4.0, 1.0], dtype=torch.float64), 0)  # softmax(2 * V)
    torch.testing.assert_close(losses.grad, (w / 2).unsqueeze(1).expand(2, 2))  # weights held constant


def test_gman_trains_with_psg_from_the_cli(tiny_host, tmp_path):
    run_dir = tmp_path / "run"
    result = invoke(tiny_host, "train", "psg", *TINY, "--aggregation", "gman", "--gman-lambda", "3", "--steps", "2",
                    "--out", str(run_dir), "--json")
    assert result.exit_code == 0, result.output
    assert read_checkpoint(run_dir)[1]["config"]["options"] == {"gman_lambda": 3.0, "ema": 0.999, "ema_warmup": True, "r1": 30.0,
                                                                 "r2": 30.0, "temperature": 1.0, "tensorboard": ""}
    bad = invoke(tiny_host, "train", "psg", "--aggregation", "gman", "--gman-lambda", "-1")
    assert bad.exit_code == 2 and bad.stderr == "error: --gman-lambda must be a number in [0.0, 1000000.0], got -1.0\n"


# -- PacGAN -------------------------------------------------------------------------------------


def test_packing_stacks_consecutive_images_on_channels():
    images = torch.arange(4 * 1 * 2 * 2, dtype=torch.float32).view(4, 1, 2, 2)
    packed = pack(images, 2)
    assert packed.shape == (2, 2, 2, 2)
    assert torch.equal(packed[1, 0], images[2, 0]) and torch.equal(packed[1, 1], images[3, 0])


def test_pac_policy_scores_packs_and_repeats_them_per_image():
    seen = []

    def discriminator(x):
        seen.append(tuple(x.shape))
        return x.mean((1, 2, 3))

    real, fake = torch.ones(6, 1, 2, 2), -torch.ones(6, 1, 2, 2)
    out = PacPolicy("bce", 3, 6)(discriminator, real, [fake], "discriminator")
    assert seen == [(4, 3, 2, 2)]  # (2 real packs + 2 fake packs) of 3 images each
    assert out.d_losses.shape == (6,) and out.g_losses.shape == (1, 6)
    assert out.d_losses.tolist() == pytest.approx([2 * math.log1p(math.exp(-1))] * 6)
    assert out.correct.tolist() == [1.0] * 6


def test_pacgan_discriminator_sees_m_times_the_channels(tiny_host, tmp_path):
    run_dir = tmp_path / "run"
    result = invoke(tiny_host, "train", "pacgan", "--dataset", "tiny32", "--batch-size", "16", "--device", "cpu",
                    "--pack", "4", "--steps", "2", "--out", str(run_dir), "--json")
    assert result.exit_code == 0, result.output
    tensors, manifest = read_checkpoint(run_dir)
    assert tensors["discriminator.net.0.weight"].shape[1] == 12  # 4 packed RGB images
    assert manifest["discriminator"] == {"packing": 4, "outputs": 1}
    assert manifest["config"]["options"] == {"loss": "bce", "pack": 4, "ema": 0.0, "ema_warmup": False, "tensorboard": ""}
    bad = invoke(tiny_host, "train", "pacgan", *TINY, "--pack", "3", "--out", str(tmp_path / "bad"))
    assert bad.exit_code == 2 and bad.stderr == "error: batch-size 16 is not a multiple of --pack 3\n"
    assert not (tmp_path / "bad").exists()
    zero = invoke(tiny_host, "train", "pacgan", "--pack", "0")
    assert zero.exit_code == 2 and "--pack must be a whole number in [1, 64], got 0" in zero.stderr


# -- DCGAN --------------------------------------------------------------------------------------


def test_dcgan_is_one_generator_bce_without_spectral_norm(tiny_host):
    defaults = tiny_host.registry.get("strategy", "dcgan").defaults
    assert (defaults["n_gens"], defaults["options"]["loss"], defaults["spectral_norm"], defaults["policy"]) == (1, "bce", False, "binary")
    config = make_config("dcgan", defaults, {"dataset": "tiny", "batch_size": 16, "device": "cpu"})
    trainer = Trainer(config, tiny_host, "never-written")
    assert not any(hasattr(m, "parametrizations") for m in trainer.discriminator.modules())
    for _ in range(6):
        trainer.train_step()
    with torch.no_grad():
        real = trainer.batches.batch(0)
        fake = trainer.generators[0](torch.randn(16, config.z_dim))
        gap = (trainer.discriminator(real).mean() - trainer.discriminator(fake).mean()).item()
    assert gap > 0.2  # D already scores real images higher (measured: 0.47 after 6 steps)
