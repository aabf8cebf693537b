"""Building the N generators and the discriminator from a registered architecture."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from ganzoo.parts import Architecture


def add_spectral_norm(module: nn.Module) -> nn.Module:
    """Spectral-normalise the weight of every conv and linear layer (one power iteration per forward)."""
    for name, child in list(module.named_modules()):
        if isinstance(child, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            spectral_norm(child, n_power_iterations=1)
    return module


def build_generators(arch: Architecture, n_gens: int, z_dim: int, channels: int, seed: int) -> nn.ModuleList:
    """N independent generators, generator i initialised from seed (seed, i)."""
    generators = []
    for i in range(n_gens):
        torch.manual_seed(seed * 7919 + 101 * (i + 1))
        generators.append(arch.generator(z_dim, channels))
    return nn.ModuleList(generators)


def build_discriminator(arch: Architecture, channels: int, spectral: bool, seed: int) -> nn.Module:
    torch.manual_seed(seed * 7919)
    discriminator = arch.discriminator(channels)
    return add_spectral_norm(discriminator) if spectral else discriminator
