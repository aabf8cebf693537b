"""PSG: Parallel Structured Generators (Park, Doh, Yang). N generators, D picks the real one of N + 1.

The loss is in tuple_policy.py; the aggregations (mean, independent, algorithm1) in ganzoo_aggregations.
``ganzoo train psg --policy binary`` is the paper's other reading: the same N generators against a
binary D (the ganzoo_binary plugin's policy); docs/psg.md sets the two side by side.
"""

from __future__ import annotations

from ganzoo import hookimpl
from ganzoo.core.parts import NamedFactory, Strategy, Supports

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


@hookimpl
def ganzoo_register_strategies(register):
    register(STRATEGY)


@hookimpl
def ganzoo_register_input_policies(register):
    from ganzoo_psg.tuple_policy import TuplePolicy

    register(NamedFactory(
        "tuple",
        "D picks the real sample out of (x, G_1(z), ..., G_N(z)): (N+1)-way softmax",
        lambda config: TuplePolicy(),
        supports=Supports(provides=frozenset({"tuple-pick"})),
    ))
