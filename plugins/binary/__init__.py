"""The binary input policies, shared by every strategy that uses them (sngan, dcgan, pacgan, and
``--policy binary`` for any other): D scores each sample real or fake on its own.

    binary   D sees every image on its own; loss hinge or bce (--loss), R1 on real images (--r1)
    pac      the same on packs of m images stacked on channels (PacGAN, --pack m)

A strategy names these by registry name ("binary", "pac"); no plugin imports this one.
"""

from __future__ import annotations

import click

from ganzoo import hookimpl
from ganzoo.core.options import choice_check, number_check, value_of
from ganzoo.core.parts import NamedFactory, Supports, TrainOption
from ganzoo.core.penalties import R1
from ganzoo.core.search import Search

LOSSES = ("hinge", "bce")
DEFAULT_LOSS = "bce"
PACK = 2  # PacDCGAN2, the setting of PacGAN's Table 2

LOSS = TrainOption("--loss", "loss", "D and G loss of a binary D: hinge or bce (non-saturating G).",
                   type=click.Choice(LOSSES), check=choice_check("--loss", LOSSES), default=DEFAULT_LOSS,
                   search=Search(choices=LOSSES))
PACK_OPTION = TrainOption("--pack", "pack", "Samples per D input, stacked on channels (m >= 1; the batch size must be a multiple).",
                          type=int, check=number_check(1, 64, flag="--pack", kind=int), default=PACK)


def build_binary(config):
    from ganzoo.plugins.binary.binary_policy import BinaryPolicy  # torch: only once a run is built

    return BinaryPolicy(str(value_of(config, LOSS)), float(value_of(config, R1)))


def build_pac(config):
    from ganzoo.plugins.binary.pac_policy import PacPolicy

    return PacPolicy(str(value_of(config, LOSS)), int(value_of(config, PACK_OPTION)), config.batch_size)


@hookimpl
def ganzoo_register_input_policies(register):
    register(NamedFactory(
        "binary",
        "D scores each sample real or fake on its own; D loss: real term + mean of the N fake terms",
        build_binary,
        options=(LOSS, R1),
        supports=Supports(double_backward_options=frozenset({R1.key}), conditional=True),
    ))
    register(NamedFactory(
        "pac",
        "binary D on packs of m samples stacked on channels (--pack)",
        build_pac,
        options=(LOSS, PACK_OPTION),
        supports=Supports(packs_images=True),
    ))
