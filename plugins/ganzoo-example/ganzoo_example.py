"""An example ganzoo plugin: the least-squares GAN (Mao et al. 2017) as a new strategy.

It uses only the public plugin API (0.5): ``ganzoo.hookimpl`` and the part types in
``ganzoo.core.parts``; the core makes ``ganzoo train lsgan`` from the registered strategy, and
the ``--coding`` option belongs to the policy that reads it. It imports torch only where it
computes, so that ``ganzoo --help`` and ``ganzoo list`` stay quick with it installed. For a batch of tuples (x, G_1(z), ..., G_N(z)) with
D's scores s (one per image, row 0 the real one), with targets a (fake), b (real), c (G's wish):
    D loss    = 1/2 (s_x - b)^2 + 1/2 mean_i (s_i - a)^2
    G_i loss  = 1/2 (s_i - c)^2
The paper's 0-1 coding (a, b, c) = (0, 1, 1) is the default; (-1, 1, 0) is its other choice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ganzoo import hookimpl
from ganzoo.core.errors import GanzooError
from ganzoo.core.options import value_of
from ganzoo.core.parts import NamedFactory, PolicyOutput, Strategy, TrainOption

if TYPE_CHECKING:
    from torch import Tensor, nn

GANZOO_PLUGIN_API = "0.5"  # the plugin API this plugin needs: an older ganzoo reports it instead of failing later

CODINGS = {"01": (0.0, 1.0, 1.0), "symmetric": (-1.0, 1.0, 0.0)}  # (a, b, c)


def least_squares_losses(scores: Tensor, coding: str = "01") -> PolicyOutput:
    """The LSGAN losses from D's scores, shape (N + 1, B), row 0 the real images."""
    a, b, c = CODINGS[coding]
    real, fake = scores[0], scores[1:]
    d_losses = 0.5 * (real - b) ** 2 + 0.5 * ((fake - a) ** 2).mean(0)
    g_losses = 0.5 * (fake - c) ** 2  # each G_i's loss depends on its own sample only
    middle = (a + b) / 2  # D "says real" above the midpoint of its two targets
    correct = ((real > middle).float() + (fake < middle).float().sum(0)) / scores.shape[0]
    return PolicyOutput(d_losses, g_losses, g_losses, scores.argmax(0), correct, 0.5)


class LeastSquaresPolicy:
    """Runs D once on the concatenated (N + 1) x B batch; each image is scored on its own."""

    def __init__(self, coding: str):
        if coding not in CODINGS:
            raise GanzooError(f"unknown LSGAN coding {coding!r} (known: {', '.join(CODINGS)})")
        self.coding = coding

    def __call__(self, discriminator: nn.Module, real: Tensor, fakes: list[Tensor], phase: str) -> PolicyOutput:
        import torch

        scores = discriminator(torch.cat([real, *fakes])).view(len(fakes) + 1, real.shape[0])
        return least_squares_losses(scores, self.coding)


def check_coding(value: object) -> str:
    if value not in CODINGS:
        raise GanzooError(f"--coding must be one of {', '.join(CODINGS)}, got {value!r}")
    return str(value)


STRATEGY = Strategy(
    name="lsgan",
    summary="Least-squares GAN: D regresses real to 1 and fake to 0, G pulls its scores to 1",
    defaults={"policy": "least-squares", "aggregation": "mean", "n_gens": 1, "lr": 2e-4, "beta1": 0.5, "beta2": 0.999},
    sources="0-1 coding and Adam 2e-4, beta1 0.5: Mao et al. 2017",
)

CODING = TrainOption("--coding", "lsgan_coding", "Targets (a, b, c): 01 = (0, 1, 1) or symmetric = (-1, 1, 0).",
                     type=click.Choice(sorted(CODINGS)), check=check_coding, default="01")


@hookimpl
def ganzoo_register_strategies(register):
    register(STRATEGY)


@hookimpl
def ganzoo_register_input_policies(register):
    register(NamedFactory(
        "least-squares",
        "D scores each image on its own; squared distance to the real and fake targets",
        lambda config: LeastSquaresPolicy(value_of(config, CODING)),
        options=(CODING,),
    ))
