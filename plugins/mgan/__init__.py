"""MGAN (Hoang et al. 2018): N generators, D with a binary head and an N-way classifier head.

The loss is in policy.py; the layer sharing (all but each generator's first layer) in sharing.py.
"""

from __future__ import annotations

from ganzoo import hookimpl
from ganzoo.core.options import boolean_check, number_check, value_of
from ganzoo.core.parts import NamedFactory, Strategy, TrainOption

BETA = 0.01  # the paper's default weight of the classifier term in G's loss

STRATEGY = Strategy(
    name="mgan",
    summary="MGAN: N generators, D's binary head plus an N-way classifier head; G adds beta * CE",
    defaults={
        "policy": "mgan",
        "aggregation": "mean",
        "n_gens": 10,
        "shared_z": False,
        "spectral_norm": False,
        "lr": 2e-4,
        "beta1": 0.5,
        "beta2": 0.999,
        "n_dis": 1,
        "options": {"share_layers": True},
    },
    sources=(
        "K = 10 generators, beta 0.01, generators sharing all but the first layer: Hoang et al. 2018; "
        "Adam 2e-4, betas (0.5, 0.999), batch 64: DCGAN (Radford et al. 2016)"
    ),
)

BETA_OPTION = TrainOption("--beta", "mgan_beta", "Weight of the classifier's cross-entropy in G's loss.",
                          type=float, check=number_check(0.0, 1000.0, flag="--beta"), default=BETA)
SHARE = TrainOption("--share-layers", "share_layers", "Generators share every layer but their first (z -> h).",
                    is_flag=True, check=boolean_check("--share-layers"), default=False)


def build_mgan(config):
    from ganzoo.plugins.mgan.policy import MganPolicy  # torch: only once a run is built

    return MganPolicy(config.n_gens, float(value_of(config, BETA_OPTION)))


@hookimpl
def ganzoo_register_strategies(register):
    register(STRATEGY)


@hookimpl
def ganzoo_register_input_policies(register):
    register(NamedFactory(
        "mgan",
        "D's binary head plus an N-way classifier head on fakes; G_i's loss adds beta * CE",
        build_mgan,
        options=(BETA_OPTION, SHARE),
    ))


@hookimpl
def ganzoo_on_models_built(trainer):
    # --share-layers belongs to the mgan policy: it is in config.options only when that policy is in use.
    if value_of(trainer.config, SHARE) and len(trainer.generators) > 1:
        from ganzoo.plugins.mgan.sharing import share_all_but_first_layer

        share_all_but_first_layer(trainer.generators)
