"""Built-in architectures: dcgan28 (28x28 MNIST-like) with its lean and wide variants, and cnn32
(the standard CNN of Miyato et al. 2018)."""

from __future__ import annotations

from functools import partial

from ganzoo import hookimpl
from ganzoo.core.parts import Architecture


@hookimpl
def ganzoo_register_architectures(register):
    from ganzoo_nets import cnn32, dcgan28

    register(
        Architecture(
            name="dcgan28",
            summary="DCGAN-style 28x28 nets (G: linear + 2 transposed convs, BN, LeakyReLU; D: 2 convs, no BN)",
            image_size=28,
            generator=dcgan28.Generator,
            discriminator=dcgan28.Discriminator,
        )
    )
    for name, width, what in (("dcgan28-lean", 32, "half"), ("dcgan28-wide", 128, "twice")):
        register(
            Architecture(
                name=name,
                summary=f"dcgan28 with {what} the channels in G and D (width {width}; dcgan28 has 64)",
                image_size=28,
                generator=partial(dcgan28.Generator, width=width),
                discriminator=partial(dcgan28.Discriminator, width=width),
            )
        )
    register(
        Architecture(
            name="cnn32",
            summary="32x32 standard CNN of Miyato et al. 2018, Table 3 (G: 3 deconvs with BN; D: 7 convs)",
            image_size=32,
            generator=cnn32.Generator,
            discriminator=cnn32.Discriminator,
        )
    )
