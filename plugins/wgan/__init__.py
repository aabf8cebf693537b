"""WGAN (Arjovsky et al. 2017) and WGAN-GP (Gulrajani et al. 2017): a critic D trained to score real
images above generated ones, its Lipschitz constraint kept by weight clipping (wgan) or by a gradient
penalty on interpolates (wgan-gp). One policy, ``wasserstein`` (policy.py), with both levers as options.
"""

from __future__ import annotations

from ganzoo import hookimpl
from ganzoo.core.options import number_check, value_of
from ganzoo.core.parts import NamedFactory, Strategy, Supports, TrainOption

CLIP = TrainOption("--clip", "clip", "Clip every critic weight to [-c, c] after each critic step (WGAN); 0: off.",
                   type=float, check=number_check(0.0, 10.0, flag="--clip"), default=0.0)
GP = TrainOption("--gp", "gp", "Weight lambda of the gradient penalty lambda (||grad D(x_hat)|| - 1)^2 on random interpolates "
                               "of real and generated images, in the critic's update (WGAN-GP); 0: off.",
                 type=float, check=number_check(0.0, 1e4, flag="--gp"), default=0.0)

WGAN = Strategy(
    name="wgan",
    summary="WGAN: a critic scores real above fake (Wasserstein loss), its weights clipped; RMSprop, 5 critic steps",
    defaults={"policy": "wasserstein", "aggregation": "mean", "n_gens": 1, "spectral_norm": False, "optimizer": "rmsprop",
              "lr": 5e-5, "n_dis": 5, "options": {CLIP.key: 0.01}},
    sources="RMSprop lr 5e-5, clipping c = 0.01, n_critic 5, batch 64: Arjovsky et al. 2017, Algorithm 1",
)
WGAN_GP = Strategy(
    name="wgan-gp",
    summary="WGAN-GP: a Wasserstein critic with a gradient penalty on interpolates; Adam (0, 0.9), 5 critic steps",
    defaults={"policy": "wasserstein", "aggregation": "mean", "n_gens": 1, "spectral_norm": False, "optimizer": "adam",
              "lr": 1e-4, "beta1": 0.0, "beta2": 0.9, "n_dis": 5, "options": {GP.key: 10.0}},
    sources="lambda 10, n_critic 5, Adam lr 1e-4 with betas (0, 0.9), batch 64: Gulrajani et al. 2017, Algorithm 1",
)


def build_wasserstein(config):
    from ganzoo.plugins.wgan.policy import WassersteinPolicy  # torch: only once a run is built

    return WassersteinPolicy(clip=float(value_of(config, CLIP)), gp=float(value_of(config, GP)))


@hookimpl
def ganzoo_register_strategies(register):
    register(WGAN)
    register(WGAN_GP)


@hookimpl
def ganzoo_register_input_policies(register):
    register(NamedFactory(
        "wasserstein",
        "a critic scores each image; D loss mean_i s_i - s_x, G_i loss -s_i; --clip (WGAN) or --gp (WGAN-GP)",
        build_wasserstein,
        options=(CLIP, GP),
        supports=Supports(double_backward_options=frozenset({GP.key}), conditional=True),
    ))
