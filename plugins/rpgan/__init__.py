"""R3GAN's loss (Huang et al. 2024, "The GAN is dead; long live the GAN! A Modern GAN Baseline"):
the relativistic pairing GAN (RpGAN) with R1 and R2, a modern baseline for any number of generators.

The loss is in policy.py; the penalties and their options (--r1, --r2) in ganzoo.core.penalties.
Only the loss and the optimiser settings are R3GAN's: the networks are ganzoo's (the dataset's
default), not the paper's ResNet.
"""

from __future__ import annotations

from ganzoo import hookimpl
from ganzoo.core.options import value_of
from ganzoo.core.parts import NamedFactory, Strategy, Supports
from ganzoo.core.penalties import R1, R2

# One gamma for both penalties, as in R3GAN; its value is ganzoo's own (docs/strategies.md).
R1_GAMMA = 10.0
R2_GAMMA = 10.0

STRATEGY = Strategy(
    name="rpgan",
    summary="R3GAN's loss: relativistic pairing D (real vs each fake) with R1 and R2, Adam betas (0, 0.99)",
    defaults={
        "policy": "rpgan",
        "aggregation": "mean",
        "n_gens": 1,
        "spectral_norm": False,
        "lr": 2e-4,
        "beta1": 0.0,
        "beta2": 0.99,
        "n_dis": 1,
        "options": {R1.key: R1_GAMMA, R2.key: R2_GAMMA},
    },
    sources=(
        "RpGAN loss with R1 and R2 of one weight gamma, no spectral norm, n_dis 1, Adam lr 2e-4, beta1 0, "
        "beta2 0.99 (the start of R3GAN's lr schedule and the end of its beta2 schedule): Huang et al. 2024; "
        "gamma 10: ganzoo's own, the best LeNet FID of 0.1, 1 and 10 on MNIST after 600 steps of batch 64, "
        "2 seeds (R3GAN's, for its ResNets, start at 0.05 on CIFAR-10 and 2 on FFHQ-64 and decay tenfold)"
    ),
)


@hookimpl
def ganzoo_register_strategies(register):
    register(STRATEGY)


def build_rpgan(config):
    from ganzoo.plugins.rpgan.policy import PairingPolicy  # torch: only once a run is built

    return PairingPolicy(float(value_of(config, R1)), float(value_of(config, R2)))


@hookimpl
def ganzoo_register_input_policies(register):
    register(NamedFactory(
        "rpgan",
        "D scores the real sample against each fake of its tuple: softplus(s_i - s_x), with R1/R2 (--r1, --r2)",
        build_rpgan,
        options=(R1, R2),
        supports=Supports(double_backward_options=frozenset({R1.key, R2.key}), conditional=True),
    ))
