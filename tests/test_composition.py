"""Parts compose from the CLI (plugin API 0.3): --policy and --aggregation on every strategy, options
that belong to the part that declares them, the policy's phase and extra scalars, and what a
combination of parts may refuse, before anything is written."""

from __future__ import annotations

import json
import math
import textwrap

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

from ganzoo.cli.main import cli
from ganzoo.core.compose import check_composition, new_config
from ganzoo.core.errors import GanzooError
from ganzoo.core.host import load_host
from ganzoo.plugins.binary.binary_policy import binary_losses
from ganzoo.runs.checkpoint import read_checkpoint
from ganzoo.runs.rundir import read_metrics
from ganzoo.testing import make_host, smoke_train

TINY = ["--dataset", "tiny", "--batch-size", "16", "--device", "cpu", "--log-every", "1"]
POLICIES = ("tuple", "binary", "pac", "madgan", "mgan")
AGGREGATIONS = ("mean", "independent", "algorithm1", "gman")


def invoke(host, *args):
    return CliRunner().invoke(cli, list(args), obj=host)


def test_psg_with_a_binary_d_is_the_papers_other_reading(tiny_host, tmp_path):
    run_dir = tmp_path / "run"
    result = invoke(tiny_host, "train", "psg", "--policy", "binary", *TINY, "--steps", "3", "--out", str(run_dir), "--json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert len(record["g_loss"]) == 2 and record["chance"] == 0.5  # N generators; each image right or wrong on its own
    tensors, manifest = read_checkpoint(run_dir)
    assert manifest["parts"]["input policy"] == {"name": "binary", "plugin": "binary"}
    # psg's EMA; every option of the parts in use, at its declared default unless psg sets it: the binary policy's loss, bce
    assert manifest["config"]["options"] == {"ema": 0.999, "ema_warmup": True, "loss": "bce", "r1": 0.0, "tensorboard": ""}
    assert tensors["discriminator.net.0.weight"].shape[1] == 1  # D scores one image at a time


def test_a_swapped_in_part_does_not_take_the_recipe_of_the_part_it_replaced(tiny_host):
    """psg's R1 and R2 are a recipe for its tuple policy: --policy binary, which also takes --r1,
    trains without it unless asked (the binary reading with R1 30 was worse: docs/results/psg-study)."""
    registry = tiny_host.registry
    assert new_config(registry, "psg", None, {"dataset": "tiny"}).options["r1"] == 30.0
    assert new_config(registry, "psg", None, {"dataset": "tiny", "policy": "binary"}).options["r1"] == 0.0
    assert new_config(registry, "psg", None, {"dataset": "tiny", "policy": "binary"}, {"r1": 5}).options["r1"] == 5.0
    kept = new_config(registry, "psg", None, {"dataset": "tiny", "aggregation": "independent"}).options  # the tuple policy stays
    assert (kept["r1"], kept["r2"], kept["ema"]) == (30.0, 30.0, 0.999)
    assert new_config(registry, "rpgan", None, {"dataset": "tiny", "policy": "binary"}).options["r1"] == 0.0


def test_binary_losses_for_n_generators_are_the_real_term_plus_the_mean_of_the_fake_terms():
    scores = torch.tensor([[2.0, -1.0], [0.5, -3.0], [-1.0, 1.0]])  # rows: real, G_1, G_2; two tuples
    out = binary_losses(scores, "bce")
    want_d = F.softplus(-scores[0]) + (F.softplus(scores[1]) + F.softplus(scores[2])) / 2
    assert torch.allclose(out.d_losses, want_d)
    assert torch.allclose(out.g_losses, F.softplus(-scores[1:]))  # each G_i's non-saturating loss
    # accuracy: the share of the N + 1 images on the right side of 0 (tuple 1: real yes, G_1 no, G_2 yes)
    assert out.correct.tolist() == pytest.approx([2 / 3, 1 / 3]) and out.chance == 0.5


@pytest.mark.parametrize("policy", POLICIES)
def test_every_compatible_policy_and_aggregation_pair_trains_and_every_other_is_refused(tiny_host, policy, tmp_path):
    registry = tiny_host.registry
    for aggregation in AGGREGATIONS:
        settings = {"dataset": "tiny", "policy": policy, "aggregation": aggregation, "n_gens": 2, "steps": 2,
                    "batch_size": 16, "device": "cpu"}
        config = new_config(registry, "psg", None, settings)
        try:
            check_composition(registry, config)
        except GanzooError as refused:
            assert aggregation == "algorithm1" and policy != "tuple", refused
            out = tmp_path / f"{policy}-{aggregation}"
            result = invoke(tiny_host, "train", "psg", "--policy", policy, "--aggregation", aggregation, *TINY, "--out", str(out))
            assert result.exit_code == 2 and "needs an input policy that provides tuple-pick" in result.stderr
            assert len(result.stderr.splitlines()) == 1 and not out.exists()
            continue
        record = smoke_train("psg", host=tiny_host, steps=2, policy=policy, aggregation=aggregation, n_gens=2)
        assert record["step"] == 2 and all(math.isfinite(v) for v in record["g_loss"]), (policy, aggregation)


def test_an_option_of_a_part_not_in_use_is_refused_naming_the_part(tiny_host, tmp_path):
    cases = [
        (["train", "sngan", "--gman-lambda", "3"], "--gman-lambda belongs to input policy gman, aggregation gman, which this run does not use"),
        (["train", "psg", "--loss", "hinge"], "--loss belongs to input policy binary, input policy pac"),
        (["train", "psg", "--pack", "2"], "--pack belongs to input policy pac"),
        (["train", "dcgan", "--beta", "0.1"], "--beta belongs to input policy mgan"),
    ]
    for args, message in cases:
        out = tmp_path / "never"
        result = invoke(tiny_host, *args, *TINY, "--out", str(out))
        assert result.exit_code == 2 and message in result.stderr, (args, result.stderr)
        assert len(result.stderr.splitlines()) == 1 and not out.exists()
    used = invoke(tiny_host, "train", "psg", "--policy", "binary", "--loss", "hinge", *TINY, "--steps", "1",
                  "--out", str(tmp_path / "hinge"), "--json")
    assert used.exit_code == 0, used.output
    assert read_checkpoint(tmp_path / "hinge")[1]["config"]["options"] == {"loss": "hinge", "ema": 0.999, "ema_warmup": True, "r1": 0.0,
                                                                          "tensorboard": ""}
    with_gman = invoke(tiny_host, "train", "sngan", "--aggregation", "gman", "--gman-lambda", "3", *TINY, "--steps", "1",
                       "--out", str(tmp_path / "gman"), "--json")
    assert with_gman.exit_code == 0, with_gman.output
    assert read_checkpoint(tmp_path / "gman")[1]["config"]["options"] == {"loss": "hinge", "gman_lambda": 3.0, "ema": 0.999,
                                                                         "ema_warmup": True, "r1": 0.0, "tensorboard": ""}


def test_a_config_file_may_set_part_options_at_the_top_level_and_is_held_to_the_same_rules(tiny_host, tmp_path):
    nope = tmp_path / "nope.toml"
    nope.write_text('loss = "nope"\n')
    refused = invoke(tiny_host, "train", "psg", "--config", str(nope), *TINY, "--out", str(tmp_path / "a"))
    assert refused.exit_code == 2 and "--loss (in the config file) belongs to input policy binary" in refused.stderr
    bad_value = invoke(tiny_host, "train", "psg", "--policy", "binary", "--config", str(nope), *TINY, "--out", str(tmp_path / "b"))
    assert bad_value.exit_code == 2 and "--loss must be one of hinge, bce, got 'nope'" in bad_value.stderr
    hinge = tmp_path / "hinge.toml"
    hinge.write_text('policy = "binary"\nloss = "hinge"\nn_gens = 3\n')
    ok = invoke(tiny_host, "train", "psg", "--config", str(hinge), *TINY, "--steps", "1", "--out", str(tmp_path / "c"), "--json")
    assert ok.exit_code == 0, ok.output
    config = read_checkpoint(tmp_path / "c")[1]["config"]
    assert (config["policy"], config["n_gens"], config["options"]) == ("binary", 3, {"loss": "hinge", "ema": 0.999, "ema_warmup": True,
                                                                                 "r1": 0.0, "tensorboard": ""})
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_strategy_defaults_for_parts_not_in_use_are_dropped(tiny_host):
    config = new_config(tiny_host.registry, "sngan", None, {"policy": "tuple", "dataset": "tiny"})
    # sngan's hinge loss belongs to the binary policy; its EMA (an observer's) stays; the tuple policy's r1, r2 and temperature at their defaults
    assert config.options == {"ema": 0.999, "ema_warmup": True, "r1": 0.0, "r2": 0.0, "temperature": 1.0, "tensorboard": ""}
    assert new_config(tiny_host.registry, "sngan", None, {"dataset": "tiny"}).options == {"loss": "hinge", "ema": 0.999, "ema_warmup": True,
                                                                                         "r1": 0.0, "tensorboard": ""}
    assert new_config(tiny_host.registry, "pacgan", None, {"dataset": "tiny"}).options == {"loss": "bce", "pack": 2, "ema": 0.0,
                                                                                          "ema_warmup": False, "tensorboard": ""}


R1_PLUGIN = textwrap.dedent('''
    """A policy that needs double backward: the non-saturating binary loss plus R1 on D's real scores."""
    import torch
    import torch.nn.functional as F

    from ganzoo import hookimpl
    from ganzoo.core.parts import NamedFactory, PolicyOutput, Supports

    PHASES = []

    class R1Policy:
        def __call__(self, discriminator, real, fakes, phase):
            PHASES.append(phase)
            if phase == "discriminator":
                real = real.detach().requires_grad_(True)
            scores = discriminator(torch.cat([real, *fakes])).view(len(fakes) + 1, real.shape[0])
            d_losses = F.softplus(-scores[0]) + F.softplus(scores[1:]).mean(0)
            g_losses = F.softplus(-scores[1:])
            extras = {}
            if phase == "discriminator":  # R1 runs in D's update only
                grad, = torch.autograd.grad(scores[0].sum(), real, create_graph=True)
                r1 = grad.square().flatten(1).sum(1)
                d_losses = d_losses + 5.0 * r1
                extras = {"r1": r1.mean()}
            correct = ((scores[0] > 0).float() + (scores[1:] < 0).float().sum(0)) / scores.shape[0]
            return PolicyOutput(d_losses, g_losses, g_losses, scores.argmax(0), correct, 0.5, extras=extras)

    @hookimpl
    def ganzoo_register_input_policies(register):
        register(NamedFactory("r1", "binary BCE with R1 on D", lambda config: R1Policy(),
                              supports=Supports(double_backward=True)))
''')


def test_a_policy_is_told_the_phase_and_its_extra_scalars_are_logged(tmp_path):
    from ganzoo.core.plugin_import import load_plugin_file
    from ganzoo.testing import TinyData

    path = tmp_path / "r1_plugin.py"
    path.write_text(R1_PLUGIN)
    module = load_plugin_file(path)
    host = load_host(plugins=[TinyData(), module])
    run_dir = tmp_path / "run"
    logs = tmp_path / "tb"
    result = invoke(host, "train", "dcgan", "--policy", "r1", "--n-dis", "2", *TINY, "--steps", "3", "--out", str(run_dir),
                    "--tensorboard", str(logs), "--json")
    assert result.exit_code == 0, result.output
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(logs))
    events.Reload()
    assert [e.step for e in events.Scalars("train/r1")] == [1, 2, 3]  # logged at every logging point (--log-every 1)
    assert module.PHASES == ["discriminator", "discriminator", "generator"] * 3  # n_dis D updates, then the generators'
    record = json.loads(result.stdout)
    assert set(record["extras"]) == {"r1"} and record["extras"]["r1"] > 0
    assert read_metrics(run_dir)[-1]["extras"] == record["extras"]
    assert record["d_loss"] > 0  # R1 is in D's loss, and only there; it is logged apart as well
    compiled = invoke(host, "train", "dcgan", "--policy", "r1", "--compile", *TINY, "--out", str(tmp_path / "compiled"))
    assert compiled.exit_code == 2
    assert compiled.stderr == "error: input policy r1 needs double backward (a gradient penalty), which --compile does not support; drop --compile\n"
    assert not (tmp_path / "compiled").exists()


def test_the_extras_of_a_resumed_epoch_continue_exactly(tmp_path):
    from ganzoo.core.plugin_import import load_plugin_file
    from ganzoo.testing import TinyData

    path = tmp_path / "r1_plugin.py"
    path.write_text(R1_PLUGIN)
    host = load_host(plugins=[TinyData(), load_plugin_file(path)])
    once, twice = tmp_path / "once", tmp_path / "twice"
    base = ["--policy", "r1", *TINY, "--deterministic", "--json"]
    assert invoke(host, "train", "dcgan", *base, "--steps", "5", "--out", str(once)).exit_code == 0
    assert invoke(host, "train", "dcgan", *base, "--steps", "2", "--checkpoint-every", "2", "--out", str(twice)).exit_code == 0
    resumed = invoke(host, "train", "dcgan", "--resume", str(twice), "--steps", "5", "--json")
    assert resumed.exit_code == 0, resumed.output
    assert json.loads(resumed.stdout)["extras"] == json.loads(invoke(host, "train", "dcgan", *base, "--steps", "5",
                                                                      "--out", str(tmp_path / "again")).stdout)["extras"]
    assert read_metrics(once)[-1]["extras"] == read_metrics(twice)[-1]["extras"]


def test_disabling_sngan_leaves_dcgan_and_every_other_binary_user_working(tmp_path):
    host = make_host()
    assert "binary" in host.registry.names("input policy")
    off = load_host(environ={"GANZOO_DISABLE_PLUGINS": "sngan"}, plugins=[__import__("ganzoo.testing").testing.TinyData()])
    assert "sngan" not in off.registry.names("strategy") and off.registry.entry("input policy", "binary").plugin == "binary"
    result = invoke(off, "train", "dcgan", *TINY, "--steps", "1", "--out", str(tmp_path / "run"), "--json")
    assert result.exit_code == 0, result.output


def test_resuming_a_run_of_a_disabled_plugin_says_it_is_disabled(tiny_host, tmp_path):
    from ganzoo.testing import TinyData

    run_dir = tmp_path / "run"
    assert invoke(tiny_host, "train", "madgan", *TINY, "--steps", "1", "--out", str(run_dir)).exit_code == 0
    off = load_host(environ={"GANZOO_DISABLE_PLUGINS": "madgan"}, plugins=[TinyData()])
    result = invoke(off, "train", "psg", "--resume", str(run_dir), "--steps", "2")
    assert result.exit_code == 2  # the strategy's own command is gone; psg's refuses another strategy's run
    assert "is a madgan run; resume it with: ganzoo train madgan" in result.stderr
    gone = invoke(off, "train", "madgan", "--resume", str(run_dir))
    assert gone.exit_code == 2 and "plugins not loaded: madgan (named in GANZOO_DISABLE_PLUGINS)" in gone.stderr


LEGACY_PLUGIN = textwrap.dedent('''
    """A plugin written against plugin API 0.2, as docs/plugins.md showed it then."""
    import click

    from ganzoo import hookimpl
    from ganzoo.parts import Strategy, TrainOption
    from ganzoo.train_options import number_check

    STRATEGY = Strategy("old", "a 0.2 strategy", {"policy": "old-binary", "n_gens": 1, "loss": "hinge"})


    class OldPolicy:  # 0.2: no phase argument, and the loss read from config.loss
        def __init__(self, loss):
            self.loss = loss

        def __call__(self, discriminator, real, fakes):
            import torch
            import torch.nn.functional as F
            from ganzoo.parts import PolicyOutput

            scores = discriminator(torch.cat([real, *fakes])).view(len(fakes) + 1, real.shape[0])
            assert self.loss == "hinge"
            d = F.relu(1 - scores[0]) + F.relu(1 + scores[1:]).mean(0)
            return PolicyOutput(d, -scores[1:], -scores[1:], scores.argmax(0), (scores[0] > 0).float(), 0.5)
    OPTIONS = [
        TrainOption("--noise-level", "noise_level", "a 0.2 strategy option", type=float, check=number_check(0, 1, flag="--noise-level")),
        click.option("--n-gens", type=int, default=None, help="0.2 plugins re-declared core options"),
    ]

    @hookimpl
    def ganzoo_register_strategies(register):
        register(STRATEGY)

    @hookimpl
    def ganzoo_register_input_policies(register):
        from ganzoo.parts import NamedFactory

        register(NamedFactory("old-binary", "a 0.2 policy", lambda config: OldPolicy(config.loss)))

    @hookimpl
    def ganzoo_register_commands(register):
        from ganzoo.train_command import strategy_command

        register(strategy_command(STRATEGY, OPTIONS), group="train")
''')


def test_a_plugin_written_against_the_02_api_keeps_working_with_a_one_line_warning(tmp_path):
    path = tmp_path / "old_plugin.py"
    path.write_text(LEGACY_PLUGIN)
    run_dir = tmp_path / "run"
    with pytest.warns(DeprecationWarning, match="ganzoo.parts is ganzoo.core.parts"):
        result = CliRunner().invoke(cli, ["--plugin", str(path), "train", "old", "--noise-level", "0.5", "--dataset", "mnist",
                                          "--limit-data", "64", "--batch-size", "16", "--steps", "1", "--device", "cpu",
                                          "--out", str(run_dir), "--quiet"])
    assert result.exit_code == 0, result.output
    assert read_checkpoint(run_dir)[1]["config"]["options"] == {"loss": "hinge", "noise_level": 0.5, "ema": 0.0, "ema_warmup": False,
                                                                 "tensorboard": ""}
    warnings = [line for line in result.stderr.splitlines() if "plugin API 0.2" in line]
    assert len(warnings) == 1 and "docs/plugins.md" in warnings[0]
    with pytest.warns(DeprecationWarning):
        from ganzoo.cli import cli as old_cli  # 0.2's path of the click group
        from ganzoo.trainer import Trainer
    assert old_cli is cli and Trainer.__module__ == "ganzoo.training.trainer"
