"""The parts plugins register: strategies, input policies, aggregations, architectures, datasets.

Each is a small frozen dataclass or protocol. Plugins build them; the trainer calls them directly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import torch
    from torch import Tensor, nn

    from ganzoo.config import TrainConfig


@dataclass(frozen=True)
class PolicyOutput:
    """What an input policy returns for one batch of B tuples (real, fake_1, ..., fake_N).

    d_losses: (B,) D's loss per tuple (to be minimised by D).
    g_losses: (N, B) generator i's loss per tuple, differentiable through every fake in the tuple.
    g_losses_own: (N, B) the same values, but loss i is differentiable only through G_i's own
        sample (the other samples' scores held fixed). Aggregations that give each generator its
        own loss use this one.
    picks: (B,) long, which input D takes for the real one: 0 = the real sample, i = G_i's sample.
    correct: (B,) float in [0, 1], D's accuracy on each tuple (how accuracy is defined is the
        policy's: e.g. "picked the real one" or "fraction of inputs classified right").
    chance: D's accuracy when guessing.
    """

    d_losses: Tensor
    g_losses: Tensor
    g_losses_own: Tensor
    picks: Tensor
    correct: Tensor
    chance: float


class InputPolicy(Protocol):
    """Presents the real batch and the N fake batches to D, and scores the result.

    Called with D, a real batch (B, C, H, W) and a list of N fake batches of the same shape; runs
    D once on the concatenated batch and returns a PolicyOutput.

    Two optional attributes tell the trainer what D the policy needs (both default to 1):
    ``d_outputs`` K, the logits D gives per input ((B,) when 1, (B, K) otherwise), and
    ``d_packing`` m, how many images the policy stacks on the channel axis of one D input
    (D is then built for m * C channels).
    """

    def __call__(self, discriminator: nn.Module, real: Tensor, fakes: list[Tensor]) -> PolicyOutput: ...


@dataclass(frozen=True)
class Objective:
    """What an aggregation returns.

    generators: scalar, minimised with respect to every generator's parameters.
    d_weights: (B,) weights on D's per-tuple losses, or None for all ones.
    """

    generators: Tensor
    d_weights: Tensor | None = None


class Aggregation(Protocol):
    """Turns the per-generator losses of a PolicyOutput into the generators' objective."""

    def __call__(self, out: PolicyOutput) -> Objective: ...


@dataclass(frozen=True)
class Strategy:
    """A named training recipe: which policy and aggregation, and the settings it defaults to.

    defaults: TrainConfig fields this strategy sets unless the user overrides them
        (e.g. {"policy": "tuple", "aggregation": "mean", "n_gens": 2}).
    sources: where each default comes from, shown in docs and `ganzoo list`.
    """

    name: str
    summary: str
    defaults: Mapping[str, Any] = field(default_factory=dict)
    sources: str = ""


@dataclass(frozen=True)
class NamedFactory:
    """An input policy or aggregation: a name and a function of the run's config that builds it."""

    name: str
    summary: str
    build: Callable[[TrainConfig], Any]


@dataclass(frozen=True)
class Architecture:
    """A generator/discriminator pair for one image size.

    generator(z_dim, channels) -> nn.Module mapping (B, z_dim) to (B, channels, size, size) in [-1, 1].
    discriminator(channels) -> nn.Module mapping (B, channels, size, size) to (B,) logits.
        Policies that need K logits per image (MAD-GAN, MGAN) call it as
        discriminator(channels, outputs=K) and expect (B, K); an architecture without the
        ``outputs`` argument works with every one-logit policy and is refused by the others.
    """

    name: str
    summary: str
    image_size: int
    generator: Callable[[int, int], nn.Module]
    discriminator: Callable[[int], nn.Module]


@dataclass(frozen=True)
class ImageData:
    """A whole split as one uint8 tensor (N, C, H, W), its labels if known, and where it came from."""

    images: torch.Tensor
    labels: torch.Tensor | None
    source: str


@dataclass(frozen=True)
class Dataset:
    """A named image dataset.

    load(argument, root, split) -> ImageData. `argument` is what follows "name:" in a dataset
    spec such as "idx:/data/digits" (None when there is none); root is the data root folder;
    split is "train" or "test".
    """

    name: str
    summary: str
    load: Callable[[str | None, Path, str], ImageData]
    default_arch: str = "dcgan28"
    takes_argument: bool = False
    stacked_from: str | None = None  # channels are independent images of this dataset (Stacked MNIST)
    eval_samples: int = 10_000  # samples ganzoo eval draws by default (the dataset's protocol)


@dataclass(frozen=True)
class ExtractorRequest:
    """What an extractor's ``load`` is given.

    dataset: the dataset spec being evaluated (e.g. "mnist", "stacked-mnist").
    channels: the channels of the images to evaluate.
    stacked_from: for datasets whose channels are independent images of another dataset (Stacked
        MNIST: "mnist"), that dataset's spec; else None.
    load_split: ``load_split(spec, "train" | "test") -> ImageData``, for extractors that train on
        data (a classifier); loading is lazy, so extractors that need no data pay nothing.
    cache_dir: where to keep trained weights (safetensors), keyed by what they were trained on.
    retrain: rebuild cached weights even when they exist.
    device: where to run.
    log: one-line progress messages for people.
    """

    dataset: str
    channels: int
    stacked_from: str | None
    load_split: Callable[[str, str], ImageData]
    cache_dir: Path
    retrain: bool
    device: torch.device
    log: Callable[[str], None]


@dataclass(frozen=True)
class Extractor:
    """A named feature extractor for ``ganzoo eval``.

    load(request) -> an ``nn.Module`` in eval mode mapping images (B, C, H, W) in [-1, 1] to
    features (B, F), with attributes:

    - ``num_features``: F;
    - ``fingerprint``: a hex hash of its weights, recorded with every result;
    - ``logits``: a method mapping images to class logits (B, K), or (B, C, K) when
      ``label_channels`` is True (each channel labelled on its own, as for Stacked MNIST); None
      when it does not classify (classes, IS and modes then are not reported);
    - ``test_accuracy``: the classifier's accuracy on the test split, or None;
    - ``label_channels``: see ``logits``.
    """

    name: str
    summary: str
    load: Callable[[ExtractorRequest], nn.Module]


@dataclass(frozen=True)
class TrainOption:
    """A ``ganzoo train`` option whose value is kept in the run's ``config.options[key]``.

    flag: the option as typed, e.g. "--ema".
    key: the name in ``config.options`` (and under ``[options]`` in a config file), e.g. "ema".
    help: one line for ``--help``; say the default the plugin uses when the option is absent.
    type: a click type (``float``, ``int``, ``str``, ``click.Choice([...])``, ...).
    check: ``check(value) -> value``, raising ``ganzoo.errors.GanzooError`` with a one-line
        message for a bad value; also applied to values from a config file.
    resume: whether the option may be given again with ``--resume`` (logging options may;
        options that change training may not, so that a resumed run goes on exactly).
    is_flag: an on/off flag (``--flag/--no-flag``) instead of an option with a value.
    """

    flag: str
    key: str
    help: str
    type: Any = str
    check: Callable[[Any], Any] | None = None
    resume: bool = False
    is_flag: bool = False

    @property
    def name(self) -> str:  # the registry's key, as for every other part
        return self.key

    @property
    def summary(self) -> str:
        return f"{self.flag}: {self.help}"
