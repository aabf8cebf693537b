"""Class-conditional runs (--conditional, acgan): labels through data, generators, policies,
aggregations, checkpoints and resumes, and a clean refusal from every part that cannot condition."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from ganzoo import hookimpl
from ganzoo.core.errors import DataError, GanzooError
from ganzoo.core.parts import Dataset, ImageData, NamedFactory, Supports
from ganzoo.core.tensorfile import read_tensor_file
from ganzoo.plugins.binary.binary_policy import BinaryPolicy
from ganzoo.runs.checkpoint import CHECKPOINT
from ganzoo.runs.models import make_discriminator, make_generator
from ganzoo.testing import TINY, invoke, make_host, registered, smoke_resume, smoke_train, tiny_images

HOST = make_host()
POLICIES = HOST.registry.names("input policy")
ARCHITECTURES = HOST.registry.names("architecture")
TINY_CLASSES = 4  # tiny_images: a square in one of four quadrants


def supports(name: str) -> Supports:
    return HOST.registry.get("input policy", name).supports


def conditional_settings(policy: str) -> dict:
    """A 2-generator conditional run of ``policy`` with an aggregation it accepts."""
    needs = supports(policy).requires
    aggregation = "algorithm1" if "tuple-pick" in needs else "mean"
    if policy == "gman":
        aggregation = "gman"
    return {"policy": policy, "aggregation": aggregation, "n_gens": max(2, supports(policy).min_gens), "conditional": True}


@pytest.mark.parametrize("policy", POLICIES)
def test_every_policy_conditions_or_refuses_in_one_line(policy, tmp_path):
    run = tmp_path / "run"
    if not supports(policy).conditional:
        with pytest.raises(GanzooError, match=rf"^input policy {policy} cannot condition on classes \(--conditional\); policies that can: "):
            smoke_train("sngan", steps=2, run_dir=run, **conditional_settings(policy))
        assert not run.exists()  # refused before anything was written
        return
    record = smoke_train("sngan", steps=2, run_dir=run, **conditional_settings(policy))
    assert record["step"] == 2 and all(torch.isfinite(torch.tensor(record["g_loss"])))
    manifest = read_tensor_file(run / CHECKPOINT)[1]
    assert manifest["config"]["conditional"] is True
    assert manifest["classes"] == TINY_CLASSES and manifest["class_names"] == ["0", "1", "2", "3"]


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_every_architecture_conditions_or_refuses(name):
    arch = HOST.registry.get("architecture", name)
    if not arch.conditional:
        with pytest.raises(GanzooError, match=rf"architecture '{name}' cannot condition on classes"):
            make_generator(arch, 8, 1, classes=3)
        return
    size, classes = arch.image_size, 5
    with torch.device("meta"):  # shapes only: the 128 px networks cost seconds on the CPU
        g = make_generator(arch, 16, 3, classes=classes)
        d = make_discriminator(arch, 3, classes=classes)
        head = make_discriminator(arch, 3, outputs=1 + classes)  # AC-GAN's class head
        y = torch.zeros(2, dtype=torch.long)
        images = g(torch.zeros(2, 16), y)
        assert images.shape == (2, 3, size, size)
        assert d(images, y).shape == (2,)
        assert head(images).shape == (2, 1 + classes)
    unconditional = make_generator(arch, 16, 3, classes=0)
    assert not any("embed" in key or "gamma" in key for key in unconditional.state_dict())


def test_labels_reach_the_policy_and_every_generator_is_asked_for_the_real_class(tmp_path):
    seen = []

    class Spy(BinaryPolicy):
        def __call__(self, discriminator, real, fakes, phase, labels=None):
            seen.append((real.clone(), labels.clone(), [f.detach().clone() for f in fakes]))
            return super().__call__(discriminator, real, fakes, phase, labels=labels)

    class SpyPlugin:
        @hookimpl
        def ganzoo_register_input_policies(self, register):
            register(NamedFactory("spy", "records labels", lambda config: Spy("hinge"), supports=Supports(conditional=True)))

    with registered(SpyPlugin()) as host:
        smoke_train("sngan", host=host, steps=2, run_dir=tmp_path / "run", policy="spy", n_gens=2, conditional=True, shared_z=True)
    images, labels = tiny_images(seed=0)
    assert len(seen) == 4  # (D phase, G phase) x 2 steps
    for real, given, fakes in seen:
        assert given.dtype == torch.long and given.shape == (16,)
        # each real image's label is the dataset's label of that image
        index = [int(torch.nonzero((images.float() / 127.5 - 1 == r).flatten(1).all(1))[0]) for r in real]
        assert torch.equal(given, labels[index])
        assert len(fakes) == 2 and fakes[0].shape == real.shape


def test_generators_make_what_they_are_asked_for(tmp_path):
    """The same z with different classes gives different images once the class embeddings have trained."""
    from ganzoo.runs.sampling import load_generators

    smoke_train("sngan", steps=4, run_dir=tmp_path / "run", conditional=True)
    generators, manifest = load_generators(HOST, tmp_path / "run", weights="raw")
    g = generators[0].eval()
    z = torch.randn(4, 100, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a, b = g(z, torch.zeros(4, dtype=torch.long)), g(z, torch.full((4,), 3))
    assert (a - b).abs().max() > 1e-4
    with pytest.raises(GanzooError, match="^this network is class-conditional: forward needs the labels y"):
        g(z)


@pytest.mark.parametrize("strategy, settings", [
    ("psg", {"n_gens": 2, "conditional": True}),  # acgan: tests/test_strategies.py resumes every strategy
])
def test_conditional_runs_resume_bit_exactly(strategy, settings, tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    smoke_train(strategy, steps=6, run_dir=straight, deterministic=True, checkpoint_every=3, **settings)
    smoke_train(strategy, steps=3, run_dir=split, deterministic=True, checkpoint_every=3, **settings)
    smoke_resume(split, steps=6)
    a, manifest = read_tensor_file(straight / CHECKPOINT)
    b, _ = read_tensor_file(split / CHECKPOINT)
    assert a.keys() == b.keys() and manifest["step"] == 6
    assert any(".embed" in k or "gamma" in k for k in a) or strategy == "acgan"
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_acgan_d_classifies_and_logs_its_head():
    record = smoke_train("acgan", steps=3)
    assert {"ac_real", "ac_fake", "ac_accuracy"} <= set(record["extras"])
    assert 0.0 <= record["extras"]["ac_accuracy"] <= 1.0
    assert record["extras"]["ac_real"] > 0  # a cross-entropy over 4 classes after 3 steps


def test_acgan_without_conditional_is_refused(tmp_path):
    with pytest.raises(GanzooError, match=r"^input policy acgan classifies images by class: it needs --conditional"):
        smoke_train("acgan", run_dir=tmp_path / "run", conditional=False)
    assert not (tmp_path / "run").exists()


class Unlabelled:
    @hookimpl
    def ganzoo_register_datasets(self, register):
        def load(argument, root, split):
            return ImageData(tiny_images(seed=0)[0], None, "unlabelled squares")

        register(Dataset("unlabelled", "tiny squares without labels", load))


def test_a_dataset_without_labels_is_refused_before_anything_is_written(tmp_path):
    with registered(Unlabelled()) as host, pytest.raises(DataError, match=r"^dataset 'unlabelled' has no labels, and --conditional needs them$"):
        smoke_train("sngan", host=host, run_dir=tmp_path / "run", dataset="unlabelled", conditional=True)
    assert not (tmp_path / "run").exists()


def test_an_unconditional_run_has_no_classes(tmp_path):
    smoke_train("sngan", steps=2, run_dir=tmp_path / "run")
    tensors, manifest = read_tensor_file(tmp_path / "run" / CHECKPOINT)
    assert "classes" not in manifest and manifest["config"]["conditional"] is False
    assert not any("embed" in key for key in tensors)


def test_sample_grids_have_a_row_per_class(tmp_path):
    from PIL import Image

    smoke_train("sngan", steps=2, run_dir=tmp_path / "run", conditional=True, sample_count=8)
    grid = Image.open(next((tmp_path / "run" / "samples").glob("epoch-*.png")))
    # 8 samples of 4 classes: 2 columns, 4 rows of 28 px images with 2 px padding
    assert grid.size == (2 * 30 + 2, 4 * 30 + 2)


def test_conditional_cli_refusals_are_one_line_and_exit_2(tmp_path):
    folder = tmp_path / "flat"
    folder.mkdir()
    from PIL import Image

    for k in range(8):
        Image.new("L", (28, 28), color=k * 30).save(folder / f"{k}.png")
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "ganzoo", "train", "sngan", "--conditional", "--steps", "2", "--dataset", f"folder:{folder}",
           "--data-root", str(tmp_path / "data"), "--out", str(run), "--quiet"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last == f"error: dataset 'folder:{folder}' has no labels, and --conditional needs them (a folder's classes are its first-level subfolders)"
    assert not run.exists()


def test_list_shows_which_parts_can_condition():
    listing = json.loads(invoke(HOST, "list", "--json").stdout)
    by_name = {kind: {row["name"]: row for row in rows} for kind, rows in listing.items()}
    assert by_name["architectures"]["dcgan28"]["conditional"] is True
    assert by_name["architectures"]["resnet128"]["conditional"] is True
    assert by_name["policies"]["tuple"]["conditional"] is True
    assert by_name["policies"]["madgan"]["conditional"] is False
    assert by_name["strategies"]["psg"]["conditional"] is True and by_name["strategies"]["acgan"]["conditional"] is True
    assert by_name["strategies"]["acgan"]["defaults"]["conditional"] is True
    assert "conditional" not in by_name["datasets"][TINY]


def test_conditional_is_fixed_on_resume(tmp_path):
    smoke_train("sngan", steps=2, run_dir=tmp_path / "run")
    with pytest.raises(GanzooError, match="cannot change --conditional when resuming"):
        smoke_resume(tmp_path / "run", steps=4, conditional=True)


def test_the_dataset_classes_must_not_change_on_resume(tmp_path):
    classes = {"count": 4}

    class Shifting:
        @hookimpl
        def ganzoo_register_datasets(self, register):
            def load(argument, root, split):
                images, labels = tiny_images(seed=0)
                return ImageData(images, labels % classes["count"], "squares with a changing number of classes")

            register(Dataset("shifting", "tiny squares", load))

    run = tmp_path / "run"
    with registered(Shifting()) as host:
        smoke_train("sngan", host=host, steps=2, run_dir=run, dataset="shifting", conditional=True)
        classes["count"] = 3
        with pytest.raises(GanzooError, match=r"^this run was trained on 4 classes, but shifting has 3 now"):
            smoke_resume(run, host=host, steps=4)


def test_the_python_api_samples_by_class(tmp_path):
    from ganzoo import api

    smoke_train("sngan", steps=2, run_dir=tmp_path / "run", conditional=True)
    picked = api.sample(tmp_path / "run", n=2, classes="1,3", host=HOST)
    every = api.sample(tmp_path / "run", n=2, host=HOST)
    assert picked.shape == (1, 2, 2, 28, 28, 1) and every.shape == (1, TINY_CLASSES, 2, 28, 28, 1)
    assert (picked[0, 1] == every[0, 3]).all() and (picked[0, 0] == every[0, 1]).all()
    smoke_train("sngan", steps=2, run_dir=tmp_path / "plain")
    with pytest.raises(GanzooError, match="this run is not class-conditional"):
        api.sample(tmp_path / "plain", n=2, classes=1, host=HOST)
