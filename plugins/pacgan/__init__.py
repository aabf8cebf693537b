"""PacGAN (Lin et al. 2018): the DCGAN baseline whose D sees m samples packed on the channel axis.

The packing is the ``pac`` input policy of the ``ganzoo.plugins.binary`` plugin; this plugin is the recipe.
"""

from __future__ import annotations

from ganzoo import hookimpl
from ganzoo.core.parts import Strategy

STRATEGY = Strategy(
    name="pacgan",
    summary="PacGAN: one generator, binary BCE D that sees m samples stacked on channels",
    defaults={
        "policy": "pac",
        "aggregation": "mean",
        "n_gens": 1,
        "spectral_norm": False,
        "lr": 2e-4,
        "beta1": 0.5,
        "beta2": 0.999,
        "n_dis": 1,
        "options": {"loss": "bce", "pack": 2},
    },
    sources=(
        "packing degree m = 2 (PacDCGAN2), loss unchanged: Lin et al. 2018; "
        "Adam 2e-4, betas (0.5, 0.999), batch 64: DCGAN (Radford et al. 2016)"
    ),
)


@hookimpl
def ganzoo_register_strategies(register):
    register(STRATEGY)
