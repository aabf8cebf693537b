"""D2GAN (Nguyen et al. 2017, "Dual Discriminator Generative Adversarial Nets"): two discriminators,
D1 rewarding real data (the KL side) and D2 rewarding generated data (the reverse-KL side), each a
network of the run's architecture with an optimizer of its own. The loss is in policy.py.
"""

from __future__ import annotations

from ganzoo import hookimpl
from ganzoo.core.options import number_check, value_of
from ganzoo.core.parts import NamedFactory, Strategy, TrainOption

ALPHA = TrainOption("--d2gan-alpha", "d2gan_alpha", "Weight alpha of D1's log term on real data (the KL side).",
                    type=float, check=number_check(0.0, 100.0, low_open=True, flag="--d2gan-alpha"), default=0.2)
BETA = TrainOption("--d2gan-beta", "d2gan_beta", "Weight beta of D2's log term on generated data (the reverse-KL side).",
                   type=float, check=number_check(0.0, 100.0, low_open=True, flag="--d2gan-beta"), default=0.1)

STRATEGY = Strategy(
    name="d2gan",
    summary="D2GAN: two discriminators, one rewarding real data (KL), one rewarding fakes (reverse KL)",
    defaults={"policy": "d2gan", "aggregation": "mean", "n_gens": 1, "spectral_norm": False, "lr": 2e-4, "beta1": 0.5,
              "beta2": 0.999, "n_dis": 1},
    sources=("two discriminators with softplus outputs, alpha 0.2 and beta 0.1: Nguyen et al. 2017 (their image "
             "experiments; their 2-D demo code uses 1 and 1); Adam 2e-4, beta1 0.5, batch 64: DCGAN (Radford et al. 2016), "
             "as in that paper's code"),
)


def build_d2gan(config):
    from ganzoo.plugins.d2gan.policy import D2ganPolicy  # torch: only once a run is built

    return D2ganPolicy(float(value_of(config, ALPHA)), float(value_of(config, BETA)))


@hookimpl
def ganzoo_register_strategies(register):
    register(STRATEGY)


@hookimpl
def ganzoo_register_input_policies(register):
    register(NamedFactory(
        "d2gan",
        "two discriminators d1 (rewards real: -alpha log D1(x) + D1(G)) and d2 (rewards fakes: D2(x) - beta log D2(G))",
        build_d2gan,
        options=(ALPHA, BETA),
    ))
