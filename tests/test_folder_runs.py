"""Training, sampling, evaluating and reporting on a folder of real image files: the CLI end to end,
the architecture chosen by resolution, Inception FID against the folder or a held-apart one, bit-exact
resume, and a resume refused when the folder's images changed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from ganzoo.core.errors import DataError, GanzooError
from ganzoo.core.tensorfile import read_tensor_file
from ganzoo.testing import make_host, smoke_resume, smoke_train
from tests.folders import digit_folder


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """A labelled training folder of 96 digits at 32 px (PNG and JPEG) and a held-apart one of 24."""
    base = tmp_path_factory.mktemp("folders")
    digit_folder(base / "train", count=96, size=32)
    digit_folder(base / "test", count=24, size=32, split="test")
    return base


def ganzoo(*args: str, root: Path) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "ganzoo", *args], capture_output=True, text=True, timeout=600,
                            env={**__import__("os").environ, "GANZOO_DATA": str(root)})
    assert result.returncode == 0, result.stderr
    return result


@pytest.mark.slow  # five real processes, two Inception evaluations: about 30 s on 2 cores
def test_train_sample_eval_and_report_on_a_folder(folders, tmp_path):
    run, root = tmp_path / "run", tmp_path / "data"
    ganzoo("train", "sngan", "--dataset", f"folder:{folders / 'train'}", "--resolution", "32", "--steps", "4",
           "--batch-size", "8", "--out", str(run), "--quiet", root=root)
    config = (run / "config.toml").read_text()
    assert 'architecture = "resnet32"' in config  # chosen by the resolution
    ganzoo("sample", str(run), "--n", "4", "--quiet", root=root)
    assert Image.open(run / "sample.png").size[0] >= 4 * 32
    # Inception takes ~0.25 s an image on 2 CPU cores: a handful of samples and real images
    result = json.loads(ganzoo("eval", str(run), "--n", "6", "--n-real", "8", "--json", root=root).stdout)
    protocol = result["protocol"]
    assert protocol["extractor"] == "inception" and protocol["dataset"] == f"folder:{folders / 'train'}"
    assert protocol["n_real"] == 8 and protocol["extractor_protocol"].startswith("clean")
    assert 0 < result["fid"] < 10_000
    held = json.loads(ganzoo("eval", str(run), "--n", "6", "--n-real", "6", "--reference", f"folder:{folders / 'test'}", "--json",
                             root=root).stdout)
    assert held["protocol"]["dataset"] == f"folder:{folders / 'test'}" and held["protocol"]["n_real"] == 6
    assert held["fid"] != result["fid"]
    assert json.loads((run / "eval-inception.json").read_text())["fid"] == result["fid"]
    assert json.loads((run / "eval-inception-reference.json").read_text())["fid"] == held["fid"]
    ganzoo("report", str(run), root=root)
    html = (run / "report.html").read_text()
    assert "inception-reference" in html and str(folders / "test") in html  # both evaluations, the reference named


def test_psg_with_two_generators_trains_at_64px_with_the_resnets(folders, tmp_path):
    host = make_host()
    record = smoke_train("psg", host=host, steps=2, n_gens=2, batch_size=4, dataset=f"folder:{folders / 'train'}",
                         resolution=64, data_root=str(tmp_path), run_dir=tmp_path / "run")
    assert all(torch.isfinite(torch.tensor(v)) for v in record["g_loss"]) and record["step"] == 2
    assert 'architecture = "resnet64"' in (tmp_path / "run" / "config.toml").read_text()


def test_resume_on_a_folder_is_bit_exact_and_refused_when_the_images_changed(folders, tmp_path):
    host = make_host()
    settings = {"dataset": f"folder:{folders / 'train'}", "resolution": 32, "arch": "cnn32", "batch_size": 8,
                "data_root": str(tmp_path / "data"), "deterministic": True}
    smoke_train("sngan", host=host, steps=4, run_dir=tmp_path / "straight", **settings)
    smoke_train("sngan", host=host, steps=2, run_dir=tmp_path / "resumed", **settings)
    smoke_resume(tmp_path / "resumed", host=host, steps=4)
    straight, _ = read_tensor_file(tmp_path / "straight" / "checkpoint.safetensors")
    resumed, _ = read_tensor_file(tmp_path / "resumed" / "checkpoint.safetensors")
    assert straight.keys() == resumed.keys()
    assert all(torch.equal(straight[k], resumed[k]) for k in straight if not k.startswith("rng."))

    changed = tmp_path / "changed"
    digit_folder(changed, count=40, size=32)
    smoke_train("sngan", host=host, steps=2, run_dir=tmp_path / "victim", **{**settings, "dataset": f"folder:{changed}"})
    Image.new("RGB", (32, 32), (9, 9, 9)).save(changed / "0" / "new.png")
    with pytest.raises(GanzooError, match="is not the data this run trained on"):
        smoke_resume(tmp_path / "victim", host=host, steps=4)


def test_eval_every_scores_a_folder_run_with_inception(folders, tmp_path):
    record = smoke_train("sngan", steps=2, batch_size=8, dataset=f"folder:{folders / 'test'}", resolution=32, arch="cnn32",
                         data_root=str(tmp_path), eval_every_steps=2, eval_n=6, eval_n_real=8)
    protocol = record["eval_protocol"]
    assert protocol["extractor"] == "inception" and protocol["n_real"] == 8 and protocol["extractor_protocol"].startswith("clean")
    assert record["fid"] > 0


def test_the_architecture_follows_the_resolution(folders, tmp_path):
    host = make_host()
    record = smoke_train("sngan", host=host, steps=1, batch_size=8, dataset=f"folder:{folders / 'test'}", resolution=28,
                         data_root=str(tmp_path), run_dir=tmp_path / "run28")
    assert record["step"] == 1 and 'architecture = "dcgan28"' in (tmp_path / "run28" / "config.toml").read_text()
    with pytest.raises(DataError, match=r"no architecture makes 40x40 images \(sizes with one: 28, 32, 48, 64, 128\)"):
        smoke_train("sngan", host=host, steps=1, batch_size=8, dataset=f"folder:{folders / 'test'}", resolution=40,
                    data_root=str(tmp_path))
    with pytest.raises(DataError, match="'cnn32' makes 32x32 images, not --resolution 64"):
        smoke_train("sngan", host=host, steps=1, dataset=f"folder:{folders / 'test'}", resolution=64, arch="cnn32",
                    data_root=str(tmp_path))


@pytest.mark.slow  # two tiny runs, each evaluated with Inception during and after training: minutes on 2 cores
def test_compare_on_a_folder_trains_evaluates_and_reports_with_inception(folders, tmp_path):
    out = tmp_path / "cmp"
    ganzoo("compare", "sngan --arch cnn32 --batch-size 8", "psg --n-gens 2 --arch cnn32 --batch-size 8", "--dataset", f"folder:{folders / 'test'}",
           "--resolution", "32", "--seeds", "1", "--epochs", "1", "--eval-every", "1", "--eval-n", "6", "--final-n", "6",
           "--out", str(out), root=tmp_path / "data")
    state = json.loads((out / "compare.json").read_text())
    assert state["settings"]["features"] == "inception" and state["settings"]["resolution"] == 32
    for label in ("sngan-arch-cnn32-batch-size-8", "psg-n-gens-2-arch-cnn32-batch-size-8"):
        final = json.loads((out / "runs" / label / "seed-0" / "eval-inception.json").read_text())
        assert final["protocol"]["dataset"] == f"folder:{folders / 'test'}" and final["protocol"]["n_real"] == 24 and final["fid"] > 0
    assert "inception" in (out / "report.md").read_text()
