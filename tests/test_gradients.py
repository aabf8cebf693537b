"""Gradient routing of the aggregations: who learns from which loss."""

from __future__ import annotations

import dataclasses

import torch

from ganzoo.plugins.aggregations.losses import algorithm1, independent, mean
from ganzoo.plugins.psg.tuple_policy import TuplePolicy, tuple_losses


def generator_scores(seed=0, b=4):
    """Real scores fixed; each generator's scores are its own leaf tensor (its 'parameters')."""
    torch.manual_seed(seed)
    real = torch.randn(b, dtype=torch.float64)
    g1 = torch.randn(b, dtype=torch.float64, requires_grad=True)
    g2 = torch.randn(b, dtype=torch.float64, requires_grad=True)
    return real, g1, g2


def grad_of_g1(aggregation, scale_g2: float):
    real, g1, g2 = generator_scores()
    out = tuple_losses(torch.stack([real, g1, g2]))
    scale = torch.tensor([[1.0], [scale_g2]], dtype=torch.float64)
    changed = dataclasses.replace(out, g_losses=out.g_losses * scale, g_losses_own=out.g_losses_own * scale)
    (grad,) = torch.autograd.grad(aggregation(changed).generators, g1)
    return grad


def test_independent_generator_1_ignores_generator_2_loss():
    torch.testing.assert_close(grad_of_g1(independent, 1.0), grad_of_g1(independent, 10.0))


def test_mean_couples_the_generators():
    assert not torch.allclose(grad_of_g1(mean, 1.0), grad_of_g1(mean, 10.0))


def test_algorithm1_winner_gets_zero_gradient_from_its_tuple():
    real = torch.tensor([5.0, 0.0, 0.0], dtype=torch.float64)
    g1 = torch.tensor([0.0, 5.0, 0.0], dtype=torch.float64, requires_grad=True)  # G_1 wins tuple 1
    g2 = torch.tensor([0.0, 0.0, 5.0], dtype=torch.float64, requires_grad=True)  # G_2 wins tuple 2
    out = tuple_losses(torch.stack([real, g1, g2]))
    grad1, grad2 = torch.autograd.grad(algorithm1(out).generators, [g1, g2])
    assert grad1[1].item() == 0.0 and grad2[2].item() == 0.0
    assert grad1[0].item() != 0.0 and grad1[2].item() != 0.0
    assert grad2[0].item() != 0.0 and grad2[1].item() != 0.0


def test_independent_through_real_networks():
    """With real generator and discriminator networks: G_1's parameter gradient under `independent`
    equals the gradient of G_1's own loss alone, with G_2's sample treated as data."""
    torch.manual_seed(0)
    g1, g2 = torch.nn.Linear(3, 5), torch.nn.Linear(3, 5)
    d = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1), torch.nn.Flatten(0))
    z, real = torch.randn(6, 3), torch.randn(6, 5)
    policy = TuplePolicy()
    out = policy(d, real, [g1(z), g2(z)], "generator")
    full = torch.autograd.grad(independent(out).generators, list(g1.parameters()))
    out_alone = policy(d, real, [g1(z), g2(z).detach()], "generator")
    alone = torch.autograd.grad(out_alone.g_losses[0].mean(), list(g1.parameters()))
    for a, b in zip(full, alone):
        torch.testing.assert_close(a, b)
