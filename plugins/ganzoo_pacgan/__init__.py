"""PacGAN (Lin et al. 2018): the DCGAN baseline whose D sees m samples packed on the channel axis.

The packing is the ``pac`` input policy (policy.py); D is built for m * C input channels.
"""

from __future__ import annotations

import click

from ganzoo import hookimpl
from ganzoo.parts import NamedFactory, Strategy, TrainOption
from ganzoo.train_options import number_check

PACK = 2  # PacDCGAN2, the setting of the paper's Table 2

STRATEGY = Strategy(
    name="pacgan",
    summary="PacGAN: one generator, binary BCE D that sees m samples stacked on channels",
    defaults={
        "policy": "pac",
        "aggregation": "mean",
        "loss": "bce",
        "n_gens": 1,
        "spectral_norm": False,
        "lr": 2e-4,
        "beta1": 0.5,
        "beta2": 0.999,
        "n_dis": 1,
        "options": {"pack": PACK},
    },
    sources=(
        "packing degree m = 2 (PacDCGAN2), loss unchanged: Lin et al. 2018; "
        "Adam 2e-4, betas (0.5, 0.999), batch 64: DCGAN (Radford et al. 2016)"
    ),
)

OPTIONS = [
    TrainOption("--pack", "pack", "Samples per D input, stacked on channels (m >= 1; the batch size must be a multiple). [default: 2]",
                type=int, check=number_check(1, 64, flag="--pack", kind=int)),
    click.option("--loss", type=click.Choice(["bce", "hinge"]), default=None, help="D and G loss. [default: bce]"),
    click.option("--spectral-norm/--no-spectral-norm", default=None, help="Spectral-normalise D. [default: off]"),
]


@hookimpl
def ganzoo_register_strategies(register):
    register(STRATEGY)


@hookimpl
def ganzoo_register_input_policies(register):
    from ganzoo_pacgan.policy import PacPolicy

    register(NamedFactory(
        "pac",
        "binary D on packs of m samples stacked on channels (options.pack, default 2)",
        lambda config: PacPolicy(config.loss, int(config.options.get("pack", PACK)), config.batch_size),
    ))


@hookimpl
def ganzoo_register_commands(register):
    from ganzoo.train_command import strategy_command

    register(strategy_command(STRATEGY, OPTIONS), group="train")
