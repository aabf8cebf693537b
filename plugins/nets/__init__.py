"""Built-in architectures: dcgan28 (28x28 MNIST-like) with its lean and wide variants, and cnn32
(the standard CNN of Miyato et al. 2018). The networks are in dcgan28.py and cnn32.py, imported
when a run builds them (they need torch)."""

from __future__ import annotations

from ganzoo import hookimpl
from ganzoo.core.parts import Architecture


def _networks(module: str, **widths):
    """The (generator, discriminator) builders of one of this plugin's modules, importing it when called."""

    def generator(z_dim: int, channels: int):
        from importlib import import_module

        return import_module(f"ganzoo.plugins.nets.{module}").Generator(z_dim, channels, **widths)

    def discriminator(channels: int, outputs: int = 1):
        from importlib import import_module

        return import_module(f"ganzoo.plugins.nets.{module}").Discriminator(channels, outputs=outputs, **widths)

    return generator, discriminator


@hookimpl
def ganzoo_register_architectures(register):
    generator, discriminator = _networks("dcgan28")
    register(Architecture(
        name="dcgan28",
        summary="DCGAN-style 28x28 nets (G: linear + 2 transposed convs, BN, LeakyReLU; D: 2 convs, no BN)",
        image_size=28, generator=generator, discriminator=discriminator,
    ))
    for name, width, what in (("dcgan28-lean", 32, "half"), ("dcgan28-wide", 128, "twice")):
        generator, discriminator = _networks("dcgan28", width=width)
        register(Architecture(
            name=name, summary=f"dcgan28 with {what} the channels in G and D (width {width}; dcgan28 has 64)",
            image_size=28, generator=generator, discriminator=discriminator,
        ))
    generator, discriminator = _networks("cnn32")
    register(Architecture(
        name="cnn32",
        summary="32x32 standard CNN of Miyato et al. 2018, Table 3 (G: 3 deconvs with BN; D: 7 convs)",
        image_size=32, generator=generator, discriminator=discriminator,
    ))
