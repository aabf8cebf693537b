"""The binary input policies, shared by every strategy that uses them (sngan, dcgan, pacgan, and
``--policy binary`` for any other): D scores each sample real or fake on its own.

    binary   D sees every image on its own; loss hinge or bce (--loss), R1 on real images (--r1)
    pac      the same on packs of m images stacked on channels (PacGAN, --pack m)

A strategy names these by registry name ("binary", "pac"); no plugin imports this one.
"""

from __future__ import annotations

import click

from ganzoo import hookimpl
from ganzoo.core.options import choice_check, number_check
from ganzoo.core.parts import NamedFactory, Supports, TrainOption
from ganzoo.core.penalties import R1

LOSSES = ("hinge", "bce")
DEFAULT_LOSS = "bce"
PACK = 2  # PacDCGAN2, the setting of PacGAN's Table 2

LOSS = TrainOption("--loss", "loss", f"D and G loss of a binary D: hinge or bce (non-saturating G). [default: {DEFAULT_LOSS}]",
                   type=click.Choice(LOSSES), check=choice_check("--loss", LOSSES), default=DEFAULT_LOSS)
PACK_OPTION = TrainOption("--pack", "pack", f"Samples per D input, stacked on channels (m >= 1; the batch size must be a multiple). [default: {PACK}]",
                          type=int, check=number_check(1, 64, flag="--pack", kind=int), default=PACK)


def loss_of(config) -> str:
    return str(config.options.get("loss", DEFAULT_LOSS))


@hookimpl
def ganzoo_register_input_policies(register):
    from ganzoo_binary.binary_policy import BinaryPolicy
    from ganzoo_binary.pac_policy import PacPolicy

    register(NamedFactory(
        "binary",
        "D scores each sample real or fake on its own; D loss: real term + mean of the N fake terms",
        lambda config: BinaryPolicy(loss_of(config), float(config.options.get(R1.key, 0.0))),
        options=(LOSS, R1),
        supports=Supports(double_backward_options=frozenset({R1.key})),
    ))
    register(NamedFactory(
        "pac",
        "binary D on packs of m samples stacked on channels (--pack, default 2)",
        lambda config: PacPolicy(loss_of(config), int(config.options.get("pack", PACK)), config.batch_size),
        options=(LOSS, PACK_OPTION),
        supports=Supports(packs_images=True),
    ))
