"""The policies' and aggregations' values on hand-made D scores, checked against hand computation."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ganzoo.plugins.aggregations.losses import algorithm1, independent, mean
from ganzoo.plugins.binary.binary_policy import binary_losses
from ganzoo.plugins.psg.tuple_policy import tuple_losses


def softmax_col(column):
    exps = [math.exp(s) for s in column]
    return [e / sum(exps) for e in exps]


@pytest.mark.parametrize(
    "scores",
    [
        [[2.0, -1.0, 0.5], [0.0, 3.0, -2.0]],  # N = 1, B = 3
        [[1.0, 0.0], [0.5, 2.0], [-1.0, 1.0]],  # N = 2, B = 2
        [[0.3, -0.2], [1.5, 0.1], [-0.7, 0.4], [0.2, 0.9]],  # N = 3, B = 2
    ],
)
def test_tuple_loss_matches_hand_computed_softmax(scores):
    s = torch.tensor(scores, dtype=torch.float64)
    n, b = s.shape[0] - 1, s.shape[1]
    out = tuple_losses(s)
    for j in range(b):
        p = softmax_col([scores[r][j] for r in range(n + 1)])
        assert out.d_losses[j].item() == pytest.approx(-math.log(p[0]))
        for i in range(n):
            assert out.g_losses[i, j].item() == pytest.approx(-math.log(p[i + 1]))
            assert out.g_losses_own[i, j].item() == pytest.approx(-math.log(p[i + 1]))
        top = max(range(n + 1), key=lambda r: scores[r][j])
        assert out.picks[j].item() == top
        assert out.correct[j].item() == (1.0 if top == 0 else 0.0)
    assert out.chance == pytest.approx(1 / (n + 1))


def test_tuple_accuracy_and_chance_for_one_two_three_generators():
    # D ranks the real sample first in 2 of 4 tuples.
    for n in (1, 2, 3):
        s = torch.zeros(n + 1, 4)
        s[0, :2] = 5.0  # real on top in tuples 0, 1
        s[n, 2:] = 5.0  # the last generator on top in tuples 2, 3
        out = tuple_losses(s)
        assert out.correct.mean().item() == 0.5
        assert out.chance == pytest.approx(1 / (n + 1))
        assert out.picks.tolist() == [0, 0, n, n]


def test_tuple_with_one_generator_is_the_bce_gan_on_the_pair_logit():
    """N = 1: softmax over (s_x, s_g) is sigmoid(s_x - s_g), so D's loss is BCE(real) on the logit
    s_x - s_g and G's is the non-saturating BCE(fake -> real) on s_g - s_x."""
    torch.manual_seed(0)
    s = torch.randn(2, 50, dtype=torch.float64)
    out = tuple_losses(s)
    logit = s[0] - s[1]
    ones = torch.ones(50, dtype=torch.float64)
    torch.testing.assert_close(out.d_losses, F.binary_cross_entropy_with_logits(logit, ones, reduction="none"))
    torch.testing.assert_close(out.g_losses[0], F.binary_cross_entropy_with_logits(-logit, ones, reduction="none"))
    # and D's "accuracy" is the BCE classifier's: sigmoid(logit) > 1/2
    assert out.correct.tolist() == (logit > 0).double().tolist()


def test_binary_hinge_and_bce_values():
    s = torch.tensor([[2.0, -0.5], [0.5, -3.0], [-2.0, 1.0]])  # real row, then 2 generators
    hinge = binary_losses(s, "hinge")
    # tuple 0: relu(1 - 2) + mean(relu(1.5), relu(-1)) = 0 + 0.75
    # tuple 1: relu(1.5) + mean(relu(-2), relu(2)) = 1.5 + 1
    assert hinge.d_losses.tolist() == pytest.approx([0.75, 2.5])
    assert hinge.g_losses.tolist() == [[-0.5, 3.0], [2.0, -1.0]]
    # correct: tuple 0: real>0 yes, g1 0.5<0 no, g2 -2<0 yes -> 2/3; tuple 1: no, yes, no -> 1/3
    assert hinge.correct.tolist() == pytest.approx([2 / 3, 1 / 3])
    assert hinge.chance == 0.5
    bce = binary_losses(s, "bce")
    sp = F.softplus
    expected = sp(-s[0]) + (sp(s[1]) + sp(s[2])) / 2
    torch.testing.assert_close(bce.d_losses, expected)
    torch.testing.assert_close(bce.g_losses, sp(-s[1:]))


def _out(scores):
    return tuple_losses(torch.tensor(scores, dtype=torch.float64))


def test_mean_and_independent_values():
    out = _out([[1.0, 0.0], [0.5, 2.0], [-1.0, 1.0]])
    assert mean(out).generators.item() == pytest.approx(out.g_losses.mean().item())
    assert mean(out).d_weights is None
    assert independent(out).generators.item() == pytest.approx(out.g_losses.sum(0).mean().item())
    assert independent(out).d_weights is None


def test_algorithm1_values():
    # tuple 0: D picks x; tuple 1: D picks G_1; tuple 2: D picks G_2
    scores = [[3.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 3.0]]
    out = _out(scores)
    g = out.g_losses
    objective = algorithm1(out)
    expected = ((g[0, 0] + g[1, 0]) / 2 + g[1, 1] + g[0, 2]) / 3
    assert objective.generators.item() == pytest.approx(expected.item())
    # D learns from the tuples where it picked a fake
    assert objective.d_weights.tolist() == [0.0, 1.0, 1.0]


def test_algorithm1_single_generator_that_wins_gets_nothing():
    out = _out([[0.0, 2.0], [1.0, 0.0]])  # tuple 0: G_1 wins; tuple 1: x picked
    objective = algorithm1(out)
    assert objective.generators.item() == pytest.approx(out.g_losses[0, 1].item() / 2)
