"""SNGAN (Miyato et al. 2018): one generator, a spectral-normalised D, the binary policy with hinge loss.

The binary policy is the ``ganzoo_binary`` plugin's; this plugin is the recipe only.
"""

from __future__ import annotations

from ganzoo import hookimpl
from ganzoo.core.parts import Strategy

STRATEGY = Strategy(
    name="sngan",
    summary="Spectral-normalised D (Miyato et al. 2018), one generator, binary D with hinge loss",
    defaults={
        "policy": "binary",
        "aggregation": "mean",
        "n_gens": 1,
        "spectral_norm": True,
        "lr": 2e-4,
        "beta1": 0.5,
        "beta2": 0.999,
        "n_dis": 1,
        "options": {"loss": "hinge"},
    },
    sources=(
        "hinge loss and spectral norm with one power iteration: Miyato et al. 2018; "
        "Adam 2e-4, betas (0.5, 0.999), n_dis 1, batch 64: the paper's DCGAN-style setting for the standard CNN"
    ),
)


@hookimpl
def ganzoo_register_strategies(register):
    register(STRATEGY)
