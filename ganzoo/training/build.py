"""Building a run from its config, before the first step: the training images, the discriminators
the input policy asks for, and every network's optimizer."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganzoo.core.config import TrainConfig
from ganzoo.core.data import default_root, load_data
from ganzoo.core.errors import DataError, GanzooError
from ganzoo.core.parts import Architecture, DiscriminatorSpec
from ganzoo.core.registry import Registry
from ganzoo.runs.models import build_discriminator, distinct_parameters
from ganzoo.training.distributed import World
from ganzoo.training.optimizers import discriminator_settings, generator_settings, make_optimizer

D_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


def discriminator_specs(policy: Any) -> tuple[DiscriminatorSpec, ...]:
    """The discriminators an input policy asks for: its ``discriminators``, or one D of its
    ``d_outputs`` and ``d_packing`` (plugin API 0.4)."""
    specs = getattr(policy, "discriminators", None)
    if specs is None:
        specs = (DiscriminatorSpec(outputs=int(getattr(policy, "d_outputs", 1)), packing=int(getattr(policy, "d_packing", 1))),)
    specs = tuple(specs)
    names = [getattr(s, "name", None) for s in specs]
    if not specs or not all(isinstance(s, DiscriminatorSpec) for s in specs):
        raise GanzooError("the input policy's discriminators must be a non-empty sequence of DiscriminatorSpec")
    if len(set(names)) != len(names) or not all(isinstance(n, str) and D_NAME.match(n) for n in names):
        raise GanzooError(f"the input policy's discriminators need distinct names of 1-32 lowercase letters, digits or _; got {names}")
    for spec in specs:
        if spec.outputs < 1 or spec.packing < 1:
            raise GanzooError(f"the input policy asks for a D with packing {spec.packing} and {spec.outputs} outputs; both must be at least 1")
    return specs


def training_images(registry: Registry, config: TrainConfig, arch: Architecture, world: World) -> tuple[torch.Tensor, str]:
    """This rank's share of the training split (uint8, on the CPU) and where it came from."""
    data = load_data(registry, config.dataset, Path(config.data_root) if config.data_root else default_root())
    images = data.images[: config.limit_data] if config.limit_data else data.images
    images = images[world.rank :: world.size]  # this rank's shard (all of it in a plain run)
    if tuple(images.shape[2:]) != (arch.image_size, arch.image_size):
        raise DataError(
            f"architecture {arch.name!r} makes {arch.image_size}x{arch.image_size} images, "
            f"but {config.dataset!r} has {images.shape[2]}x{images.shape[3]}; choose another --arch"
        )
    return images, data.source


def build_discriminators(registry: Registry, config: TrainConfig, specs: tuple[DiscriminatorSpec, ...], arch: Architecture,
                         channels: int) -> nn.ModuleDict:
    """One network per spec, each from its architecture (the run's by default), D k seeded from (seed, k)."""
    built = nn.ModuleDict()
    for k, spec in enumerate(specs):
        own = registry.get("architecture", spec.architecture) if spec.architecture else arch
        if own.image_size != arch.image_size:
            raise GanzooError(f"discriminator {spec.name!r} uses architecture {own.name!r} for {own.image_size}x{own.image_size} "
                              f"images; this run's are {arch.image_size}x{arch.image_size}")
        spectral = config.spectral_norm if spec.spectral_norm is None else spec.spectral_norm
        built[spec.name] = build_discriminator(own, channels * spec.packing, spectral, config.seed + 104_729 * k, spec.outputs)
    return built


def build_optimizers(config: TrainConfig, generators: nn.ModuleList, discriminators: nn.ModuleDict,
                     specs: tuple[DiscriminatorSpec, ...]) -> tuple[list[torch.optim.Optimizer], dict[str, torch.optim.Optimizer], list[float], dict[str, float]]:
    """An optimizer per generator (over the parameters no earlier generator holds) and per
    discriminator, and their base learning rates."""
    g_settings = generator_settings(config)
    g_optimizers = [make_optimizer(params, g_settings) for params in distinct_parameters(generators)]
    d_optimizers, d_lrs = {}, {}
    for spec in specs:
        settings = discriminator_settings(config, spec)
        d_optimizers[spec.name] = make_optimizer(list(discriminators[spec.name].parameters()), settings)
        d_lrs[spec.name] = settings.lr
    return g_optimizers, d_optimizers, [g_settings.lr] * len(g_optimizers), d_lrs
