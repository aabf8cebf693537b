"""Built-in architectures: dcgan28 (28x28 MNIST-like) with its lean, wide and wide-D variants,
cnn32 (the standard CNN of Miyato et al. 2018), resnet32/48/64/128 (the SNGAN ResNets of Miyato et
al. 2018) and dcgan64 (Radford et al. 2016), each class-conditional on request (conditional batch
norm in G, a projection D: conditional.py). The networks are in dcgan28.py, cnn32.py, resnet.py and
dcgan64.py, imported when a run builds them (they need torch)."""

from __future__ import annotations

from ganzoo import hookimpl
from ganzoo.core.parts import Architecture


def _networks(module: str, **widths):
    """The (generator, discriminator) builders of one of this plugin's modules, importing it when called."""

    def generator(z_dim: int, channels: int, classes: int = 0):
        from importlib import import_module

        return import_module(f"ganzoo.plugins.nets.{module}").Generator(z_dim, channels, classes=classes, **widths)

    def discriminator(channels: int, outputs: int = 1, classes: int = 0):
        from importlib import import_module

        return import_module(f"ganzoo.plugins.nets.{module}").Discriminator(channels, outputs=outputs, classes=classes, **widths)

    return generator, discriminator


RESNETS = {
    32: "32x32 SNGAN ResNet (Miyato et al. 2018, CIFAR-10; Mimicry's sngan_32): G 3 up-blocks of 256, D 4 blocks of 128",
    48: "48x48 SNGAN ResNet (Miyato et al. 2018, STL-10; Mimicry's sngan_48): G 512 at 6x6, 3 up-blocks to 64; D 64-1024",
    64: "64x64 SNGAN ResNet (Mimicry's sngan_64: the 128 px nets less a block): G 4 up-blocks 1024-64; D 64-1024",
    128: "128x128 SNGAN ResNet (Miyato et al. 2018, ImageNet; Mimicry's sngan_128): G 5 up-blocks 1024-64; D 64-1024",
}


@hookimpl
def ganzoo_register_architectures(register):
    generator, discriminator = _networks("dcgan28")
    register(Architecture(
        name="dcgan28",
        summary="DCGAN-style 28x28 nets (G: linear + 2 transposed convs, BN, LeakyReLU; D: 2 convs, no BN)",
        image_size=28, generator=generator, discriminator=discriminator, conditional=True,
    ))
    for name, width, what in (("dcgan28-lean", 32, "half"), ("dcgan28-wide", 128, "twice")):
        generator, discriminator = _networks("dcgan28", width=width)
        register(Architecture(
            name=name, summary=f"dcgan28 with {what} the channels in G and D (width {width}; dcgan28 has 64)",
            image_size=28, generator=generator, discriminator=discriminator, conditional=True,
        ))
    register(Architecture(
        name="dcgan28-wide-d", summary="dcgan28's G (width 64) against dcgan28-wide's D (width 128): a stronger D",
        image_size=28, generator=_networks("dcgan28")[0], discriminator=_networks("dcgan28", width=128)[1],
        conditional=True,
    ))
    generator, discriminator = _networks("cnn32")
    register(Architecture(
        name="cnn32",
        summary="32x32 standard CNN of Miyato et al. 2018, Table 3 (G: 3 deconvs with BN; D: 7 convs)",
        image_size=32, generator=generator, discriminator=discriminator, conditional=True,
    ))
    for size, summary in RESNETS.items():
        generator, discriminator = _networks("resnet", size=size)
        register(Architecture(name=f"resnet{size}", summary=summary, image_size=size,
                              generator=generator, discriminator=discriminator, conditional=True))
    generator, discriminator = _networks("dcgan64")
    register(Architecture(
        name="dcgan64",
        summary="64x64 DCGAN of Radford et al. 2016 (G: 4 transposed convs 512-64, BN, ReLU; D: 4 convs 64-512, LeakyReLU, BN on the last 3)",
        image_size=64, generator=generator, discriminator=discriminator, conditional=True,
    ))
