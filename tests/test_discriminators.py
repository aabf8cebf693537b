"""Several discriminators (DiscriminatorSpec), the post-step hook (weight clipping), and the built-in
strategies that use them: d2gan, gman (K discriminators), wgan and wgan-gp."""

from __future__ import annotations

import re

import pytest
import torch
import torch.nn.functional as F

from ganzoo import hookimpl
from ganzoo.core.errors import GanzooError
from ganzoo.core.parts import DiscriminatorSpec, NamedFactory, PolicyOutput
from ganzoo.plugins.d2gan.policy import d2gan_losses
from ganzoo.plugins.gman.policy import gman_losses
from ganzoo.plugins.wgan.policy import WassersteinPolicy, wasserstein_losses
from ganzoo.runs.checkpoint import read_checkpoint
from ganzoo.testing import registered, smoke_resume, smoke_train
from tests.helpers import TINY, invoke

# -- the losses, by hand -------------------------------------------------------------------------


def test_d2gan_losses_match_hand_computation():
    # N = 2 generators, B = 2 tuples: rows are (real, G_1's, G_2's), columns the tuples
    s1 = torch.tensor([[1.0, 0.0], [-1.0, 0.5], [0.2, 2.0]], dtype=torch.float64)  # D1
    s2 = torch.tensor([[0.5, -1.0], [2.0, 1.0], [-0.3, 3.0]], dtype=torch.float64)  # D2
    out = d2gan_losses(s1, s2, alpha=0.2, beta=0.1)
    sp = F.softplus
    d = -0.2 * sp(s1[0]).log() + (sp(s1[1]) + sp(s1[2])) / 2 + sp(s2[0]) - 0.1 * (sp(s2[1]).log() + sp(s2[2]).log()) / 2
    g = -sp(s1[1:]) + 0.1 * sp(s2[1:]).log()
    assert torch.allclose(out.d_losses, d) and torch.allclose(out.g_losses, g)
    # D1 above on the real image, D2 above on the fake, per (D, fake) pair: tuple 1 gets 3 of 4, tuple 2 gets 2 of 4
    assert out.correct.tolist() == [0.75, 0.5] and out.chance == 0.5

    # Very sure and wrong (D1 calls the real image fake, D2 calls the fake real): log D would be
    # log 0; the loss is finite and D still gets its whole gradient, -alpha and beta
    s1 = torch.tensor([[-200.0], [0.0]], requires_grad=True)
    s2 = torch.tensor([[0.0], [-200.0]], requires_grad=True)
    wrong = d2gan_losses(s1, s2, 0.2, 0.1)
    assert wrong.d_losses.item() == pytest.approx(0.2 * 200 + F.softplus(torch.tensor(0.0)).item() * 2 + 0.1 * 200)
    wrong.d_losses.sum().backward()
    assert s1.grad[0].item() == pytest.approx(-0.2) and s2.grad[1].item() == pytest.approx(-0.1)


def test_gman_losses_weight_the_discriminators_by_softmax():
    # K = 2 discriminators, N = 1, B = 1: D1 finds the fake fake (s = -2), D2 finds it real (s = 3)
    scores = torch.tensor([[[1.0], [-2.0]], [[1.0], [3.0]]], dtype=torch.float64)
    against = F.softplus(-scores[:, 1, 0])  # G's loss against each D
    for temperature in (0.0, 1.0, 50.0):
        w = torch.softmax(temperature * against, 0)
        assert gman_losses(scores, temperature).g_losses.item() == pytest.approx((w * against).sum().item())
    assert gman_losses(scores, 0.0).g_losses.item() == pytest.approx(against.mean().item())  # GMAN-0: the mean
    assert gman_losses(scores, 1e3).g_losses.item() == pytest.approx(against.max().item())  # the harshest critic
    d = sum(F.softplus(-scores[k, 0, 0]) + F.softplus(scores[k, 1, 0]) for k in range(2))
    assert gman_losses(scores, 1.0).d_losses.item() == pytest.approx(d.item())

    # K = 3, N = 2, B = 2: generator i's weights over the Ds come from its own batch-mean losses
    scores = torch.randn(3, 3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    g_losses = gman_losses(scores, 2.0).g_losses
    for i in range(2):
        means = torch.stack([F.softplus(-scores[k, 1 + i]).mean() for k in range(3)])
        w = torch.softmax(2.0 * means, 0)
        for b in range(2):
            assert g_losses[i, b].item() == pytest.approx(sum(w[k] * F.softplus(-scores[k, 1 + i, b]) for k in range(3)).item())


def test_wasserstein_losses_and_the_gradient_penalty_by_hand():
    scores = torch.tensor([[2.0, 0.0], [1.0, 3.0], [-1.0, 0.5]])  # real, G_1, G_2
    out = wasserstein_losses(scores)
    assert out.d_losses.tolist() == [0.0 - 2.0, 1.75 - 0.0] and out.g_losses.tolist() == [[-1.0, -3.0], [1.0, -0.5]]
    assert out.correct.tolist() == [1.0, 0.0]
    # a linear critic w.x has gradient w everywhere: the penalty is (||w|| - 1)^2 whatever the interpolate
    critic = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 1, bias=False))
    with torch.no_grad():
        critic[1].weight.copy_(torch.tensor([[3.0, 0.0, 4.0, 0.0]]))  # ||w|| = 5
    real, fakes = torch.randn(3, 1, 2, 2), [torch.randn(3, 1, 2, 2)]
    policy = WassersteinPolicy(gp=10.0)
    scored = lambda x: critic(x).squeeze(1)  # noqa: E731
    d_out = policy(scored, real, fakes, "discriminator")
    assert d_out.extras["gp"].item() == pytest.approx(16.0)  # (5 - 1)^2, logged unscaled
    plain = policy(scored, real, fakes, "generator")
    assert torch.allclose(d_out.d_losses, plain.d_losses + 10.0 * 16.0) and plain.extras == {}


# -- several discriminators in a run -----------------------------------------------------------


def test_d2gan_keeps_two_discriminators_each_with_its_own_optimizer(tiny_host, tmp_path):
    record = smoke_train("d2gan", host=tiny_host, steps=2, run_dir=tmp_path / "run")
    tensors, manifest = read_checkpoint(tmp_path / "run")
    assert {k.split(".")[1] for k in tensors if k.startswith("discriminator.")} == {"d1", "d2"}
    assert set(manifest["optimizer_groups"]) == {"discriminator.d1", "discriminator.d2", "generator.0"}
    assert [d["name"] for d in manifest["discriminators"]] == ["d1", "d2"] and "discriminator" not in manifest
    # two networks of the same architecture, initialised apart
    assert not torch.equal(tensors["discriminator.d1.net.0.weight"], tensors["discriminator.d2.net.0.weight"])
    assert record["chance"] == 0.5 and 0 <= record["d_accuracy"] <= 1


class TwoCritics:
    """A third party's policy: two critics of different architectures and optimizer settings."""

    discriminators = (DiscriminatorSpec("wide", architecture="dcgan28-wide", lr=1e-3, optimizer="sgd"),
                      DiscriminatorSpec("lean", architecture="dcgan28-lean", betas=(0.0, 0.9), spectral_norm=True))

    def __init__(self):
        self.clipped = 0

    def __call__(self, discriminators, real, fakes, phase):
        images, shape = torch.cat([real, *fakes]), (len(fakes) + 1, real.shape[0])
        out = wasserstein_losses(sum(d(images).view(shape) for d in discriminators.values()))
        return PolicyOutput(out.d_losses, out.g_losses, out.g_losses_own, out.picks, out.correct, out.chance)

    def after_discriminator_step(self, discriminators):
        self.clipped += 1
        for network in discriminators.values():
            for weight in network.parameters():
                weight.clamp_(-0.05, 0.05)


class TwoCriticsPlugin:
    def __init__(self):
        self.built: list[TwoCritics] = []

    @hookimpl
    def ganzoo_register_input_policies(self, register):
        def build(config):
            self.built.append(TwoCritics())
            return self.built[-1]

        register(NamedFactory("two-critics", "two critics of their own", build))


def test_a_policy_asks_for_discriminators_of_any_architecture_and_optimizer(tiny_host, tmp_path):
    plugin = TwoCriticsPlugin()
    with registered(plugin, tiny_host) as host:
        smoke_train("dcgan", host=host, policy="two-critics", steps=3, n_dis=2, run_dir=tmp_path / "run")
        smoke_resume(tmp_path / "run", host=host, steps=4)
    assert plugin.built[0].clipped == 6  # after each of the n_dis critic steps of each step
    tensors, manifest = read_checkpoint(tmp_path / "run")
    wide, lean = manifest["discriminators"]
    assert (wide["architecture"], wide["spectral_norm"], lean["architecture"], lean["spectral_norm"]) == (
        "dcgan28-wide", False, "dcgan28-lean", True)
    assert tensors["discriminator.wide.net.0.weight"].shape[0] == 128 and "discriminator.lean.net.0.parametrizations.weight.original" in tensors
    assert max(t.abs().max().item() for k, t in tensors.items() if k.startswith("discriminator.wide.")) <= torch.tensor(0.05).item()
    groups = manifest["optimizer_groups"]
    assert "momentum" in groups["discriminator.wide"][0] and groups["discriminator.wide"][0]["lr"] == 1e-3  # SGD at its own lr
    assert groups["discriminator.lean"][0]["betas"] == [0.0, 0.9]  # Adam, the run's lr, its own betas


def test_bad_discriminator_specs_are_refused_before_anything_is_written(tiny_host, tmp_path):
    class Bad:
        @hookimpl
        def ganzoo_register_input_policies(self, register):
            class Twins:
                discriminators = (DiscriminatorSpec("d"), DiscriminatorSpec("d"))

            class OtherSize:
                discriminators = (DiscriminatorSpec("d", architecture="cnn32"),)

            register(NamedFactory("twins", "two Ds of one name", lambda config: Twins()))
            register(NamedFactory("other-size", "a D for 32x32 images", lambda config: OtherSize()))

    with registered(Bad(), tiny_host) as host:
        for policy, message in (("twins", "distinct names"), ("other-size", "architecture 'cnn32' for 32x32 images; this run's are 28x28")):
            out = tmp_path / policy
            result = invoke(host, "train", "dcgan", "--policy", policy, *TINY, "--out", str(out))
            assert result.exit_code == 2 and message in result.stderr, result.stderr
            assert not out.exists()
    from ganzoo.training.build import discriminator_specs

    def policy_asking_for(*specs):
        return type("P", (), {"discriminators": specs})()

    for specs, message in (
        ((DiscriminatorSpec("d"), DiscriminatorSpec("d")), "distinct names"),
        ((DiscriminatorSpec("D one"),), "distinct names of 1-32 lowercase"),
        ((DiscriminatorSpec("d", outputs=0),), "both must be at least 1"),
        ((DiscriminatorSpec("d", optimizer="adamw2"),), "optimizer 'adamw2'"),
        ((DiscriminatorSpec("d", lr=0.0),), "learning rate 0.0; it must be in (0, 1]"),
        ((DiscriminatorSpec("d", lr=3),), "learning rate 3;"),
        ((DiscriminatorSpec("d", betas=(0.5,)),), "betas (0.5,)"),
        ((DiscriminatorSpec("d", betas=(0.5, 1.0)),), "two numbers in [0, 1)"),
    ):
        with pytest.raises(GanzooError, match=re.escape(message)):
            discriminator_specs(policy_asking_for(*specs))
    good = (DiscriminatorSpec("d_1", optimizer="sgd", lr=0.01, betas=(0.0, 0.9)), DiscriminatorSpec("e"))
    assert discriminator_specs(policy_asking_for(*good)) == good


# -- the Wasserstein strategies --------------------------------------------------------------------


def test_wgan_clips_every_critic_weight_after_every_critic_step(tiny_host, tmp_path):
    smoke_train("wgan", host=tiny_host, steps=2, run_dir=tmp_path / "run")
    tensors, manifest = read_checkpoint(tmp_path / "run")
    critic = [t for k, t in tensors.items() if k.startswith("discriminator.")]
    assert max(t.abs().max().item() for t in critic) <= torch.tensor(0.01).item()
    config = manifest["config"]
    assert (config["optimizer"], config["lr"], config["n_dis"], config["options"]["clip"]) == ("rmsprop", 5e-5, 5, 0.01)
    assert "square_avg" in " ".join(tensors)  # RMSprop's state, kept


def test_wgan_gp_logs_its_penalty_and_refuses_compile(tiny_host):
    record = smoke_train("wgan-gp", host=tiny_host, steps=2)
    assert record["extras"]["gp"] > 0
    result = invoke(tiny_host, "train", "wgan-gp", *TINY, "--compile")
    assert result.exit_code == 2 and "--gp 10" in result.stderr and "drop --compile" in result.stderr
