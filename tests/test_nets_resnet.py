"""The SNGAN ResNets (resnet32/48/64/128) and dcgan64: shapes, widths, the vmapped bank, bf16, and a
few real training steps."""

from __future__ import annotations

import copy
from itertools import pairwise

import pytest
import torch
from torch import nn

from ganzoo.core.compose import new_config
from ganzoo.evaluation.in_training import training_evaluator
from ganzoo.testing import TINY32, make_host, smoke_train
from ganzoo.training.generator_bank import GeneratorBank
from ganzoo.training.session import Session

CPU = torch.device("cpu")
Z = 128  # the SNGAN paper's z size, so that the counts below compare with Mimicry's networks


# Parameter counts at z_dim 128 and 3 channels, from the published layouts (weights + biases,
# batch norm's scale and shift; no biases before batch norm in dcgan64).
#   GBlock(i, o), all upsample so all have the 1x1 shortcut: BN 2i + conv 9io+o + BN 2o + conv 9oo+o + 1x1 io+o.
#   DBlock(i, o) (hidden width i): conv 9ii+i + conv 9io+o, + 1x1 io+o when it downsamples or i != o.
#   Optimized block(C, o): conv 9Co+o + conv 9oo+o + 1x1 Co+o.
#   G: linear 128*b*b*w+b*b*w, the blocks, BN 2w, conv3x3 to 3: 27w+3. D: the blocks, linear w+1.
def g_block(i: int, o: int) -> int:
    return 2 * i + 9 * i * o + o + 2 * o + 9 * o * o + o + i * o + o


def d_block(i: int, o: int, shortcut: bool) -> int:
    return 9 * i * i + i + 9 * i * o + o + (i * o + o if shortcut else 0)


def g_total(bottom: int, widths: list[int]) -> int:
    first, last = widths[0], widths[-1]
    linear = Z * bottom * bottom * first + bottom * bottom * first
    return linear + sum(g_block(a, b) for a, b in pairwise(widths)) + 2 * last + 27 * last + 3


def d_total(widths: list[int], down: list[bool]) -> int:
    optimized = 9 * 3 * widths[0] + widths[0] + 9 * widths[0] ** 2 + widths[0] + 3 * widths[0] + widths[0]
    blocks = sum(d_block(a, b, s or a != b) for (a, b), s in zip(pairwise(widths), down, strict=True))
    return optimized + blocks + widths[-1] + 1


def bn_convs(widths: list[int]) -> int:
    """dcgan64's 4x4 (transposed) convs without bias, each followed by batch norm."""
    return sum(16 * a * b + 2 * b for a, b in pairwise(widths))


EXPECTED = {  # name: (image size, G parameters, D parameters)
    "resnet32": (32, 4_276_739, 1_053_825),
    "resnet48": (48, 4_878_083, 10_141_441),
    "resnet64": (64, 12_220_675, 10_141_441),
    "resnet128": (128, 32_150_787, 29_017_857),
    # G: ConvT z->512 (4x4) 16*128*512, BN 1024, ConvT 512-256-128-64 16io each with BN 2o, ConvT 64->3 16*64*3+3.
    # D: conv 3->64 16*3*64+64, convs 64-128-256-512 16io each with BN 2o, conv 512->1 16*512+1.
    "dcgan64": (64, 3_806_083, 2_765_633),
}


def test_the_expected_counts_follow_from_the_published_widths():
    assert g_total(4, [256] * 4) == EXPECTED["resnet32"][1]
    assert d_total([128] * 4, [True, False, False]) == EXPECTED["resnet32"][2]
    assert g_total(6, [512, 256, 128, 64]) == EXPECTED["resnet48"][1]
    assert d_total([64, 128, 256, 512, 1024], [True, True, True, False]) == EXPECTED["resnet48"][2]
    assert g_total(4, [1024, 512, 256, 128, 64]) == EXPECTED["resnet64"][1]
    assert d_total([64, 128, 256, 512, 1024], [True] * 4) == EXPECTED["resnet64"][2]
    assert g_total(4, [1024, 1024, 512, 256, 128, 64]) == EXPECTED["resnet128"][1]
    assert d_total([64, 128, 256, 512, 1024, 1024], [True] * 4 + [False]) == EXPECTED["resnet128"][2]
    assert 16 * Z * 512 + 1024 + bn_convs([512, 256, 128, 64]) + 16 * 64 * 3 + 3 == EXPECTED["dcgan64"][1]
    assert 16 * 3 * 64 + 64 + bn_convs([64, 128, 256, 512]) + 16 * 512 + 1 == EXPECTED["dcgan64"][2]


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(scope="module")
def archs(tiny_host):
    return {name: tiny_host.registry.get("architecture", name) for name in EXPECTED}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_parameter_counts(archs, name):
    with torch.device("meta"):  # counting needs no memory
        g, d = archs[name].generator(Z, 3), archs[name].discriminator(3)
    assert (archs[name].image_size, count(g), count(d)) == EXPECTED[name]


@pytest.mark.parametrize("name", list(EXPECTED))
def test_shapes_and_range(archs, name):
    arch, size = archs[name], EXPECTED[name][0]
    torch.manual_seed(0)
    g = arch.generator(16, 3)
    fakes = g(torch.randn(2, 16))
    assert fakes.shape == (2, 3, size, size) and fakes.abs().max() <= 1
    assert arch.discriminator(3)(fakes).shape == (2,)
    assert arch.discriminator(3, outputs=3)(fakes).shape == (2, 3)
    packed = torch.cat([fakes, fakes.flip(0)], dim=1)  # PacGAN: 2 images on the channel axis
    assert arch.discriminator(6)(packed).shape == (2,)


def test_resnet32_vmapped_bank_matches_the_loop(archs):
    """As tests/test_generator_bank.py does for dcgan28 and cnn32: the vmapped bank against the loop
    run in float64, images and batch-norm statistics element by element, gradients as a norm (a
    conv bias before batch norm has a true gradient of 0, so only rounding is left in it)."""
    torch.manual_seed(0)
    gens = nn.ModuleList([archs["resnet32"].generator(16, 3) for _ in range(2)])
    exact_gens = copy.deepcopy(gens).double()
    z = torch.randn(2, 3, 16)
    vmapped = torch.stack(GeneratorBank(gens, vectorized=True, device=CPU)(z))
    exact = torch.stack(GeneratorBank(exact_gens, vectorized=False, device=CPU)._looped(z.double()))
    torch.testing.assert_close(vmapped.double(), exact, rtol=1e-4, atol=1e-5)
    for a, b in zip(gens.buffers(), exact_gens.buffers()):
        torch.testing.assert_close(a.double(), b.double(), rtol=1e-4, atol=1e-6)

    weights = torch.randn(exact.shape, dtype=torch.float64)
    (vmapped * weights.float()).sum().backward()
    (exact * weights).sum().backward()
    for (name, a), b in zip(exact_gens.named_parameters(), gens.parameters()):
        assert b.grad is not None and (b.grad.double() - a.grad).norm() <= 1e-2 * a.grad.norm() + 1e-3, name


@pytest.mark.parametrize("vectorized", [False, True])
def test_resnet32_under_bf16_autocast(archs, vectorized):
    torch.manual_seed(0)
    gens = nn.ModuleList([archs["resnet32"].generator(16, 3) for _ in range(2)])
    fakes = torch.stack(GeneratorBank(gens, vectorized=vectorized, device=CPU, amp=torch.bfloat16)(torch.randn(4, 16)))
    assert fakes.dtype == torch.float32 and fakes.isfinite().all()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = archs["resnet32"].discriminator(3)(fakes[0])
    assert logits.shape == (4,) and logits.isfinite().all()


@pytest.mark.parametrize("strategy, settings", [
    ("sngan", {}),
    ("psg", {"n_gens": 2, "vmap": "on"}),
])
def test_resnet32_trains(tiny_host, tmp_path, strategy, settings):
    config = new_config(tiny_host.registry, strategy, None, {
        "dataset": TINY32, "arch": "resnet32", "batch_size": 4, "steps": 2, "device": "cpu",
        "log_every": 1, "sample_count": 2, "z_dim": 16, **settings,
    }, {})
    session = Session.new(tiny_host, config, tmp_path / "run", make_evaluator=training_evaluator(tiny_host))
    before = {name: copy.deepcopy(module.state_dict()) for name, module in session.trainer.state.modules().items()}
    record = session.run()
    losses = torch.tensor([record["d_loss"], *record["g_loss"]])
    assert losses.shape == (1 + settings.get("n_gens", 1),) and losses.isfinite().all()
    after = session.trainer.state.modules()
    assert set(after) == set(before) and len(after) == 1 + settings.get("n_gens", 1)
    for name, module in after.items():
        changed = [key for key, value in module.state_dict().items()
                   if value.is_floating_point() and not torch.equal(value, before[name][key])]
        assert changed, f"{name}: no weight changed"


@pytest.mark.slow  # a resnet32 run per strategy: about 40 s on 2 cores
@pytest.mark.parametrize("strategy", make_host().registry.names("strategy"))
def test_every_strategy_trains_a_step_with_the_resnets(tiny_host, strategy):
    """Every policy with the ResNets: several generators, K logits (MAD-GAN, MGAN), packed inputs
    (PacGAN), several discriminators (D2GAN, GMAN), penalties (WGAN-GP, RpGAN)."""
    several = {"n_gens": 2} if strategy in ("psg", "madgan", "mgan") else {}
    record = smoke_train(strategy, host=tiny_host, steps=1, dataset=TINY32, arch="resnet32", batch_size=4, z_dim=16, **several)
    losses = torch.tensor([record["d_loss"], *record["g_loss"]])
    assert losses.isfinite().all() and len(record["g_loss"]) == several.get("n_gens", 1)
