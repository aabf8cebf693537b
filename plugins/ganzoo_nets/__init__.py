"""Built-in architectures: dcgan28 (28x28 MNIST-like) and cnn32 (the standard CNN of Miyato et al. 2018)."""

from __future__ import annotations

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
    register(
        Architecture(
            name="cnn32",
            summary="32x32 standard CNN of Miyato et al. 2018, Table 3 (G: 3 deconvs with BN; D: 7 convs)",
            image_size=32,
            generator=cnn32.Generator,
            discriminator=cnn32.Discriminator,
        )
    )
