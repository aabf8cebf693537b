"""GMAN (Durugkar et al. 2017), "Generative Multi-Adversarial Networks", in its two forms:

    gman (strategy, policy)   one generator against K discriminators (--gman-k); its loss a
                              softmax(lambda * V)-weighted mix over the Ds (policy.py)
    gman (aggregation)        the same weighting over N generators' losses, for any strategy:
                              ``ganzoo train psg --aggregation gman`` (aggregation.py)

lambda (--gman-lambda): 0 averages, large values take the worst. The paper learns it (GMAN*) or
sweeps it; ganzoo's default, 1, is one of the paper's settings (GMAN-1).
"""

from __future__ import annotations

from ganzoo import hookimpl
from ganzoo.core.options import number_check, value_of
from ganzoo.core.parts import NamedFactory, Strategy, TrainOption

LAMBDA = TrainOption(
    "--gman-lambda", "gman_lambda",
    "Temperature lambda of GMAN's softmax weighting: 0 averages the losses, large values take the worst.",
    type=float, check=number_check(0.0, 1e6, flag="--gman-lambda"), default=1.0,
)
K = TrainOption("--gman-k", "gman_k", "Discriminators of the gman policy, each a network of the run's --arch.",
                type=int, check=number_check(1, 16, flag="--gman-k", kind=int), default=2)

STRATEGY = Strategy(
    name="gman",
    summary="GMAN: one generator against K discriminators, its loss a softmax(lambda * V) mix over them",
    defaults={"policy": "gman", "aggregation": "mean", "n_gens": 1, "spectral_norm": False, "lr": 2e-4, "beta1": 0.5,
              "beta2": 0.999, "n_dis": 1},
    sources=("K = 2 discriminators and lambda = 1 (GMAN-1), each D trained with the non-saturating loss on its own: "
             "Durugkar et al. 2017; Adam 2e-4, betas (0.5, 0.999), batch 64: DCGAN (Radford et al. 2016), which the "
             "paper's networks follow"),
)


def build_gman(config):
    from ganzoo.plugins.gman.policy import GmanPolicy  # torch: only once a run is built

    return GmanPolicy(int(value_of(config, K)), float(value_of(config, LAMBDA)))


def build_gman_aggregation(config):
    from ganzoo.plugins.gman.aggregation import Gman

    return Gman(float(value_of(config, LAMBDA)))


@hookimpl
def ganzoo_register_strategies(register):
    register(STRATEGY)


@hookimpl
def ganzoo_register_input_policies(register):
    register(NamedFactory("gman", "K binary discriminators; G's loss a softmax(lambda * V)-weighted mix of theirs",
                          build_gman, options=(K, LAMBDA)))


@hookimpl
def ganzoo_register_aggregations(register):
    register(NamedFactory(
        "gman",
        "softmax(lambda * V)-weighted mean of the N generator losses (lambda 0: mean, large: max)",
        build_gman_aggregation,
        options=(LAMBDA,),
    ))
