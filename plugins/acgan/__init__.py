"""AC-GAN (Odena, Olah, Shlens 2017, "Conditional Image Synthesis with Auxiliary Classifier GANs"):
class-conditional generators against a D that does not see the class but predicts it.

The loss is in policy.py: D scores real/fake (BCE) and classifies every image with an auxiliary
head of K logits; each generator wants its images called real and of the class it was asked for.
A run of it is always class-conditional (``--conditional``); its D is built with K more logits
(``DiscriminatorSpec(labels="classify")``), so every architecture that gives several logits works.
"""

from __future__ import annotations

from ganzoo import hookimpl
from ganzoo.core.errors import GanzooError
from ganzoo.core.options import number_check, value_of
from ganzoo.core.parts import NamedFactory, Strategy, Supports, TrainOption
from ganzoo.core.search import Search

AC_WEIGHT = TrainOption("--ac-weight", "ac_weight", "Weight of the auxiliary classifier's cross-entropy in D's and G's losses.",
                        type=float, check=number_check(0.0, 1e3, flag="--ac-weight"), default=1.0,
                        search=Search(0.1, 3.0, log=True))

STRATEGY = Strategy(
    name="acgan",
    summary="AC-GAN (Odena et al. 2017): conditional generators, D classifies real/fake and the class (auxiliary head)",
    defaults={
        "policy": "acgan",
        "aggregation": "mean",
        "n_gens": 1,
        "conditional": True,
        "spectral_norm": True,
        "lr": 1e-3,
        "beta1": 0.0,
        "beta2": 0.99,
        "n_dis": 1,
        "options": {"ema": 0.999, "ema_warmup": True},
    },
    sources=(
        "the losses (BCE source loss, cross-entropy class loss on real and generated images in D's loss, on generated "
        "ones in G's, weight 1): Odena et al. 2017; spectral norm, Adam 1e-3 with betas (0, 0.99) and an EMA of G "
        "(0.999, warmed up): ganzoo's sngan recipe (docs/results/recipes), not tuned for AC-GAN"
    ),
)


@hookimpl
def ganzoo_register_strategies(register):
    register(STRATEGY)


def build_acgan(config):
    if not config.conditional:
        raise GanzooError("input policy acgan classifies images by class: it needs --conditional (and a labelled dataset)")
    from ganzoo.plugins.acgan.policy import AuxiliaryClassifierPolicy  # torch: only once a run is built

    return AuxiliaryClassifierPolicy(float(value_of(config, AC_WEIGHT)))


@hookimpl
def ganzoo_register_input_policies(register):
    register(NamedFactory(
        "acgan",
        "D scores real/fake and predicts the class with an auxiliary head (AC-GAN); needs --conditional",
        build_acgan,
        options=(AC_WEIGHT,),
        supports=Supports(conditional=True),
    ))
