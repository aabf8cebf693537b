"""MAD-GAN (Ghosh et al. 2018): N generators, one D with an (N+1)-way softmax (real, or made by G_i).

The loss is in policy.py. Each generator minimises its own loss (the ``independent`` aggregation).
"""

from __future__ import annotations

from ganzoo import hookimpl
from ganzoo.core.parts import NamedFactory, Strategy

STRATEGY = Strategy(
    name="madgan",
    summary="MAD-GAN: N generators, D tells real from 'made by G_i' with an (N+1)-way softmax",
    defaults={
        "policy": "madgan",
        "aggregation": "independent",
        "n_gens": 3,
        "shared_z": False,
        "spectral_norm": False,
        "lr": 2e-4,
        "beta1": 0.5,
        "beta2": 0.999,
        "n_dis": 1,
    },
    sources=(
        "(N+1)-way D and G_i's cross-entropy towards the real class: Ghosh et al. 2018; "
        "Adam 2e-4, betas (0.5, 0.999), batch 64: DCGAN (Radford et al. 2016)"
    ),
)


@hookimpl
def ganzoo_register_strategies(register):
    register(STRATEGY)


def build_madgan(config):
    from ganzoo.plugins.madgan.policy import MadganPolicy  # torch: only once a run is built

    return MadganPolicy(config.n_gens)


@hookimpl
def ganzoo_register_input_policies(register):
    register(NamedFactory("madgan", "D classifies each image as real or made by G_i: (N+1)-way softmax", build_madgan))
