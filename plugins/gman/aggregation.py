"""GMAN's weighting (Durugkar et al. 2017) applied to the N generator losses: the ``gman`` aggregation.

    V_i = mean over the batch of generator i's loss
    J   = sum_i w_i V_i,   w = softmax(lambda * V)     (w held constant in the gradient)

lambda = 0 is the plain mean; as lambda grows, J tends to the worst generator's loss (the max).
Usable with any strategy: ``ganzoo train psg --aggregation gman --gman-lambda 2``.
"""

from __future__ import annotations

import torch

from ganzoo.core.parts import Objective, PolicyOutput


def softmax_weights(losses: torch.Tensor, temperature: float, dim: int = 0) -> torch.Tensor:
    """w = softmax(lambda * V) along ``dim``, detached: the weights say how much each loss counts."""
    return torch.softmax(temperature * losses.detach(), dim)


class Gman:
    def __init__(self, temperature: float):
        self.temperature = temperature

    def __call__(self, out: PolicyOutput) -> Objective:
        losses = out.g_losses.mean(1)  # (N,)
        return Objective((softmax_weights(losses, self.temperature) * losses).sum())
