"""DCGAN (Radford et al. 2016): the plain baseline. One generator, unpaired BCE (non-saturating G loss), no spectral norm."""

from __future__ import annotations

from ganzoo import hookimpl
from ganzoo.core.parts import Strategy

STRATEGY = Strategy(
    name="dcgan",
    summary="Plain non-saturating GAN baseline: one generator, binary D with BCE, no spectral norm",
    defaults={
        "policy": "binary",
        "aggregation": "mean",
        "n_gens": 1,
        "spectral_norm": False,
        "lr": 2e-4,
        "beta1": 0.5,
        "beta2": 0.999,
        "n_dis": 1,
        "options": {"loss": "bce"},
    },
    sources="Adam 2e-4, betas (0.5, 0.999), batch 64, BCE with the non-saturating G loss: Radford et al. 2016",
)


@hookimpl
def ganzoo_register_strategies(register):
    register(STRATEGY)
