"""Every hook: documented exactly as specified, and exercised by a test of its own (test_hook_<name>)."""

from __future__ import annotations

import inspect
import json
import re
import sys
from pathlib import Path
from typing import ClassVar

import click
import pytest
import torch
from click.testing import CliRunner

from ganzoo import hookimpl
from ganzoo.cli.main import cli
from ganzoo.core import hookdoc
from ganzoo.core.config import make_config
from ganzoo.core.errors import GanzooError, PluginError
from ganzoo.core.parts import Architecture, Dataset, Extractor, ImageData, NamedFactory, Objective, Strategy, TrainOption
from ganzoo.runs.checkpoint import read_checkpoint
from ganzoo.testing import registered, smoke_resume, smoke_train, tiny_images
from ganzoo.training.trainer import Trainer
from tests.helpers import TINY

PLUGINS_MD = Path(__file__).resolve().parent.parent / "docs" / "plugins.md"


def trainer_for(host, strategy="dcgan", run_dir=None, **settings):
    defaults = host.registry.get("strategy", strategy).defaults
    base = {"dataset": "tiny", "batch_size": 16, "steps": 3, "device": "cpu", "sample_count": 4, "log_every": 1}
    # run_dir is only written by run() and save(); tests that only build a trainer never touch it
    return Trainer(make_config(strategy, defaults, base, settings), host, run_dir or Path("never-written"))


# -- the reference ------------------------------------------------------------------------------


def test_every_hook_is_in_the_reference_with_its_exact_signature():
    text = PLUGINS_MD.read_text(encoding="utf-8")
    documented = dict(re.findall(r"^#### `(ganzoo_\w+)(\(.*\))`$", text, flags=re.MULTILINE))
    for name, function in hookdoc.hook_specs():
        assert name in documented, f"{name} is missing from docs/plugins.md"
        assert documented[name] == str(inspect.signature(function)), f"{name}: docs say {documented[name]}"
    assert set(documented) == {name for name, _ in hookdoc.hook_specs()}  # nothing documented that is gone


def test_the_reference_is_the_rendering_of_the_docstrings():
    block = hookdoc.documented_block(PLUGINS_MD.read_text(encoding="utf-8"))
    assert block == hookdoc.render(), "run: python -m ganzoo.core.hookdoc --write docs/plugins.md"
    for name, function in hookdoc.hook_specs():
        doc = inspect.getdoc(function)
        assert ".. versionadded::" in doc, name
        for parameter in inspect.signature(function).parameters:
            assert f":param {parameter}:" in doc, (name, parameter)


def test_every_hook_has_a_test_of_its_own():
    tests = {name for name in vars(sys.modules[__name__]) if name.startswith("test_hook_")}
    assert tests == {f"test_hook_{name}" for name, _ in hookdoc.hook_specs()}


def test_hookdoc_write_replaces_only_the_block(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(f"before\n{hookdoc.BEGIN}\nstale\n{hookdoc.END}\nafter\n")
    assert hookdoc.main(["--write", str(page)]) == 0
    assert page.read_text() == f"before\n{hookdoc.render()}\nafter\n"
    (tmp_path / "plain.md").write_text("no markers")
    assert hookdoc.main(["--write", str(tmp_path / "plain.md")]) == 2


# -- registration hooks -------------------------------------------------------------------------


def test_hook_ganzoo_register_strategies(tiny_host):
    class P:
        @hookimpl
        def ganzoo_register_strategies(self, register):
            register(Strategy("psg-four", "PSG with four generators", {"policy": "tuple", "n_gens": 4}))

    with registered(P(), tiny_host, name="four") as host:
        assert host.registry.entry("strategy", "psg-four").plugin == "four"
        assert smoke_train("psg-four", host=host, steps=1)["chance"] == pytest.approx(1 / 5)
    assert "psg-four" not in tiny_host.registry.names("strategy")  # gone with the plugin


def test_hook_ganzoo_register_input_policies(tiny_host):
    calls = []

    def policy(discriminator, real, fakes):
        from ganzoo.plugins.binary.binary_policy import binary_losses

        calls.append(len(fakes))
        scores = discriminator(torch.cat([real, *fakes])).view(len(fakes) + 1, real.shape[0])
        return binary_losses(scores, "bce")

    class P:
        @hookimpl
        def ganzoo_register_input_policies(self, register):
            register(NamedFactory("counting", "binary BCE that counts its calls", lambda config: policy))

    with registered(P(), tiny_host) as host:
        smoke_train("dcgan", host=host, steps=2, policy="counting", n_gens=2)
    assert calls == [2, 2, 2, 2]  # one D step and one G step per generator step


def test_hook_ganzoo_register_aggregations(tiny_host):
    seen: ClassVar[list] = []

    def first_only(out):
        seen.append(tuple(out.g_losses.shape))
        return Objective(out.g_losses_own[0].mean())  # the own view: G_2 gets no gradient at all

    class P:
        @hookimpl
        def ganzoo_register_aggregations(self, register):
            register(NamedFactory("first-only", "only generator 1 learns", lambda config: first_only))

    with registered(P(), tiny_host) as host:
        trainer = trainer_for(host, "psg", aggregation="first-only", n_gens=2, steps=1)
        before = [g.net[0].weight.detach().clone() for g in trainer.generators]
        trainer.train_step()
    assert seen == [(2, 16), (2, 16)]
    assert not torch.equal(before[0], trainer.generators[0].net[0].weight)
    assert torch.equal(before[1], trainer.generators[1].net[0].weight)  # its loss had no weight


def test_hook_ganzoo_register_architectures(tiny_host):
    class Flat(torch.nn.Module):
        def __init__(self, z_dim, channels):
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Linear(z_dim, 28 * 28 * channels), torch.nn.Tanh(), torch.nn.Unflatten(1, (channels, 28, 28)))

        def forward(self, z):
            return self.net(z)

    def critic(channels):
        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(28 * 28 * channels, 1), torch.nn.Flatten(0))

    class P:
        @hookimpl
        def ganzoo_register_architectures(self, register):
            register(Architecture("mlp28", "one linear layer each", 28, Flat, critic))

    with registered(P(), tiny_host) as host:
        trainer = trainer_for(host, arch="mlp28")
        assert isinstance(trainer.generators[0], Flat)
        assert sum(p.numel() for p in trainer.discriminator.parameters()) == 28 * 28 + 1
        with pytest.raises(GanzooError, match="'mlp28' gives one logit per image, but this input policy needs 3"):
            trainer_for(host, "madgan", arch="mlp28", n_gens=2)


def test_hook_ganzoo_register_datasets(tiny_host):
    class P:
        @hookimpl
        def ganzoo_register_datasets(self, register):
            register(Dataset("inverted", "tiny squares, dark on light", lambda argument, root, split: ImageData(
                255 - tiny_images(64)[0], None, "inverted tiny squares")))

    with registered(P(), tiny_host) as host:
        trainer = trainer_for(host, dataset="inverted")
    assert trainer.data_source == "inverted tiny squares"
    assert trainer.batches.images.shape == (64, 1, 28, 28) and trainer.batches.images.float().mean() > 200


def test_hook_ganzoo_register_commands(tiny_host):
    class P:
        @hookimpl
        def ganzoo_register_commands(self, register):
            register(click.Command("hello", callback=lambda: click.echo("hello from a plugin")), group="root")

    with registered(P(), tiny_host) as host:
        result = CliRunner().invoke(cli, ["hello"], obj=host)
    assert result.exit_code == 0 and result.stdout == "hello from a plugin\n"


def test_hook_ganzoo_register_extractors(tiny_host):
    def load(request):
        raise AssertionError("not loaded by registration")

    class P:
        @hookimpl
        def ganzoo_register_extractors(self, register):
            register(Extractor("pixels", "raw pixels as features", load))

    with registered(P(), tiny_host, name="pixel-plugin") as host:
        assert host.registry.entry("extractor", "pixels").plugin == "pixel-plugin"
        listing = json.loads(CliRunner().invoke(cli, ["list", "extractors", "--json"], obj=host).stdout)
    assert {"name": "pixels", "plugin": "pixel-plugin", "distribution": "", "summary": "raw pixels as features"} in listing["extractors"]


def test_hook_ganzoo_register_train_options(tiny_host, tmp_path):
    def check(value):
        if value < 0:
            raise GanzooError(f"--noise must be 0 or more, got {value}")
        return value

    class P:
        @hookimpl
        def ganzoo_register_train_options(self, register):
            register(TrainOption("--noise", "noise", "Instance noise.", type=float, check=check, default=0.0))

    run_dir = tmp_path / "run"
    with registered(P(), tiny_host) as host:
        for strategy in ("dcgan", "psg", "lsgan"):  # every strategy command gets it
            assert "--noise FLOAT" in CliRunner().invoke(cli, ["train", strategy, "--help"], obj=host).stdout
        ok = CliRunner().invoke(cli, ["train", "dcgan", *TINY, "--steps", "1", "--noise", "0.5", "--out", str(run_dir), "--json"], obj=host)
        assert ok.exit_code == 0, ok.output
        # dcgan's loss, and ours; every other option of the parts in use (and observers) at its declared default
        assert read_checkpoint(run_dir)[1]["config"]["options"] == {"loss": "bce", "noise": 0.5, "r1": 0.0, "ema": 0.0,
                                                                     "ema_warmup": False, "tensorboard": ""}
        bad = CliRunner().invoke(cli, ["train", "dcgan", *TINY, "--noise", "-1", "--out", str(tmp_path / "bad")], obj=host)
        assert bad.exit_code == 2 and bad.stderr == "error: --noise must be 0 or more, got -1.0\n"
        assert not (tmp_path / "bad").exists()
        again = CliRunner().invoke(cli, ["train", "dcgan", "--resume", str(run_dir), "--steps", "2", "--noise", "1"], obj=host)
        assert again.exit_code == 2 and "cannot change --noise when resuming" in again.stderr
    assert "--noise" not in CliRunner().invoke(cli, ["train", "dcgan", "--help"], obj=tiny_host).stdout


def test_a_plugin_option_that_takes_a_core_or_another_parts_flag_makes_its_plugin_broken(tiny_host, tmp_path):
    class Steps:
        @hookimpl
        def ganzoo_register_train_options(self, register):
            register(TrainOption("--steps", "other_steps", "clashes with the core's --steps", type=int))

    class Beta:
        @hookimpl
        def ganzoo_register_train_options(self, register):
            register(TrainOption("--beta", "other_beta", "clashes with the mgan policy's --beta", type=float))

    run_dir = tmp_path / "run"
    with registered(Steps(), tiny_host, name="steps-plugin") as host, registered(Beta(), host, name="beta-plugin"):
        rows = {row["name"]: row for row in json.loads(CliRunner().invoke(cli, ["plugins", "--json"], obj=host).stdout)}
        assert rows["steps-plugin"]["status"] == "broken" and "collides with ganzoo train's own --steps" in rows["steps-plugin"]["error"]
        assert rows["beta-plugin"]["status"] == "broken"
        assert "--beta is already declared by input policy mgan for another setting" in rows["beta-plugin"]["error"]
        result = CliRunner().invoke(cli, ["train", "mgan", *TINY, "--n-gens", "2", "--steps", "1", "--beta", "0.5",
                                          "--out", str(run_dir), "--json"], obj=host)
        assert result.exit_code == 0, result.output
        _, manifest = read_checkpoint(run_dir)
        assert manifest["step"] == 1  # --steps is the core's, --beta the mgan policy's
        assert manifest["config"]["options"] == {"mgan_beta": 0.5, "share_layers": True, "ema": 0.0, "ema_warmup": False, "tensorboard": ""}


# -- observer hooks -----------------------------------------------------------------------------


class Recorder:
    def __init__(self):
        self.calls = []


def test_hook_ganzoo_run_observers(tiny_host, tmp_path):
    """Each run gets its own observers; they are called after the plugins' own implementations, and
    may answer ganzoo_sampling_weights; a method that is no run hook names the plugin."""
    order: list = []

    class Counter:  # one per run: its count is that run's alone
        def __init__(self, trainer):
            self.steps, self.started_at = 0, trainer.step

        def ganzoo_on_step_end(self, step):  # an observer may take fewer arguments than the hook passes
            self.steps += 1
            order.append(("observer", step))

        def ganzoo_sampling_weights(self, trainer):
            return None  # not an answer: the trained weights are shown

    class P:
        made: ClassVar[list] = []

        @hookimpl
        def ganzoo_run_observers(self, trainer):
            counter = Counter(trainer)
            self.made.append(counter)
            return [counter]

        @hookimpl
        def ganzoo_on_step_end(self, step):
            order.append(("plugin", step))

    with registered(P(), tiny_host, name="counting") as host:
        smoke_train("dcgan", host=host, steps=3, run_dir=tmp_path / "a")
        smoke_train("dcgan", host=host, steps=2)
        smoke_resume(tmp_path / "a", host=host, steps=4)
    # made before a checkpoint is restored (step 0 even in the resume), each counting its own run's steps
    assert [(c.started_at, c.steps) for c in P.made] == [(0, 3), (0, 2), (0, 1)]
    assert order[:2] == [("plugin", 1), ("observer", 1)]  # the plugins' implementations first, then the run's observers

    class Typo:
        def ganzoo_on_stepend(self, trainer, step):
            pass

    class MakesTypos:
        @hookimpl
        def ganzoo_run_observers(self, trainer):
            return Typo()

    with registered(MakesTypos(), tiny_host, name="typos") as host, \
            pytest.raises(PluginError, match="plugin 'typos': its run observer Typo has a method ganzoo_on_stepend"):
        smoke_train("dcgan", host=host, steps=1)


def test_hook_ganzoo_on_models_built(tiny_host):
    class P:
        @hookimpl
        def ganzoo_on_models_built(self, trainer):
            # before the optimizers: tie the generators' last layers, and the optimizers follow
            assert trainer.g_optimizers == [] and trainer.state.d_optimizers == {}
            trainer.generators[1].net[-2] = trainer.generators[0].net[-2]

    with registered(P(), tiny_host) as host:
        trainer = trainer_for(host, "psg", n_gens=2)
    shared = trainer.generators[0].net[-2].weight
    assert trainer.generators[1].net[-2].weight is shared
    owners = [i for i, o in enumerate(trainer.g_optimizers) for group in o.param_groups for p in group["params"] if p is shared]
    assert owners == [0]  # a shared parameter is stepped by one optimizer only


def test_hook_ganzoo_on_train_start(tiny_host, tmp_path):
    class P:
        seen: ClassVar[list] = []

        @hookimpl
        def ganzoo_on_train_start(self, trainer):
            self.seen.append((trainer.step, trainer.total_steps, (trainer.run_dir / "samples").is_dir()))

    with registered(P(), tiny_host) as host:
        smoke_train("dcgan", host=host, steps=2, run_dir=tmp_path / "run")
        smoke_resume(tmp_path / "run", host=host, steps=3)
    assert P.seen == [(0, 2, True), (2, 3, True)]  # also after a resume, at the resumed step


def test_hook_ganzoo_on_step_end(tiny_host):
    class P:
        seen: ClassVar[list] = []

        @hookimpl
        def ganzoo_on_step_end(self, trainer, step):
            self.seen.append((step, trainer.step, trainer.latest.get("d_loss") is not None))

    with registered(P(), tiny_host) as host:
        smoke_train("dcgan", host=host, steps=3)
    assert P.seen == [(1, 1, True), (2, 2, True), (3, 3, True)]


def test_hook_ganzoo_on_epoch_end(tiny_host):
    class P:
        seen: ClassVar[list] = []

        @hookimpl
        def ganzoo_on_epoch_end(self, trainer, epoch, metrics):
            self.seen.append((epoch, metrics["step"], metrics["partial"], trainer.run_dir.joinpath("metrics.jsonl").exists()))

    with registered(P(), tiny_host) as host:
        smoke_train("dcgan", host=host, steps=17)  # 8 steps an epoch: two whole epochs, then a partial one
    assert P.seen == [(1, 8, False, True), (2, 16, False, True)]


def test_hook_ganzoo_on_checkpoint_saved(tiny_host):
    class P:
        seen: ClassVar[list] = []

        @hookimpl
        def ganzoo_on_checkpoint_saved(self, trainer, path):
            self.seen.append((trainer.step, path.name, read_checkpoint(path)[1]["step"]))

    with registered(P(), tiny_host) as host:
        smoke_train("dcgan", host=host, steps=3, checkpoint_every=2)
    assert P.seen == [(2, "checkpoint.safetensors", 2), (3, "checkpoint.safetensors", 3)]


def test_legacy_hook_ganzoo_on_checkpoint_save(tiny_host, tmp_path):
    """The 0.2 name of ganzoo_add_checkpoint_tensors (ganzoo.core.compat): still called, with a DeprecationWarning at registration."""
    with pytest.warns(DeprecationWarning, match="ganzoo_add_checkpoint_tensors since plugin API 0.3"):
        class Old:
            @hookimpl
            def ganzoo_on_checkpoint_save(self, trainer, tensors):
                tensors["old.steps"] = torch.tensor([trainer.step])

        with registered(Old(), tiny_host) as host:
            smoke_train("dcgan", host=host, steps=2, run_dir=tmp_path / "run")
    assert read_checkpoint(tmp_path / "run")[0]["old.steps"].tolist() == [2]


def test_hook_ganzoo_add_checkpoint_tensors(tiny_host, tmp_path):
    class P:
        @hookimpl
        def ganzoo_add_checkpoint_tensors(self, trainer, tensors):
            tensors["counter.steps"] = torch.tensor([trainer.step])

    with registered(P(), tiny_host) as host:
        smoke_train("dcgan", host=host, steps=3, run_dir=tmp_path / "run")
    tensors, _ = read_checkpoint(tmp_path / "run")
    assert tensors["counter.steps"].tolist() == [3] and "sample_z" in tensors

    class Clobber:
        @hookimpl
        def ganzoo_add_checkpoint_tensors(self, trainer, tensors):
            tensors["sample_z"] = torch.zeros(1)

    with registered(Clobber(), tiny_host) as host, pytest.raises(PluginError, match="names the trainer's state uses: sample_z"):
        smoke_train("dcgan", host=host, steps=1)


def test_hook_ganzoo_on_checkpoint_load(tiny_host, tmp_path):
    class P:
        loaded: ClassVar[list] = []

        @hookimpl
        def ganzoo_add_checkpoint_tensors(self, trainer, tensors):
            tensors["counter.steps"] = torch.tensor([trainer.step * 10])

        @hookimpl
        def ganzoo_on_checkpoint_load(self, trainer, tensors):
            self.loaded.append((trainer.step, tensors["counter.steps"].item()))

    with registered(P(), tiny_host) as host:
        smoke_train("dcgan", host=host, steps=2, run_dir=tmp_path / "run")
        assert P.loaded == []
        smoke_resume(tmp_path / "run", host=host, steps=3)
    assert P.loaded == [(2, 20)]


def test_run_observers_are_closed_once_however_the_run_ends(tiny_host, tmp_path):
    closed: list = []

    class Observer:
        def __init__(self, fail_at, close_fails):
            self.fail_at, self.close_fails = fail_at, close_fails

        def ganzoo_on_step_end(self, step):
            if step == self.fail_at:
                raise RuntimeError("observer failed")

        def close(self):
            closed.append(self.fail_at)
            if self.close_fails:
                raise OSError("disk gone")

    class P:
        fail_at, close_fails = 0, False

        @hookimpl
        def ganzoo_run_observers(self, trainer):
            return Observer(self.fail_at, self.close_fails)

    plugin = P()
    with registered(plugin, tiny_host, name="closing") as host:
        smoke_train("dcgan", host=host, steps=2, run_dir=tmp_path / "done")
        assert closed == [0]
        plugin.fail_at = 2
        with pytest.raises(PluginError, match="plugin 'closing' raised in ganzoo_on_step_end at step 2"):
            smoke_train("dcgan", host=host, steps=3)
        assert closed == [0, 2]
        plugin.fail_at = 0
        with pytest.raises(GanzooError, match="cannot change --lr when resuming"):
            smoke_resume(tmp_path / "done", host=host, lr=0.1)  # refused before any run is built
        assert closed == [0, 2]
        with pytest.raises(GanzooError, match="already at step 2"):
            smoke_resume(tmp_path / "done", host=host, steps=2)  # refused once the run is built: its observer is closed
        assert closed == [0, 2, 0]
        plugin.close_fails = True  # a close() that fails is reported, but never hides why a run failed
        with pytest.raises(PluginError, match="plugin 'closing' raised in its run observer's close\\(\\): OSError: disk gone"):
            smoke_train("dcgan", host=host, steps=2)
        plugin.fail_at = 1
        with pytest.raises(PluginError, match="raised in ganzoo_on_step_end at step 1: RuntimeError: observer failed"):
            smoke_train("dcgan", host=host, steps=2)
        assert closed == [0, 2, 0, 0, 1]


def test_hook_ganzoo_sampling_weights(tiny_host, tmp_path):
    """Grids (and evaluations) show the offered weights; the trained weights are not touched."""
    import numpy as np
    from PIL import Image

    class Zeros:
        @hookimpl
        def ganzoo_sampling_weights(self, trainer):
            return "zeros", [{k: torch.zeros_like(v) for k, v in g.state_dict().items()} for g in trainer.generators]

    smoke_train("dcgan", host=tiny_host, steps=2, run_dir=tmp_path / "plain")
    with registered(Zeros(), tiny_host) as host:
        smoke_train("dcgan", host=host, steps=2, run_dir=tmp_path / "zeros")
    plain, zeros = (np.asarray(Image.open(tmp_path / run / "samples" / "epoch-0001.png")) for run in ("plain", "zeros"))
    assert len(np.unique(plain)) > 10 and len(np.unique(zeros)) <= 2  # zero weights draw one grey (and the padding)
    trained = [read_checkpoint(tmp_path / run)[0] for run in ("plain", "zeros")]
    assert all(torch.equal(trained[0][k], trained[1][k]) for k in trained[0] if k.startswith("generator."))

    class Boom:
        @hookimpl
        def ganzoo_sampling_weights(self, trainer):
            raise ValueError("no weights today")

    with registered(Boom(), tiny_host) as host, pytest.raises(PluginError, match="ganzoo_sampling_weights at step 2: ValueError") as raised:
        smoke_train("dcgan", host=host, steps=2, run_dir=tmp_path / "boom")
    # it failed half-way through the run's end: the end finishes (grid with the trained weights,
    # checkpoint written) and the run stops with a checkpoint of that step
    assert "checkpoint saved at step 2" in str(raised.value)
    assert (tmp_path / "boom" / "checkpoint.safetensors").exists()


def test_hook_ganzoo_on_train_end(tiny_host):
    class P:
        seen: ClassVar[list] = []

        @hookimpl
        def ganzoo_on_train_end(self, trainer, metrics):
            self.seen.append((trainer.step, metrics["step"], metrics["partial"]))

    with registered(P(), tiny_host) as host:
        record = smoke_train("dcgan", host=host, steps=3)
    assert P.seen == [(3, 3, True)] and record["step"] == 3
