"""GMAN-style aggregation (Durugkar et al. 2017), applied to the N generator losses.

    V_i = mean over the batch of generator i's loss
    J   = sum_i w_i V_i,   w = softmax(lambda * V)     (w held constant in the gradient)

lambda = 0 is the plain mean; as lambda grows, J tends to the worst generator's loss (the max).
Usable with any strategy: ``ganzoo train psg --aggregation gman --gman-lambda 2``.
"""

from __future__ import annotations

import torch

from ganzoo import hookimpl
from ganzoo.core.options import number_check
from ganzoo.core.parts import NamedFactory, Objective, PolicyOutput, TrainOption

LAMBDA = 1.0  # the paper learns lambda (GMAN*) or sweeps it; ganzoo's default is the middle of the road


def softmax_weights(losses: torch.Tensor, temperature: float) -> torch.Tensor:
    """w = softmax(lambda * V) over the generators, detached: the weights say how much each loss counts."""
    return torch.softmax(temperature * losses.detach(), 0)


class Gman:
    def __init__(self, temperature: float):
        self.temperature = temperature

    def __call__(self, out: PolicyOutput) -> Objective:
        losses = out.g_losses.mean(1)  # (N,)
        return Objective((softmax_weights(losses, self.temperature) * losses).sum())


LAMBDA_OPTION = TrainOption(
    "--gman-lambda", "gman_lambda",
    "Temperature lambda of --aggregation gman: 0 averages the generator losses, large values take the worst. [default: 1]",
    type=float, check=number_check(0.0, 1e6, flag="--gman-lambda"),
)


@hookimpl
def ganzoo_register_aggregations(register):
    register(NamedFactory(
        "gman",
        "softmax(lambda * V)-weighted mean of the N generator losses (lambda 0: mean, large: max)",
        lambda config: Gman(float(config.options.get("gman_lambda", LAMBDA))),
        options=(LAMBDA_OPTION,),
    ))
