"""PSG: Parallel Structured Generators (Park, Doh, Yang). N generators, D picks the real one of N + 1.

The loss is in tuple_policy.py; the aggregations (mean, independent, algorithm1) in ganzoo.plugins.aggregations.
``ganzoo train psg --policy binary`` is the paper's other reading: the same N generators against a
binary D (the ganzoo.plugins.binary plugin's policy); docs/psg.md sets the two side by side.
"""

from __future__ import annotations

from ganzoo import hookimpl
from ganzoo.core.options import number_check, value_of
from ganzoo.core.parts import NamedFactory, Strategy, Supports, TrainOption
from ganzoo.core.penalties import R1, R2
from ganzoo.core.search import Search

# R1 on the real image and R2 on the fakes of each tuple, one gamma for both as in R3GAN; the value is
# the PSG study's (docs/results/psg-study): 30 was the best of 0.1, 1, 10, 30 and 100 at 2 minutes.
R1_GAMMA = 30.0
R2_GAMMA = 30.0

TEMPERATURE = TrainOption(
    "--temperature", "temperature", "Temperature T of the tuple policy's softmax over a tuple's N + 1 scores, "
    "p = softmax(s / T); 1: the plain softmax.", type=float, check=number_check(1e-3, 1e3, flag="--temperature"),
    default=1.0, search=Search(0.25, 4.0, log=True))

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
        "options": {"ema": 0.999, "ema_warmup": True, R1.key: R1_GAMMA, R2.key: R2_GAMMA},
    },
    sources=(
        "N = 2, the tuple loss, shared z, mean aggregation: the paper; batch 64, n_dis 1: DCGAN (Radford et al. "
        "2016); Adam 1e-3 with betas (0, 0.99) and an EMA of G (0.999, warmed up): ganzoo's recipe study on MNIST "
        "(docs/results/recipes), the lowest FID at 1 and 2 minutes on 2 CPU cores (the paper gives no optimiser; "
        "0.3 had DCGAN's 2e-4, (0.5, 0.999) and no EMA); R1 and R2 of gamma 30 on D (0.6 had none: --r1 0 --r2 0): "
        "ganzoo's PSG study (docs/results/psg-study), the best of gamma 0.1 to 100 and of the other levers tried; "
        "LeNet FID 66 against 124 after 2 minutes on 2 CPU cores (3 seeds). The binary reading (--policy binary) "
        "keeps 0.6's recipe: R1 30 made it worse"
    ),
)


@hookimpl
def ganzoo_register_strategies(register):
    register(STRATEGY)


def build_tuple(config):
    from ganzoo.plugins.psg.tuple_policy import TuplePolicy  # torch: only once a run is built

    return TuplePolicy(float(value_of(config, R1)), float(value_of(config, R2)), float(value_of(config, TEMPERATURE)))


@hookimpl
def ganzoo_register_input_policies(register):
    register(NamedFactory(
        "tuple",
        "D picks the real sample out of (x, G_1(z), ..., G_N(z)): (N+1)-way softmax, with R1/R2 (--r1, --r2)",
        build_tuple,
        options=(R1, R2, TEMPERATURE),
        supports=Supports(provides=frozenset({"tuple-pick"}), double_backward_options=frozenset({R1.key, R2.key}),
                          conditional=True),
    ))
