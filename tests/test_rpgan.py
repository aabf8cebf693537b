"""R3GAN's relativistic pairing loss (the rpgan plugin), the R1/R2 gradient penalties of
ganzoo.core.penalties, and the --r1 lever of the binary and tuple policies."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest
import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from ganzoo.core.compose import check_composition, new_config
from ganzoo.core.errors import GanzooError
from ganzoo.core.penalties import gradient_penalty, scores_and_penalties
from ganzoo.plugins.binary.binary_policy import BinaryPolicy, binary_losses
from ganzoo.plugins.psg.tuple_policy import TuplePolicy, tuple_losses
from ganzoo.plugins.rpgan.policy import PairingPolicy, pairing_losses
from ganzoo.runs.rundir import read_metrics
from ganzoo.testing import smoke_train
from ganzoo.training.precision import Autocast
from tests.helpers import TINY, invoke


class Linear(nn.Module):
    """D(x) = <w, x> + 1: its input gradient is w for every image, so ||grad_x D(x)||^2 = ||w||^2."""

    def __init__(self, w: torch.Tensor):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(w.numel(), 1))
        with torch.no_grad():
            self.net[1].weight.copy_(w.reshape(1, -1))
            self.net[1].bias.fill_(1.0)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.net(x).squeeze(1)


def images(b: int = 3, seed: int = 0) -> torch.Tensor:
    return torch.randn(b, 1, 4, 4, generator=torch.Generator().manual_seed(seed))


W = torch.arange(16, dtype=torch.float32).reshape(1, 4, 4) / 10 - 0.7
W_SQ = W.square().sum().item()


# -- the pairing loss ---------------------------------------------------------------------------


def test_pairing_losses_match_hand_computation():
    scores = torch.tensor([[2.0, -1.0], [0.5, -3.0], [3.0, 1.0]], dtype=torch.float64)  # rows: real, G_1, G_2
    out = pairing_losses(scores)
    sp = lambda t: math.log1p(math.exp(t))
    assert out.d_losses.tolist() == pytest.approx([(sp(0.5 - 2) + sp(3 - 2)) / 2, (sp(-3 + 1) + sp(1 + 1)) / 2])
    assert out.g_losses.flatten().tolist() == pytest.approx([sp(2 - 0.5), sp(-1 + 3), sp(2 - 3), sp(-1 - 1)])
    assert out.g_losses_own is out.g_losses  # G_i's loss depends on its own pair only
    assert out.correct.tolist() == [0.5, 0.5] and out.chance == 0.5  # tuple 1: x beats G_1, not G_2
    assert out.picks.tolist() == [2, 2] and out.extras == {}


def test_with_one_generator_the_pairing_loss_is_psgs_tuple_loss_and_with_more_it_is_not():
    scores = torch.tensor([[2.0, -1.0], [0.5, -3.0], [3.0, 1.0]], dtype=torch.float64)
    one, tuple_one = pairing_losses(scores[:2]), tuple_losses(scores[:2])  # softmax of two = sigmoid of the gap
    assert torch.allclose(one.d_losses, tuple_one.d_losses) and torch.allclose(one.g_losses, tuple_one.g_losses)
    assert not torch.allclose(pairing_losses(scores).d_losses, tuple_losses(scores).d_losses)


# -- the penalties ------------------------------------------------------------------------------


def test_the_penalty_of_a_linear_d_is_its_squared_weight_norm_and_is_differentiable():
    d = Linear(W)
    x = images()
    scores, (sq,) = scores_and_penalties(d, [x], [True])
    assert d.calls == 1 and torch.allclose(scores, d.net(x).squeeze(1).detach())
    assert sq.shape == (3,) and torch.allclose(sq, torch.full((3,), W_SQ))
    sq.sum().backward()  # create_graph: the penalty's gradient reaches D's weight, d/dw 3 ||w||^2 = 6 w
    assert torch.allclose(d.net[1].weight.grad, 6 * W.reshape(1, -1))


class Tanh(nn.Module):
    """A nonlinear D whose input gradient differs from image to image; optionally conditional."""

    def __init__(self, classes: int = 0):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.Tanh(), nn.Linear(8, 1))
        self.embed = nn.Embedding(classes, 16) if classes else None
        self.calls: list[int] = []

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        self.calls.append(x.shape[0])
        out = self.net(x).squeeze(1)
        return out if y is None else out + (self.embed(y) * x.flatten(1)).sum(1)


def whole_batch(d, batches, penalise, labels=None):
    """0.6's way, for reference: one pass on every image, the input gradient taken through all of them."""
    b = batches[0].shape[0]
    x = torch.cat(batches).detach().requires_grad_(True)
    scores = d(x) if labels is None else d(x, labels.repeat(len(batches)))
    rows = torch.tensor(penalise).repeat_interleave(b)
    (grad,) = torch.autograd.grad(scores[rows].sum(), x, create_graph=True)
    sq = grad.square().flatten(1).sum(1).view(len(batches), b)
    return scores, [sq[i] if p else None for i, p in enumerate(penalise)]


@pytest.mark.parametrize("classes", [0, 5])
@pytest.mark.parametrize("penalise", [[True, False, False], [False, True, True], [True, True, True], [True, False, True]])
def test_penalties_go_through_what_they_penalise_only_and_equal_one_pass_on_everything(classes, penalise):
    torch.manual_seed(0)
    d = Tanh(classes)
    batches = [images(3, i) for i in range(3)]
    labels = torch.tensor([0, 4, 2]) if classes else None
    scores, sq = scores_and_penalties(d, batches, penalise, labels)
    on = sum(penalise)
    assert d.calls == ([3 * on, 3 * (3 - on)] if on < 3 else [9])  # the penalised images, then the rest
    want_scores, want_sq = whole_batch(d, batches, penalise, labels)
    assert torch.allclose(scores, want_scores, atol=1e-6)
    assert [s is None for s in sq] == [not p for p in penalise]
    for got, want in zip(sq, want_sq):
        if want is not None:
            assert got.shape == (3,) and torch.allclose(got, want, atol=1e-6)
    # the same gradient reaches D's weights through the losses and the penalties
    total = lambda s, q: s.square().sum() + sum(x.sum() for x in q if x is not None)
    grads = torch.autograd.grad(total(scores, sq), list(d.parameters()))
    want_grads = torch.autograd.grad(total(want_scores, want_sq), list(d.parameters()))
    assert all(torch.allclose(g, w, atol=1e-5) for g, w in zip(grads, want_grads))


def test_a_spectral_normalised_d_makes_one_power_iteration_over_both_passes():
    torch.manual_seed(0)
    split, single = Tanh(), Tanh()
    single.load_state_dict(split.state_dict())
    for d in (split, single):
        spectral_norm(d.net[1])
    single.load_state_dict(split.state_dict())  # the same power-iteration vectors u and v
    scores_and_penalties(split, [images(3, 0), images(3, 1)], [True, False])
    single(torch.cat([images(3, 0), images(3, 1)]))  # one forward: one power iteration
    assert split.calls == [3, 3]
    u = lambda d: d.net[1].parametrizations.weight[0]._u
    assert torch.allclose(u(split), u(single))


def test_the_penalty_works_through_bf16_autocast_and_spectral_norm():
    plain = Linear(W)
    through_amp = gradient_penalty(Autocast(plain, torch.device("cpu"), torch.bfloat16), images())
    assert through_amp.dtype == torch.float32 and torch.allclose(through_amp, torch.full((3,), W_SQ), rtol=2e-2)
    normalised = Linear(W)
    spectral_norm(normalised.net[1])
    sq = gradient_penalty(normalised, images())  # a one-row weight divided by its norm: gradient norm 1
    assert torch.allclose(sq, torch.ones(3), atol=1e-5)
    sq.sum().backward()
    assert normalised.net[1].parametrizations.weight.original.grad is not None


def test_rpgan_adds_r1_on_real_and_r2_on_fakes_in_ds_update_only():
    d, real, fakes = Linear(W), images(3, 0), [images(3, 1), images(3, 2)]
    plain = PairingPolicy()(d, real, fakes, "discriminator")
    with_both = PairingPolicy(r1=0.5, r2=4.0)(d, real, fakes, "discriminator")
    assert torch.allclose(with_both.d_losses, plain.d_losses + (0.5 / 2 + 4.0 / 2) * W_SQ)
    assert set(with_both.extras) == {"r1", "r2"} and all(v.dim() == 0 for v in with_both.extras.values())
    assert with_both.extras["r1"].item() == pytest.approx(W_SQ) and with_both.extras["r2"].item() == pytest.approx(W_SQ)
    only_r2 = PairingPolicy(r2=2.0)(d, real, fakes, "discriminator")
    assert set(only_r2.extras) == {"r2"} and torch.allclose(only_r2.d_losses, plain.d_losses + W_SQ)
    d.calls = 0
    generator_phase = PairingPolicy(r1=0.5, r2=4.0)(d, real, fakes, "generator")
    assert d.calls == 1 and generator_phase.extras == {} and torch.equal(generator_phase.d_losses, plain.d_losses)


# -- --r1 on the binary and tuple policies -----------------------------------------------------


@pytest.mark.parametrize("policy, losses", [(BinaryPolicy("bce"), lambda s: binary_losses(s, "bce")),
                                            (BinaryPolicy("hinge"), lambda s: binary_losses(s, "hinge")),
                                            (TuplePolicy(), tuple_losses)])
def test_r1_off_leaves_binary_and_tuple_as_they_were(policy, losses):
    d, real, fakes = Linear(W), images(3, 0), [images(3, 1), images(3, 2)]
    want = losses(d(torch.cat([real, *fakes])).view(3, 3))  # what the policies computed before --r1
    for phase in ("discriminator", "generator"):
        d.calls = 0
        out = policy(d, real, fakes, phase)
        assert d.calls == 1 and out.extras == {}
        for field in ("d_losses", "g_losses", "g_losses_own", "picks", "correct"):
            assert torch.equal(getattr(out, field), getattr(want, field)), field


@pytest.mark.parametrize("off, on", [(BinaryPolicy("bce"), BinaryPolicy("bce", r1=3.0)), (TuplePolicy(), TuplePolicy(r1=3.0))])
def test_r1_on_adds_the_penalty_on_real_images_in_ds_update(off, on):
    d, real, fakes = Linear(W), images(3, 0), [images(3, 1)]
    out = on(d, real, fakes, "discriminator")
    assert torch.allclose(out.d_losses, off(d, real, fakes, "discriminator").d_losses + 3.0 / 2 * W_SQ)
    assert out.extras["r1"].item() == pytest.approx(W_SQ)
    assert on(d, real, fakes, "generator").extras == {}


def test_the_tuple_policy_adds_r2_on_the_fakes_averaged_over_the_n_generators():
    d, real, fakes = Linear(W), images(3, 0), [images(3, 1), images(3, 2)]
    plain = TuplePolicy()(d, real, fakes, "discriminator")
    both = TuplePolicy(r1=0.5, r2=4.0)(d, real, fakes, "discriminator")
    assert torch.allclose(both.d_losses, plain.d_losses + (0.5 / 2 + 4.0 / 2) * W_SQ)
    assert both.extras["r1"].item() == pytest.approx(W_SQ) and both.extras["r2"].item() == pytest.approx(W_SQ)
    d.calls = 0
    only_r2 = TuplePolicy(r2=2.0)(d, real, fakes, "discriminator")
    assert d.calls == 2 and set(only_r2.extras) == {"r2"}  # the fakes with their input gradient, the real images without
    assert torch.allclose(only_r2.d_losses, plain.d_losses + W_SQ)
    # two passes (3 real, 6 fakes) against one of 9: the same sums, not always in the same order
    assert torch.allclose(only_r2.g_losses, plain.g_losses, rtol=1e-6, atol=1e-6)
    for field in ("picks", "correct"):
        assert torch.equal(getattr(only_r2, field), getattr(plain, field)), field


def test_the_tuple_temperature_divides_the_scores_before_the_softmax():
    d, real, fakes = Linear(W), images(3, 0), [images(3, 1), images(3, 2)]
    scores = d(torch.cat([real, *fakes])).view(3, 3)
    for temperature in (0.5, 1.0, 3.0):
        out = TuplePolicy(temperature=temperature)(d, real, fakes, "generator")
        want = tuple_losses(scores / temperature)
        for field in ("d_losses", "g_losses", "g_losses_own", "picks", "correct"):
            assert torch.allclose(getattr(out, field).float(), getattr(want, field).float()), (temperature, field)
    hot, cold = TuplePolicy(temperature=3.0)(d, real, fakes, "generator"), TuplePolicy(temperature=0.5)(d, real, fakes, "generator")
    assert (hot.d_losses - math.log(3)).abs().max() < (cold.d_losses - math.log(3)).abs().max()  # closer to chance, log(N + 1)


def test_the_registered_policies_read_r1_from_the_runs_options(tiny_host):
    registry = tiny_host.registry
    for strategy, default in (("dcgan", 0.0), ("psg", 30.0)):  # the declared default; psg's own since 0.7
        config = new_config(registry, strategy, None, {"dataset": "tiny"})
        assert config.options["r1"] == default and registry.get("input policy", config.policy).build(config).r1 == default
        given = new_config(registry, strategy, None, {"dataset": "tiny"}, {"r1": 2})
        assert registry.get("input policy", given.policy).build(given).r1 == 2.0
    tuple_policy = registry.get("input policy", "tuple").build(new_config(registry, "psg", None, {"dataset": "tiny"}))
    assert (tuple_policy.r1, tuple_policy.r2, tuple_policy.temperature) == (30.0, 30.0, 1.0)
    record = smoke_train("psg", host=tiny_host, options={"r1": 1.0, "r2": 0.0})
    assert set(record["extras"]) == {"r1"} and record["extras"]["r1"] > 0
    record = smoke_train("psg", host=tiny_host)  # the defaults log both
    assert set(record["extras"]) == {"r1", "r2"} and all(v >= 0 for v in record["extras"].values())


# -- the strategy, its options and what it refuses -------------------------------------------


def test_compile_is_refused_only_while_a_penalty_is_on(tiny_host):
    registry = tiny_host.registry

    def check(strategy, **options):
        check_composition(registry, new_config(registry, strategy, None, {"dataset": "tiny", "compile": True}, options))

    check("rpgan", r1=0.0, r2=0.0)
    check("dcgan")
    check("psg", r1=0, r2=0)
    with pytest.raises(GanzooError, match=r"input policy tuple needs double backward for --r1 30, --r2 30 .*set --r1 and --r2 to 0"):
        check("psg")  # psg's own gammas since 0.7
    with pytest.raises(GanzooError, match=r"input policy rpgan needs double backward for --r1 0\.5 \(a gradient penalty\), "
                                          r"which --compile does not support; drop --compile or set --r1 to 0"):
        check("rpgan", r1=0.5, r2=0.0)
    with pytest.raises(GanzooError, match=r"--r1 \d\S*, --r2 \d\S* .*set --r1 and --r2 to 0"):
        check("rpgan")  # the strategy's own gammas
    with pytest.raises(GanzooError, match="input policy binary needs double backward for --r1 1"):
        check("dcgan", r1=1)


def test_r2_is_refused_where_no_part_takes_it(tiny_host, tmp_path):
    run_dir = tmp_path / "run"
    refused = invoke(tiny_host, "train", "sngan", "--r2", "1", *TINY, "--steps", "1", "--out", str(run_dir))
    assert refused.exit_code == 2
    assert refused.stderr == ("error: --r2 belongs to input policy rpgan, input policy tuple, which this run does not use "
                              "(aggregation mean, input policy binary)\n")
    negative = invoke(tiny_host, "train", "rpgan", "--r1", "-1", *TINY, "--steps", "1", "--out", str(run_dir))
    assert negative.exit_code == 2 and "--r1 must be a number in [0.0, 10000.0], got -1.0" in negative.stderr
    assert not run_dir.exists()


@pytest.mark.parametrize("settings", [{"n_gens": 2}, {"n_gens": 2, "spectral_norm": True, "amp": "bf16"}])
def test_rpgan_with_two_generators_trains(tiny_host, settings):
    record = smoke_train("rpgan", host=tiny_host, steps=3, **settings)
    assert len(record["g_loss"]) == 2 and record["chance"] == 0.5
    assert set(record["extras"]) == {"r1", "r2"} and all(math.isfinite(v) and v >= 0 for v in record["extras"].values())


def test_ganzoo_train_rpgan_logs_r1_and_r2(tmp_path):
    run_dir = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "ganzoo", "train", "rpgan", "--steps", "3", "--limit-data", "256",
                           "--batch-size", "32", "--device", "cpu", "--out", str(run_dir), "--quiet"],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    record = read_metrics(run_dir)[-1]
    assert record["step"] == 3 and set(record["extras"]) == {"r1", "r2"}
    assert all(math.isfinite(v) and v > 0 for v in record["extras"].values())
