"""Building the N generators and the discriminator from a registered architecture."""

from __future__ import annotations

import inspect
from collections.abc import Iterable

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from ganzoo.core.errors import CheckpointError, GanzooError
from ganzoo.core.parts import Architecture
from ganzoo.core.safe_read import check_memory
from ganzoo.runs.checkpoint import module_fits


def add_spectral_norm(module: nn.Module) -> nn.Module:
    """Spectral-normalise the weight of every conv, linear and embedding layer (a projection D's
    class embedding, as in Miyato & Koyama 2018), one power iteration per forward."""
    for child in list(module.modules()):
        if isinstance(child, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)):
            spectral_norm(child, n_power_iterations=1)
    return module


MAX_CLASSES = 1 << 16  # classes of a conditional run: far above any labelled dataset
TRAINING_COPIES = 4  # weights, gradients and Adam's two moments


def check_model_memory(build, count: int, what: str, copies: int, hint: str) -> None:
    """Refuse, before allocating, models whose weights (times ``copies``) do not fit in memory:
    one is built on the meta device (no memory, no compute) to count its bytes."""
    try:
        with torch.device("meta"):
            model = build()
    except Exception:  # an architecture that cannot be built without data: building it for real will tell
        return
    per_model = sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))
    check_memory(per_model * count * copies, what, hint=hint)


def check_conditional(arch: Architecture, classes: int) -> None:
    """Refuse, in one line, a class-conditional run (``classes`` > 0) on an architecture that cannot condition."""
    if classes and not arch.conditional:
        raise GanzooError(f"architecture {arch.name!r} cannot condition on classes (--conditional); "
                          f"ganzoo list shows the architectures that can")


def make_generator(arch: Architecture, z_dim: int, channels: int, classes: int = 0) -> nn.Module:
    """One of arch's generators; class-conditional (``G(z, y)``) when ``classes`` > 0."""
    check_conditional(arch, classes)
    return arch.generator(z_dim, channels, classes=classes) if classes else arch.generator(z_dim, channels)


def build_generators(arch: Architecture, n_gens: int, z_dim: int, channels: int, seed: int,
                     copies: int = TRAINING_COPIES, classes: int = 0) -> nn.ModuleList:
    """N independent generators, generator i initialised from seed (seed, i); conditioned on
    ``classes`` classes when above 0.

    ``copies``: how many copies of the weights the caller will hold (training: weights, gradients
    and Adam's two moments; sampling: 1); more than fits in memory is refused before building.
    """
    what = f"{'training' if copies > 1 else 'loading'} {n_gens} {arch.name} generator{'s' if n_gens > 1 else ''} with z-dim {z_dim}"
    check_model_memory(lambda: make_generator(arch, z_dim, channels, classes), n_gens, what, copies, "; lower --z-dim or --n-gens")
    generators = []
    for i in range(n_gens):
        torch.manual_seed(seed * 7919 + 101 * (i + 1))
        generators.append(make_generator(arch, z_dim, channels, classes))
    return nn.ModuleList(generators)


def make_discriminator(arch: Architecture, channels: int, outputs: int = 1, classes: int = 0) -> nn.Module:
    """arch's D for `channels` input channels, with `outputs` logits per image (1: shape (B,)),
    taking labels (``D(x, y)``, a projection D for the built-ins) when ``classes`` > 0."""
    check_conditional(arch, classes)
    if outputs != 1 and "outputs" not in inspect.signature(arch.discriminator).parameters:
        raise GanzooError(
            f"architecture {arch.name!r} gives one logit per image, but this input policy needs {outputs}; "
            f"choose another --arch (its discriminator must take outputs=K)"
        )
    keywords = {**({"outputs": outputs} if outputs != 1 else {}), **({"classes": classes} if classes else {})}
    return arch.discriminator(channels, **keywords)


def build_discriminator(arch: Architecture, channels: int, spectral: bool, seed: int, outputs: int = 1,
                        classes: int = 0) -> nn.Module:
    check_model_memory(lambda: make_discriminator(arch, channels, outputs, classes), 1, f"training the {arch.name} discriminator",
                       TRAINING_COPIES, "")
    torch.manual_seed(seed * 7919)
    discriminator = make_discriminator(arch, channels, outputs, classes)
    return add_spectral_norm(discriminator) if spectral else discriminator


def distinct_parameters(modules: Iterable[nn.Module]) -> list[list[nn.Parameter]]:
    """Each module's parameters that no earlier module holds: generators that share layers
    (a plugin may tie them) then give every shared parameter to exactly one optimizer."""
    seen: set[int] = set()
    groups = []
    for index, module in enumerate(modules):
        own = [p for p in module.parameters() if id(p) not in seen]
        if not own:
            raise GanzooError(f"generator {index + 1} has no parameters of its own (every layer is shared)")
        seen.update(id(p) for p in own)
        groups.append(own)
    return groups


def check_fits(arch: Architecture, tensors: dict[str, torch.Tensor], *, n_gens: int, z_dim: int, channels: int,
               classes: int = 0) -> None:
    """Raise CheckpointError unless a checkpoint's generator tensors fit the generators its manifest
    describes (a resume checks the whole state: ``ganzoo.training.resume``).

    The models are built on the meta device (no memory, no compute) first, so that a manifest
    asking for absurd sizes (a huge z_dim, a million generators) is refused before anything big
    is allocated.
    """
    stored = {key.split(".")[1] for key in tensors if key.startswith("generator.")}
    if n_gens < 1 or stored != {str(i) for i in range(n_gens)}:
        raise CheckpointError(f"checkpoint tensors do not fit the architecture: the manifest says {n_gens} generators, "
                              f"the file holds {len(stored)}")
    if not (0 < z_dim <= 1 << 20 and 0 < channels <= 1 << 12 and 0 <= classes <= MAX_CLASSES):
        raise CheckpointError(f"checkpoint manifest has impossible sizes: z_dim {z_dim}, channels {channels}, classes {classes}")
    with torch.device("meta"):
        generator = make_generator(arch, z_dim, channels, classes)
        for i in range(n_gens):
            module_fits(f"generator.{i}", generator, tensors)


def resolve_device(name: str) -> torch.device:
    if name != "auto" and name != "cpu" and not (name == "cuda" or name.startswith("cuda:") and name[5:].isdigit()):
        raise GanzooError(f"device must be auto, cpu, cuda or cuda:N, got {name!r}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise GanzooError("--device cuda was asked for, but torch sees no CUDA device")
    return torch.device(name)
