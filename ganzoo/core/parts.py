"""The parts plugins register: strategies, input policies, aggregations, architectures, datasets.

Each is a small frozen dataclass or protocol. Plugins build them; the trainer calls them directly.
A run is one strategy (its defaults), one input policy and one aggregation, chosen from the
command line (``--policy``, ``--aggregation``); each part declares its options and what it
supports, and ``ganzoo.core.compose`` refuses combinations that cannot work.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import InitVar, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from ganzoo.core.search import Search

if TYPE_CHECKING:
    import torch
    from torch import Tensor, nn

    from ganzoo.core.config import TrainConfig


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
    extras: named scalars (one-element tensors) the policy wants logged, e.g. {"r1": penalty};
        the trainer averages them like the losses and writes them to metrics.jsonl (under
        "extras"), the progress bar and TensorBoard, without a host sync per step. Names: 1-32
        lowercase letters, digits or _.
    labels: (B,) long, the class of each tuple in a class-conditional run (``--conditional``),
        None otherwise. The trainer sets it from what the policy was given, so that aggregations
        may read it; a policy need not.
    """

    d_losses: Tensor
    g_losses: Tensor
    g_losses_own: Tensor
    picks: Tensor
    correct: Tensor
    chance: float
    extras: Mapping[str, Tensor] = field(default_factory=dict)
    labels: Tensor | None = None


Phase = Literal["discriminator", "generator"]


class InputPolicy(Protocol):
    """Presents the real batch and the N fake batches to D, and scores the result.

    Called with D, a real batch (B, C, H, W), a list of N fake batches of the same shape and the
    phase: "discriminator" when the output trains D (the fakes are detached; the place for a
    penalty on D such as R1), "generator" when it trains the generators (D's weights get no
    update). Runs D on the batch and returns a PolicyOutput.

    What D the policy needs, in optional attributes:

    - ``discriminators``: a sequence of ``DiscriminatorSpec``, one per discriminator; with more
      than one, the policy is called with a dict {name: D} in their order instead of one D, and
      ``d_losses`` is the sum of their losses (each D's optimizer steps on its own parameters).
    - or, for one D (plugin API 0.4): ``d_outputs`` K, the logits D gives per input ((B,) when 1,
      (B, K) otherwise), and ``d_packing`` m, how many images the policy stacks on the channel
      axis of one D input (D is then built for m * C channels). Both default to 1.

    An optional method ``after_discriminator_step(discriminator)`` is called after each of D's
    optimizer steps with the same D (or dict) the policy gets, under ``torch.no_grad()``: the place
    for weight clipping (the original WGAN).

    Class-conditional runs (``--conditional``; plugin API 0.6): a policy that declares
    ``Supports(conditional=True)`` is called with a keyword ``labels``, a (B,) long tensor: tuple b
    is of class ``labels[b]``, its real image ``real[b]`` is of that class and every generator was
    asked for it (``fakes[i][b]``). A D that takes labels (``DiscriminatorSpec.labels == "input"``,
    the default) is called ``D(images, labels_of_images)``; one built with ``"classify"`` gives
    K class logits after its ``outputs`` (AC-GAN).
    """

    def __call__(self, discriminator: nn.Module, real: Tensor, fakes: list[Tensor], phase: Phase) -> PolicyOutput: ...


@dataclass(frozen=True)
class DiscriminatorSpec:
    """One discriminator an input policy asks for (``policy.discriminators``).

    name: 1-32 lowercase letters, digits or _; the key of the dict the policy gets, and of its
        tensors in checkpoints (``discriminator.<name>.*`` when a run has several).
    outputs, packing: as ``d_outputs`` and ``d_packing`` (logits per input, images per input).
    architecture: a registered architecture's name, or None for the run's ``--arch``.
    spectral_norm: True or False, or None for the run's ``--spectral-norm``.
    optimizer, lr, betas: this D's optimizer settings, or None for the run's (``--optimizer-d``,
        ``--lr-d`` or ``--lr``, ``--beta1``/``--beta2``).
    labels: how this D uses the classes of a class-conditional run (ignored otherwise): "input"
        (it takes them, ``D(x, y)``: a projection D for the built-in architectures), "classify"
        (it does not take them but gives K class logits after its ``outputs``: shape (B, outputs + K),
        AC-GAN's auxiliary classifier) or "none" (it ignores them).
    """

    name: str = "d"
    outputs: int = 1
    packing: int = 1
    architecture: str | None = None
    spectral_norm: bool | None = None
    optimizer: str | None = None
    lr: float | None = None
    betas: tuple[float, float] | None = None
    labels: str = "input"


D_LABELS = ("input", "classify", "none")  # DiscriminatorSpec.labels


@dataclass(frozen=True)
class Objective:
    """What an aggregation returns.

    g_loss: a scalar, minimised with respect to every generator's parameters.
    d_weights: (B,) weights on D's per-tuple losses, or None for all ones.
    """

    g_loss: Tensor | None = None
    d_weights: Tensor | None = None
    generators: InitVar[Tensor | None] = None  # plugin API 0.2's name of g_loss, until 0.7 (ganzoo.core.compat lists it)

    def __post_init__(self, generators: Tensor | None) -> None:
        if self.g_loss is None:
            if generators is None:
                raise TypeError("Objective needs g_loss, the generators' scalar loss")
            object.__setattr__(self, "g_loss", generators)


Objective.generators = property(lambda self: self.g_loss, doc="Plugin API 0.2's name of g_loss (ganzoo.core.compat).")  # type: ignore[assignment]


class Aggregation(Protocol):
    """Turns the per-generator losses of a PolicyOutput into the generators' objective."""

    def __call__(self, out: PolicyOutput) -> Objective: ...


@dataclass(frozen=True)
class Strategy:
    """A named training recipe: the policy, aggregation and settings it defaults to. The core makes
    ``ganzoo train <name>`` for it, with every core and part option; users may swap the policy or
    aggregation with ``--policy`` / ``--aggregation``.

    defaults: TrainConfig fields this strategy sets unless the user overrides them
        (e.g. {"policy": "tuple", "aggregation": "mean", "n_gens": 2}), and under "options" the
        values it gives parts' options (e.g. {"loss": "hinge"}); an option of a part the run does
        not use is dropped.
    sources: where each default comes from, shown in docs and ``ganzoo train <name> --help``.
    options: TrainOptions only this strategy takes (rare: most options belong to a policy or an
        aggregation).
    """

    name: str
    summary: str
    defaults: Mapping[str, Any] = field(default_factory=dict)
    sources: str = ""
    options: tuple[TrainOption, ...] = ()


@dataclass(frozen=True)
class Supports:
    """What an input policy or aggregation works with; ``ganzoo.core.compose.check_composition``
    refuses a run that breaks it, in one line, before anything is written.

    min_gens, max_gens: the numbers of generators it works with (max None: any).
    double_backward: it differentiates through a gradient (R1, R2, gradient penalties), which
        ``--compile`` does not support.
    double_backward_options: the keys of its options (``config.options``) that turn such a
        penalty on when above 0, e.g. {"r1", "r2"}: the run needs double backward then, and
        only then (an option not given counts as 0, so its part must treat it as off).
    packs_images: D sees several images stacked per input (PacGAN); informational.
    provides: (policies) what its PolicyOutput offers beyond the contract, e.g. "tuple-pick":
        D chooses exactly one input of each tuple as the real one, and ``picks`` says which.
    requires: (aggregations) what it needs the policy to provide.
    conditional: (policies) it takes class labels (``--conditional``): called with ``labels=``.
    """

    min_gens: int = 1
    max_gens: int | None = None
    double_backward: bool = False
    double_backward_options: frozenset[str] = frozenset()
    packs_images: bool = False
    provides: frozenset[str] = frozenset()
    requires: frozenset[str] = frozenset()
    conditional: bool = False


@dataclass(frozen=True)
class NamedFactory:
    """An input policy or aggregation: a name, a function of the run's config that builds it, the
    options it takes (values in ``config.options``) and what it supports."""

    name: str
    summary: str
    build: Callable[[TrainConfig], Any]
    options: tuple[TrainOption, ...] = ()
    supports: Supports = field(default_factory=Supports)


@dataclass(frozen=True)
class Architecture:
    """A generator/discriminator pair for one image size.

    generator(z_dim, channels) -> nn.Module mapping (B, z_dim) to (B, channels, size, size) in [-1, 1].
    discriminator(channels) -> nn.Module mapping (B, channels, size, size) to (B,) logits.
        Policies that need K logits per image (MAD-GAN, MGAN) call it as
        discriminator(channels, outputs=K) and expect (B, K); an architecture without the
        ``outputs`` argument works with every one-logit policy and is refused by the others.
    conditional: it can condition on K classes (``--conditional``): then ``generator(z_dim,
        channels, classes=K)`` maps (z, y) to images (the built-ins: class-conditional batch norm)
        and ``discriminator(channels, outputs=1, classes=K)`` maps (x, y) to logits (the built-ins:
        a projection D); y is a (B,) long tensor. Without ``classes`` (or with 0) both are as above.
    """

    name: str
    summary: str
    image_size: int
    generator: Callable[..., nn.Module]
    discriminator: Callable[..., nn.Module]
    conditional: bool = False


@dataclass(frozen=True)
class ImageData:
    """A whole split as one uint8 tensor (N, C, H, W), its labels if known, and where it came from.

    digest: the sha256 of the images (and labels), when the dataset knows it (a folder's cache
        does); else ``ganzoo.core.digests.data_hash`` computes it.
    release: for images memory-mapped from a file, drops the pages read so far from the process
        (they stay in the OS's file cache); readers of large splits call it now and then.
    classes: the class names, by label, when the dataset has them.
    notes: lines worth telling whoever loads it (e.g. which files a folder skipped).
    """

    images: torch.Tensor
    labels: torch.Tensor | None
    source: str
    digest: str | None = None
    release: Callable[[], None] | None = None
    classes: tuple[str, ...] | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Dataset:
    """A named image dataset.

    load(argument, root, split) -> ImageData. `argument` is what follows "name:" in a dataset
    spec such as "idx:/data/digits" (None when there is none); root is the data root folder;
    split is "train" or "test".

    resizes: load also takes the keywords ``resolution`` and ``channels`` (0: as the data is;
        ``--resolution``, ``--channels``) and ``progress`` (``progress(what, done, total)`` or
        None, for long preparations). Datasets that do not resize are refused those options.
    default_arch: the architecture of runs without ``--arch``; "" picks one by the images' size
        (``ganzoo.training.build.architecture_for``).
    eval_features: the feature extractor of evaluations that name none.
    summarize: for ``ganzoo data prepare/info``: ``summarize(argument, root, **load's keywords)``
        makes the data ready without loading it (no torch) and returns {"images", "size",
        "channels", "bytes", "classes", "class_counts", "source", "notes", ...}; None: the CLI
        loads the data and says what it holds.
    """

    name: str
    summary: str
    load: Callable[..., ImageData]
    default_arch: str = "dcgan28"
    takes_argument: bool = False
    stacked_from: str | None = None  # channels are independent images of this dataset (Stacked MNIST)
    eval_samples: int = 10_000  # samples ganzoo eval draws by default (the dataset's protocol)
    resizes: bool = False
    eval_features: str = "lenet"
    summarize: Callable[..., dict[str, Any]] | None = None


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
    """A ``ganzoo train`` option of a part, whose value is kept in the run's ``config.options[key]``.

    Declared by the part that reads it (``Strategy.options``, ``NamedFactory.options``), it is
    accepted only when that part is in use; observer plugins' options
    (``ganzoo_register_train_options``) are accepted in every run.

    flag: the option as typed, e.g. "--ema".
    key: the name in ``config.options`` (and under ``[options]`` in a config file), e.g. "ema".
    help: one line for ``--help``; say the default the plugin uses when the option is absent.
    type: a click type (``float``, ``int``, ``str``, ``click.Choice([...])``, ...).
    check: ``check(value) -> value``, raising ``ganzoo.core.errors.GanzooError`` with a one-line
        message for a bad value; also applied to values from a config file.
    resume: whether the option may be given again with ``--resume`` (logging options may;
        options that change training may not, so that a resumed run goes on exactly).
    is_flag: an on/off flag (``--flag/--no-flag``) instead of an option with a value.
    default: the value the part uses when the option is not given. It is filled into
        ``config.options`` of every run that uses the part, so the factory receives it, config.toml
        records it and ``ganzoo list --json`` and ``--help`` show it: declare it here and nowhere
        else. None (plugin API 0.4's options): not declared; the key is then absent unless given.
    search: the range worth searching (``ganzoo.core.search.Search``: low..high, log scale, or
        choices), which ``ganzoo tune`` searches unless the option is given; None: not searched
        unless ``--search KEY=...`` asks (plugin API 0.7).
    """

    flag: str
    key: str
    help: str
    type: Any = str
    check: Callable[[Any], Any] | None = None
    resume: bool = False
    is_flag: bool = False
    default: Any = None
    search: Search | None = None

    @property
    def name(self) -> str:  # the registry's key, as for every other part
        return self.key

    @property
    def summary(self) -> str:
        return f"{self.flag}: {self.help}"
