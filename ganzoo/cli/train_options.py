"""The click side of ``ganzoo train <strategy>``: the core's options, every part's options as click
options, and ``--help`` grouped by who owns each option (core, strategy, policy, aggregation, observers).

Which parts own which option is ``ganzoo.core.options``; this module only turns that into click.
"""

from __future__ import annotations

from typing import Any

import click

from ganzoo.cli.context import OutPath
from ganzoo.core.config import AMP_CHOICES, LR_SCHEDULES, OPTIMIZERS, VMAP_CHOICES
from ganzoo.core.options import OBSERVER, OwnedOption
from ganzoo.core.parts import Strategy
from ganzoo.core.search import CORE_SEARCH

PREFIX = "option__"  # click parameter names of part options: never a TrainConfig field
GROUPS = (("core", "Core options"), ("strategy", "Strategy options"), ("input policy", "Policy options"),
          ("aggregation", "Aggregation options"), (OBSERVER, "Observer options (any run)"))

# (declarations, click keyword arguments, help); "{default}" is filled with the strategy's default where it has one.
CORE = [
    (["--policy"], {}, "Discriminator-input policy (ganzoo list policies). {default}"),
    (["--aggregation"], {}, "How the N generator losses become the update (ganzoo list aggregations). {default}"),
    (["--n-gens"], {"type": int}, "Number of generators N. {default}"),
    (["--shared-z/--no-shared-z"], {}, "Feed every generator the same z (PSG's Fig. 2). {default}"),
    (["--spectral-norm/--no-spectral-norm"], {}, "Spectral-normalise D. {default}"),
    (["--dataset"], {}, "mnist, fashion-mnist, cifar10, stacked-mnist, idx:PATH, folder:PATH, or a plugin's. {default}"),
    (["--data-root"], {}, "Folder with the datasets (and folder datasets' caches). [default: $GANZOO_DATA or ~/.cache/ganzoo]"),
    (["--resolution"], {"type": int}, "folder:PATH datasets: the images' side R in pixels (centre square, antialiased resize). "
                                      "[default: as stored, when all images share one size]"),
    (["--channels"], {"type": int}, "folder:PATH datasets: 1 (grey) or 3 (RGB). [default: from the data]"),
    (["--conditional/--no-conditional"], {},
     "Class-conditional: each generator is asked for the class of its tuple's real image (the data's labels), D sees the "
     "classes (a projection D; AC-GAN: a class head). Needs a labelled dataset, and a policy and --arch that can condition "
     "(ganzoo list). {default}"),
    (["--epochs"], {"type": int}, "Epochs in total (a resumed run continues up to this). {default}"),
    (["--steps"], {"type": int}, "Stop after this many generator steps in total; overrides --epochs."),
    (["--minutes"], {"type": float},
     "Stop at the first logging point after M minutes of training time (evaluations and checkpoints not counted); "
     "without --epochs or --steps, no other limit. Resumable; a resume may give a larger M. [default: 0, no time limit]"),
    (["--batch-size"], {"type": int}, "Real images per batch. {default}"),
    (["--lr"], {"type": float}, "Learning rate of the generators (and of D unless --lr-d is given). {default}"),
    (["--lr-d"], {"type": float}, "Learning rate of D; 0: the same as --lr. {default}"),
    (["--beta1"], {"type": float}, "Adam's and AdamW's beta1. {default}"),
    (["--beta2"], {"type": float}, "Adam's and AdamW's beta2. {default}"),
    (["--optimizer"], {"type": click.Choice(OPTIMIZERS)}, "The generators' optimizer (and D's unless --optimizer-d). {default}"),
    (["--optimizer-d"], {"type": click.Choice(OPTIMIZERS)}, "D's optimizer. [default: the same as --optimizer]"),
    (["--momentum"], {"type": float}, "SGD's and RMSprop's momentum. {default}"),
    (["--weight-decay"], {"type": float}, "Weight decay: an L2 penalty (adam, rmsprop, sgd) or decoupled (adamw). {default}"),
    (["--lr-schedule"], {"type": click.Choice(LR_SCHEDULES)},
     "The learning rate over the run's steps: constant, or a linear or cosine decay to 0 at the end of --steps/--epochs. {default}"),
    (["--n-dis"], {"type": int}, "Discriminator steps per generator step. {default}"),
    (["--z-dim"], {"type": int}, "Dimension of z. {default}"),
    (["--arch"], {}, "dcgan28, cnn32, resnet32/48/64/128, dcgan64, or a plugin's (ganzoo list architectures). "
                   "[default: the dataset's; for folders, by resolution]"),
    (["--seed"], {"type": int}, "Seed of weights, data order and z. {default}"),
    (["--device"], {}, "auto, cpu, cuda or cuda:N. {default}"),
    (["--limit-data"], {"type": int}, "Train on the first K images only."),
    (["--log-every"], {"type": int}, "Read metrics (and check them for NaN/Inf) every K steps. {default}"),
    (["--checkpoint-every"], {"type": int}, "Also checkpoint every K generator steps. [default: 0, epoch ends only]"),
    (["--keep-last"], {"type": int}, "With M > 1, also keep the M newest checkpoints under checkpoints/. {default}"),
    (["--on-nan"], {"type": click.Choice(["stop", "rollback"])},
     "On a NaN/Inf loss or weight: stop, or reload the last checkpoint with half the learning rate (up to 3 times). {default}"),
    (["--eval-every"], {},
     "Evaluate (FID, KID, classes... as ganzoo eval) into metrics.jsonl every K epochs (2), K steps (500steps) "
     "or S seconds / M minutes of training time (60s, 2m); with --ema, the averaged weights. [default: 0, never]"),
    (["--eval-n"], {"type": int}, "Samples per evaluation during training. {default}"),
    (["--eval-n-real"], {"type": int}, "Real images those evaluations compare with, evenly spaced through the split; 0: all. {default}"),
    (["--eval-features"], {}, "Feature extractor for those evaluations (ganzoo list extractors). [default: the dataset's: lenet, inception for folders]"),
    (["--amp"], {"type": click.Choice(AMP_CHOICES)},
     "bf16 autocast for the networks; auto: on for CPUs with AMX/AVX512-BF16 and bf16 GPUs. {default}"),
    (["--vmap"], {"type": click.Choice(VMAP_CHOICES)}, "Run the N generators as one vmapped call; auto: on for CUDA, off for CPU. {default}"),
    (["--compile/--no-compile"], {}, "torch.compile the networks (slower on CPU; refused for parts that need double backward). {default}"),
    (["--channels-last/--no-channels-last"], {}, "Channels-last memory format for the networks. {default}"),
    (["--deterministic/--no-deterministic"], {}, "Deterministic torch kernels, for bit-exact reruns and resumes. {default}"),
    (["--out"], {"type": OutPath()}, "Run directory. [default: runs/<strategy>-<timestamp>]"),
    (["--config", "config_file"], {"type": click.Path()}, "TOML file of settings; options given here win."),
    (["--resume"], {"type": click.Path()}, "Continue the run in this directory."),
    (["--quiet"], {"is_flag": True, "default": False}, "No progress bar and no summary."),
    (["--json", "as_json"], {"is_flag": True, "default": False}, "Print the final metrics as JSON on stdout, nothing else."),
]


def _default_text(name: str, strategy: Strategy, base: dict[str, Any]) -> str:
    if name in strategy.defaults:
        return f"[default: {_show(strategy.defaults[name])}, {strategy.name}'s]"
    if name in base:
        return f"[default: {_show(base[name])}]"
    return ""


def _show(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def core_options(strategy: Strategy) -> list[click.Option]:
    from ganzoo.core.config import TrainConfig

    base = TrainConfig(strategy=strategy.name).to_dict()
    options = []
    for decls, kwargs, help_text in CORE:
        kwargs = dict(kwargs)
        option = click.Option(decls, default=kwargs.pop("default", None), **kwargs)
        option.help = help_text.replace("{default}", _default_text(option.name, strategy, base)).strip()
        if option.name in CORE_SEARCH:
            option.help += f" [tune searches {CORE_SEARCH[option.name].text()}]"
        option.ganzoo_group = "core"
        options.append(option)
    return options


class PartOption(click.Option):
    """A click option for a part's TrainOption, remembering which parts own it."""

    def __init__(self, owned: OwnedOption, group: str, default_value: Any = None):
        option = owned.option
        decls = [f"{option.flag}/--no-{option.flag[2:]}" if option.is_flag else option.flag, PREFIX + option.key]
        kind = {} if option.is_flag else {"type": option.type}
        notes = [owner_words(owned)]
        if option.default is not None:
            notes.append(f"default: {_show(option.default) if option.default != '' else 'empty'}")
        if default_value is not None:
            notes.append(f"this strategy: {_show(default_value)}")
        if option.search is not None:
            notes.append(f"tune searches {option.search.text()}")
        super().__init__(decls, default=None, help=f"{option.help} [{'; '.join(notes)}]", **kind)
        self.owned = owned
        self.ganzoo_group = group


KIND_WORDS = {"strategy": ("strategy", "strategies"), "input policy": ("policy", "policies"),
              "aggregation": ("aggregation", "aggregations"), OBSERVER: ("plugin", "plugins")}


def owner_words(owned: OwnedOption) -> str:
    """Who declares an option, by kind: "policies binary, pac", "policy gman, aggregation gman"."""
    by_kind: dict[str, list[str]] = {}
    for kind, name in owned.owners:
        by_kind.setdefault(kind, []).append(name)
    return ", ".join(f"{KIND_WORDS[kind][len(names) > 1]} {', '.join(names)}" for kind, names in by_kind.items())


def part_options(strategy: Strategy, known: dict[str, OwnedOption]) -> list[PartOption]:
    """Click options for every part option, grouped by the first kind that owns each one: the
    strategy's own first, then policies', aggregations' and observers'."""
    defaults = strategy.defaults.get("options", {})
    order = {kind: i for i, (kind, _) in enumerate(GROUPS)}
    made = []
    for key, owned in sorted(known.items(), key=lambda item: (min(order[k] for k, _ in item[1].owners), item[1].option.flag)):
        kinds = [k for k, name in owned.owners if k != "strategy" or name == strategy.name]
        if not kinds:
            continue  # another strategy's own option
        made.append(PartOption(owned, min(kinds, key=order.get), defaults.get(key)))
    return made


def take_part_values(values: dict[str, Any], known: dict[str, OwnedOption]) -> dict[str, Any]:
    """Remove the part options' values from a command's values; check them: {key: value given}."""
    given = {}
    for name in [n for n in values if n.startswith(PREFIX)]:
        value = values.pop(name)
        key = name[len(PREFIX):]
        if value is not None:
            check = known[key].option.check
            given[key] = check(value) if check is not None else value
    return given


class TrainCommand(click.Command):
    """``ganzoo train <strategy>``: its --help lists options under core, strategy, policy,
    aggregation and observers."""

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        for group, title in GROUPS:
            rows = [p.get_help_record(ctx) for p in self.get_params(ctx) if getattr(p, "ganzoo_group", "core") == group]
            rows = [r for r in rows if r is not None]
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)
