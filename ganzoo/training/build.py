"""Building a run from its config, before the first step: the checks that need no data, the training
images, the discriminators the input policy asks for, every network's optimizer, and how the hot
path calls the networks (looped or vmapped generators, autocast, DDP, compile)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganzoo.core.compat import with_phase
from ganzoo.core.compose import check_composition
from ganzoo.core.config import OPTIMIZERS, TrainConfig
from ganzoo.core.data import check_no_resize, default_root, load_data
from ganzoo.core.errors import DataError, GanzooError
from ganzoo.core.parts import D_LABELS, Architecture, DiscriminatorSpec, ImageData, PolicyOutput
from ganzoo.core.registry import Registry
from ganzoo.runs.models import MAX_CLASSES, build_discriminator, check_conditional, distinct_parameters
from ganzoo.training.distributed import World
from ganzoo.training.generator_bank import GeneratorBank, use_vmap
from ganzoo.training.optimizers import discriminator_settings, generator_settings, make_optimizer
from ganzoo.training.precision import Autocast, allow_tf32, resolve_amp

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
        if getattr(spec, "labels", "input") not in D_LABELS:
            raise GanzooError(f"discriminator {spec.name!r} asks for labels={spec.labels!r}; known: {', '.join(D_LABELS)}")
        if spec.outputs < 1 or spec.packing < 1:
            raise GanzooError(f"the input policy asks for a D with packing {spec.packing} and {spec.outputs} outputs; both must be at least 1")
        if spec.optimizer is not None and spec.optimizer not in OPTIMIZERS:
            raise GanzooError(f"discriminator {spec.name!r} asks for the optimizer {spec.optimizer!r} (known: {', '.join(OPTIMIZERS)})")
        if spec.lr is not None and not (isinstance(spec.lr, int | float) and 0 < spec.lr <= 1):
            raise GanzooError(f"discriminator {spec.name!r} asks for the learning rate {spec.lr!r}; it must be in (0, 1]")
        betas = spec.betas
        if betas is not None and not (len(betas) == 2 and all(isinstance(b, int | float) and 0 <= b < 1 for b in betas)):
            raise GanzooError(f"discriminator {spec.name!r} asks for betas {betas!r}; they must be two numbers in [0, 1)")
    return specs


def check_run(registry: Registry, config: TrainConfig) -> tuple[Any, tuple[DiscriminatorSpec, ...]]:
    """Every check of a run that needs no data, before anything is loaded, built or written: the
    parts compose, the dataset takes --resolution/--channels if given and the --arch fits them, the
    input policy builds and asks for discriminators that can be built, a decaying schedule has steps
    to decay over. Returns the policy and its discriminators."""
    check_composition(registry, config)
    if config.lr_schedule != "constant" and not (config.steps or config.epochs):
        raise GanzooError(f"--lr-schedule {config.lr_schedule} decays over the run's steps; give --steps or --epochs")
    dataset = registry.get("dataset", config.dataset.partition(":")[0])
    if not dataset.resizes:
        check_no_resize(dataset.name, config.resolution, config.channels)
    if config.arch and config.resolution:
        size = registry.get("architecture", config.arch).image_size
        if size != config.resolution:
            raise DataError(f"architecture {config.arch!r} makes {size}x{size} images, not --resolution {config.resolution}")
    policy = registry.get("input policy", config.policy).build(config)
    specs = discriminator_specs(policy)
    for spec in specs:
        if spec.architecture is not None:
            registry.get("architecture", spec.architecture)
    return policy, specs


BY_SIZE = {28: "dcgan28", 32: "resnet32", 48: "resnet48", 64: "resnet64", 128: "resnet128"}  # the default --arch by image size


def architecture_for(registry: Registry, size: int) -> str:
    """The architecture of a run that names none, for its images' size: BY_SIZE's, else the first
    registered one of that size."""
    names = [BY_SIZE[size]] if size in BY_SIZE else []
    names += sorted(entry.part.name for entry in registry.entries("architecture") if entry.part.image_size == size)
    for name in names:
        if name in registry.names("architecture"):
            return name
    sizes = sorted({entry.part.image_size for entry in registry.entries("architecture")})
    raise DataError(f"no architecture makes {size}x{size} images (sizes with one: {', '.join(map(str, sizes))}); "
                    "give --resolution with one of them, or an --arch of a plugin")


def training_images(registry: Registry, config: TrainConfig, world: World,
                    log: Callable[[str], None] = lambda _: None) -> tuple[ImageData, torch.Tensor]:
    """The training split, and this rank's share of its images (uint8, on the CPU)."""
    told = {}

    def progress(what: str, done: int, total: int) -> None:  # a line at each tenth of a folder's first decoding
        if told.setdefault(what, -1) < done * 10 // max(total, 1):
            told[what] = done * 10 // max(total, 1)
            log(f"preparing {config.dataset}: {what} {done:,}/{total:,}")

    data = load_data(registry, config.dataset, Path(config.data_root) if config.data_root else default_root(),
                     resolution=config.resolution, channels=config.channels, progress=progress)
    for note in data.notes:
        log(note)
    images = data.images[: config.limit_data] if config.limit_data else data.images
    return data, images[world.rank :: world.size]  # this rank's shard (all of it in a plain run)


def run_labels(config: TrainConfig, data: ImageData, arch: Architecture, world: World) -> tuple[int, tuple[str, ...], torch.Tensor | None]:
    """A class-conditional run's classes: (K, their names, this rank's labels as its images are
    taken); (0, (), None) for other runs. A dataset without labels, with one class or labels out
    of range, or an --arch that cannot condition, is refused in one line."""
    if not config.conditional:
        return 0, (), None
    labels = data.labels
    if labels is None:
        raise DataError(f"dataset {config.dataset!r} has no labels, and --conditional needs them"
                        + (" (a folder's classes are its first-level subfolders)" if config.dataset.startswith("folder:") else ""))
    labels = labels.long()
    if labels.dim() != 1 or len(labels) != len(data.images) or (len(labels) and int(labels.min()) < 0):
        raise DataError(f"dataset {config.dataset!r} gave labels of shape {tuple(labels.shape)}; --conditional needs one "
                        f"class in [0, K) per image")
    classes = len(data.classes) if data.classes else int(labels.max()) + 1
    if not 2 <= classes <= MAX_CLASSES or int(labels.max()) >= classes:
        raise DataError(f"dataset {config.dataset!r} has {classes} class(es); --conditional needs 2 to {MAX_CLASSES:,}")
    check_conditional(arch, classes)
    names = tuple(data.classes) if data.classes else tuple(str(k) for k in range(classes))
    taken = labels[: config.limit_data] if config.limit_data else labels
    return classes, names, taken[world.rank :: world.size]


def sample_labels(count: int, classes: int, device: torch.device) -> torch.Tensor | None:
    """The classes of a conditional run's sample grids: rows of ``grid_columns`` images, one class per row."""
    if not classes:
        return None
    return (torch.arange(count) // grid_columns(count, classes)).to(device)


def grid_columns(count: int, classes: int) -> int:
    return -(-count // classes)


def policy_call(policy: Any, conditional: bool) -> Callable[..., PolicyOutput]:
    """The policy as the trainer calls it: ``score(D, real, fakes, phase, labels)``. A conditional run's
    policy gets ``labels=`` and its output carries them (``PolicyOutput.labels``) for the aggregation."""
    scored = with_phase(policy)
    if not conditional:
        return lambda d, real, fakes, phase, labels: scored(d, real, fakes, phase)

    def score(d: Any, real: torch.Tensor, fakes: list[torch.Tensor], phase: str, labels: torch.Tensor) -> PolicyOutput:
        out = policy(d, real, fakes, phase, labels=labels)
        return out if out.labels is not None else replace(out, labels=labels)

    return score


def check_image_size(arch: Architecture, images: torch.Tensor, dataset: str) -> None:
    if tuple(images.shape[2:]) != (arch.image_size, arch.image_size):
        raise DataError(
            f"architecture {arch.name!r} makes {arch.image_size}x{arch.image_size} images, "
            f"but {dataset!r} has {images.shape[2]}x{images.shape[3]}; choose another --arch"
            + (" or --resolution" if images.shape[2] != arch.image_size and "folder:" in dataset else "")
        )


def build_discriminators(registry: Registry, config: TrainConfig, specs: tuple[DiscriminatorSpec, ...], arch: Architecture,
                         channels: int, classes: int = 0) -> nn.ModuleDict:
    """One network per spec, each from its architecture (the run's by default), D k seeded from (seed, k).
    In a run with ``classes`` > 0, a D takes them as input, gives ``classes`` more logits or ignores
    them, as its spec's ``labels`` says."""
    built = nn.ModuleDict()
    for k, spec in enumerate(specs):
        own = registry.get("architecture", spec.architecture) if spec.architecture else arch
        if own.image_size != arch.image_size:
            raise GanzooError(f"discriminator {spec.name!r} uses architecture {own.name!r} for {own.image_size}x{own.image_size} "
                              f"images; this run's are {arch.image_size}x{arch.image_size}")
        spectral = config.spectral_norm if spec.spectral_norm is None else spec.spectral_norm
        takes, head = d_classes(spec, classes)
        built[spec.name] = build_discriminator(own, channels * spec.packing, spectral, config.seed + 104_729 * k, spec.outputs + head,
                                               takes)
    return built


def d_classes(spec: DiscriminatorSpec, classes: int) -> tuple[int, int]:
    """(the classes a D takes as input, the class logits it adds) for a run with ``classes`` classes."""
    how = getattr(spec, "labels", "input")
    return (classes if how == "input" else 0), (classes if how == "classify" else 0)


def build_optimizers(config: TrainConfig, generators: nn.ModuleList, discriminators: nn.ModuleDict,
                     specs: tuple[DiscriminatorSpec, ...]) -> tuple[list[torch.optim.Optimizer], dict[str, torch.optim.Optimizer]]:
    """An optimizer per generator (over the parameters no earlier generator holds) and per
    discriminator; each one's base learning rate is its ``defaults["lr"]``."""
    g_settings = generator_settings(config)
    g_optimizers = [make_optimizer(params, g_settings) for params in distinct_parameters(generators)]
    d_optimizers = {spec.name: make_optimizer(list(discriminators[spec.name].parameters()), discriminator_settings(config, spec))
                    for spec in specs}
    return g_optimizers, d_optimizers


@dataclass(frozen=True)
class Calls:
    """How the hot path calls the networks. The modules themselves (state.generators,
    state.discriminators) are what optimizers and checkpoints see."""

    generate: Any  # z -> the N generators' fakes (a GeneratorBank, maybe in DDP, maybe compiled)
    d_phase: Any  # what the policy gets as D in D's update: one network or a dict by name
    g_phase: Any  # ... in the generators' update (no DDP: D needs no gradient of its own there)
    networks: Any  # the discriminators themselves, as after_discriminator_step gets them
    amp: torch.dtype | None
    tf32: bool
    vectorized: bool


def one_or_dict(items: dict[str, Any]) -> Any:
    """What a policy gets for D: the network itself when there is one, else the dict by name."""
    return next(iter(items.values())) if len(items) == 1 else items


def build_calls(config: TrainConfig, generators: nn.ModuleList, discriminators: nn.ModuleDict, device: torch.device,
                world: World) -> Calls:
    """The N generators as one GeneratorBank (looped or vmapped), every network under bf16 autocast
    when --amp says so (and TF32 on CUDA), wrapped in DDP under torchrun, compiled with --compile."""
    amp, tf32 = resolve_amp(config.amp, device), allow_tf32(device)
    vectorized = use_vmap(config.vmap, generators, device)
    if config.channels_last:
        generators.to(memory_format=torch.channels_last)
        discriminators.to(memory_format=torch.channels_last)
    bank: nn.Module = GeneratorBank(generators, vectorized=vectorized, device=device, amp=amp)
    d_train: dict[str, nn.Module] = dict(discriminators)
    if world.active:
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [device.index] if device.type == "cuda" else None
        bank, d_train = DDP(bank, device_ids=ids), {name: DDP(d, device_ids=ids) for name, d in d_train.items()}
    d_phase = {name: Autocast(d, device, amp) for name, d in d_train.items()}
    g_phase = {name: Autocast(d, device, amp) for name, d in discriminators.items()}
    if config.compile:
        bank = torch.compile(bank)
        d_phase, g_phase = ({name: torch.compile(d) for name, d in calls.items()} for calls in (d_phase, g_phase))
    return Calls(bank, one_or_dict(d_phase), one_or_dict(g_phase), one_or_dict(dict(discriminators)), amp, tf32, vectorized)
