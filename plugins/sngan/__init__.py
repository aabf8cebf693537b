"""SNGAN (Miyato et al. 2018): one generator, a spectral-normalised D, the binary policy with hinge loss.

The binary policy is the ``ganzoo.plugins.binary`` plugin's; this plugin is the recipe only.
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
        "lr": 1e-3,
        "beta1": 0.0,
        "beta2": 0.99,
        "n_dis": 1,
        "options": {"loss": "hinge", "ema": 0.999, "ema_warmup": True},
    },
    sources=(
        "hinge loss and spectral norm with one power iteration: Miyato et al. 2018; n_dis 1, batch 64: its "
        "standard-CNN setting; Adam 1e-3 with betas (0, 0.99) and an EMA of G (0.999, warmed up): ganzoo's "
        "recipe study on MNIST (docs/results/recipes), the lowest FID at 1 and 2 minutes on 2 CPU cores "
        "(0.3 had the paper's 2e-4, (0.5, 0.999) and no EMA)"
    ),
)


@hookimpl
def ganzoo_register_strategies(register):
    register(STRATEGY)
