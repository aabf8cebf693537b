"""PSG: Parallel Structured Generators (Park, Doh, Yang). N generators, D picks the real one of N + 1.

The loss is in tuple_policy.py; the aggregations (mean, independent, algorithm1) in ganzoo.plugins.aggregations.
``ganzoo train psg --policy binary`` is the paper's other reading: the same N generators against a
binary D (the ganzoo.plugins.binary plugin's policy); docs/psg.md sets the two side by side.
"""

from __future__ import annotations

from ganzoo import hookimpl
from ganzoo.core.options import value_of
from ganzoo.core.parts import NamedFactory, Strategy, Supports
from ganzoo.core.penalties import R1

STRATEGY = Strategy(
    name="psg",
    summary="Parallel Structured Generators: N generators, D picks the real sample out of N+1, mean G loss",
    defaults={
        "policy": "tuple",
        "aggregation": "mean",
        "n_gens": 2,
        "shared_z": True,
        "spectral_norm": False,
        "lr": 1e-3,
        "beta1": 0.0,
        "beta2": 0.99,
        "n_dis": 1,
        "options": {"ema": 0.999, "ema_warmup": True},
    },
    sources=(
        "N = 2, the tuple loss, shared z, mean aggregation: the paper; batch 64, n_dis 1: DCGAN (Radford et al. "
        "2016); Adam 1e-3 with betas (0, 0.99) and an EMA of G (0.999, warmed up): ganzoo's recipe study on MNIST "
        "(docs/results/recipes), the lowest FID at 1 and 2 minutes on 2 CPU cores (the paper gives no optimiser; "
        "0.3 had DCGAN's 2e-4, (0.5, 0.999) and no EMA)"
    ),
)


@hookimpl
def ganzoo_register_strategies(register):
    register(STRATEGY)


def build_tuple(config):
    from ganzoo.plugins.psg.tuple_policy import TuplePolicy  # torch: only once a run is built

    return TuplePolicy(float(value_of(config, R1)))


@hookimpl
def ganzoo_register_input_policies(register):
    register(NamedFactory(
        "tuple",
        "D picks the real sample out of (x, G_1(z), ..., G_N(z)): (N+1)-way softmax",
        build_tuple,
        options=(R1,),
        supports=Supports(provides=frozenset({"tuple-pick"}), double_backward_options=frozenset({R1.key}), conditional=True),
    ))
