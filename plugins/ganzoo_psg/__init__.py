"""PSG: Parallel Structured Generators (Park, Doh, Yang). N generators, D picks the real one of N + 1.

The loss is in tuple_policy.py; the aggregations (mean, independent, algorithm1) in ganzoo_aggregations.
"""

from __future__ import annotations

import click

from ganzoo import hookimpl
from ganzoo.parts import NamedFactory, Strategy

STRATEGY = Strategy(
    name="psg",
    summary="Parallel Structured Generators: N generators, D picks the real sample out of N+1, mean G loss",
    defaults={
        "policy": "tuple",
        "aggregation": "mean",
        "n_gens": 2,
        "shared_z": True,
        "spectral_norm": False,
        "lr": 2e-4,
        "beta1": 0.5,
        "beta2": 0.999,
        "n_dis": 1,
    },
    sources="Adam 2e-4, betas (0.5, 0.999), batch 64: DCGAN (Radford et al. 2016); the paper gives none",
)

OPTIONS = [
    click.option("--n-gens", type=int, default=None, help="Number of generators N (>= 1). [default: 2]"),
    click.option(
        "--aggregation",
        default=None,
        help="How the N generator losses become the update: mean, independent, algorithm1, gman. [default: mean]",
    ),
    click.option(
        "--shared-z/--no-shared-z",
        default=None,
        help="Feed every generator the same z (the paper's Fig. 2). [default: shared]",
    ),
    click.option(
        "--spectral-norm/--no-spectral-norm",
        default=None,
        help="Spectral-normalise D (ablation). [default: off]",
    ),
]


@hookimpl
def ganzoo_register_strategies(register):
    register(STRATEGY)


@hookimpl
def ganzoo_register_input_policies(register):
    from ganzoo_psg.tuple_policy import TuplePolicy

    register(
        NamedFactory("tuple", "D picks the real sample out of (x, G_1(z), ..., G_N(z)): (N+1)-way softmax", lambda config: TuplePolicy())
    )


@hookimpl
def ganzoo_register_commands(register):
    from ganzoo.train_command import strategy_command

    register(strategy_command(STRATEGY, OPTIONS), group="train")
