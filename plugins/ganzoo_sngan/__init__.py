"""SNGAN (Miyato et al. 2018): one generator, a spectral-normalised D, the binary policy with hinge loss."""

from __future__ import annotations

import click

from ganzoo import hookimpl
from ganzoo.parts import NamedFactory, Strategy

STRATEGY = Strategy(
    name="sngan",
    summary="Spectral-normalised D (Miyato et al. 2018), one generator, binary D with hinge loss",
    defaults={
        "policy": "binary",
        "aggregation": "mean",
        "loss": "hinge",
        "n_gens": 1,
        "spectral_norm": True,
        "lr": 2e-4,
        "beta1": 0.5,
        "beta2": 0.999,
        "n_dis": 1,
    },
    sources=(
        "hinge loss and spectral norm with one power iteration: Miyato et al. 2018; "
        "Adam 2e-4, betas (0.5, 0.999), n_dis 1, batch 64: the paper's DCGAN-style setting for the standard CNN"
    ),
)

OPTIONS = [
    click.option("--loss", type=click.Choice(["hinge", "bce"]), default=None, help="D and G loss. [default: hinge]"),
]


@hookimpl
def ganzoo_register_strategies(register):
    register(STRATEGY)


@hookimpl
def ganzoo_register_input_policies(register):
    from ganzoo_sngan.binary_policy import BinaryPolicy

    register(
        NamedFactory(
            "binary",
            "D scores each sample real or fake on its own (loss: hinge or bce)",
            lambda config: BinaryPolicy(config.loss),
        )
    )


@hookimpl
def ganzoo_register_commands(register):
    from ganzoo.train_command import strategy_command

    register(strategy_command(STRATEGY, OPTIONS), group="train")
