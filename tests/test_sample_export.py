"""Raw sample export (``ganzoo sample --format png-dir|npz``): the files FID tools read, what they
record, streaming in bounded chunks, atomic writes that never follow a planted link."""

from __future__ import annotations

import json
import os
import tracemalloc
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from ganzoo.runs.sample_export import export_samples, file_name
from ganzoo.runs.sampling import Draw, open_draw

from .helpers import TINY, invoke


@pytest.fixture(scope="module")
def run_dir(tiny_host, tmp_path_factory):
    """One two-generator run with its own z per generator, trained four steps on the tiny dataset."""
    out = tmp_path_factory.mktemp("export") / "run"
    result = invoke(tiny_host, "train", "psg", *TINY, "--n-gens", "2", "--no-shared-z", "--steps", "4", "--ema", "0",  # the trained weights
                    "--out", str(out), "--quiet")
    assert result.exit_code == 0, result.output
    return out


def png_pixels(path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image)


def test_png_dir_names_manifest_and_pixels_match_the_npz_and_the_grid(tiny_host, run_dir, tmp_path):
    folder, npz, grid = tmp_path / "pngs", tmp_path / "s.npz", tmp_path / "g.png"
    for fmt, out, said in (("png-dir", folder, "10 images from generators 1, 2 (raw weights)"),
                           ("npz", npz, "10 images from generators 1, 2 (raw weights)"), ("grid", grid, "(raw weights)")):
        result = invoke(tiny_host, "sample", str(run_dir), "--format", fmt, "--n", "5", "--seed", "7", "--out", str(out))
        assert result.exit_code == 0 and f"wrote {out}" in result.output and said in result.output, result.output

    names = sorted(os.listdir(folder))
    assert names == [*(f"g1-{i:06d}.png" for i in range(5)), *(f"g2-{i:06d}.png" for i in range(5)), "samples.json"]
    manifest = json.loads((folder / "samples.json").read_text())
    assert manifest["format"] == "png-dir" and manifest["seed"] == 7 and manifest["n_per_generator"] == 5
    assert manifest["step"] == 4 and manifest["weights"] == "raw" and manifest["generators"] == [1, 2]
    assert manifest["run"] == str(run_dir.resolve()) and manifest["ganzoo_version"]
    assert manifest["files"] == names[:-1] and manifest["generator"] == [1] * 5 + [2] * 5

    with np.load(npz, allow_pickle=False) as data:  # no pickle needed: plain arrays and a JSON string
        images, owners, meta = data["images"], data["generator"], json.loads(str(data["metadata"]))
    assert images.shape == (10, 28, 28, 1) and images.dtype == np.uint8  # (N, H, W, C), as PIL and clean-fid
    assert owners.tolist() == [1] * 5 + [2] * 5 and meta["format"] == "npz" and meta["seed"] == 7
    for k, name in enumerate(names[:-1]):
        assert np.array_equal(png_pixels(folder / name), images[k, :, :, 0])
    assert images.std() > 1 and not np.array_equal(images[0], images[5])  # generated, and two generators

    # the grid draws the same z: its first cell (after the 2-pixel pad) is sample 0 of generator 1
    assert np.array_equal(png_pixels(grid)[2:30, 2:30], images[0, :, :, 0])


def test_generator_choice_keeps_each_samples_z(tiny_host, run_dir, tmp_path):
    both, one = tmp_path / "both.npz", tmp_path / "one.npz"
    assert invoke(tiny_host, "sample", str(run_dir), "--format", "npz", "--n", "3", "--out", str(both)).exit_code == 0
    result = invoke(tiny_host, "sample", str(run_dir), "--format", "npz", "--n", "3", "--generator", "2", "--out", str(one))
    assert result.exit_code == 0 and "3 images from generator 2 " in result.output
    with np.load(both) as a, np.load(one) as b:
        assert np.array_equal(a["images"][3:], b["images"]) and b["generator"].tolist() == [2, 2, 2]


def test_large_exports_stream_in_bounded_chunks(tiny_host, run_dir, tmp_path):
    """20,000 images in chunks of 256: no generator call sees more than a chunk, and what Python
    holds at once stays far below the 15.7 MB of images the export writes. (A one-layer generator
    stands in for the run's, to keep the test quick: the export's streaming is what is tested.)"""
    run = open_draw(tiny_host, run_dir, generator=1)
    batches = []

    class Cheap(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(run.z_dim, 28 * 28)

        def forward(self, z):
            batches.append(len(z))
            return torch.tanh(self.layer(z)).view(-1, 1, 28, 28)

    draw = Draw(torch.nn.ModuleList([Cheap()]), (0,), run.z_dim, 1, (1, 28, 28), run.manifest)
    reports = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # 80 small matmuls: threads only contend with whatever else runs
    tracemalloc.start()
    try:
        export = export_samples(draw, run_dir, tmp_path / "big.npz", fmt="npz", count=20_000, chunk=256,
                                progress=lambda what, done, total: reports.append((what, done, total)))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        torch.set_num_threads(threads)
    assert export.images == 20_000
    assert max(batches) == 256 and sum(batches) == 20_000 and len(batches) == -(-20_000 // 256)
    assert len(reports) == len(batches) and reports[-1] == ("images written", 20_000, 20_000)
    assert peak < 4_000_000, peak
    with zipfile.ZipFile(tmp_path / "big.npz") as archive:  # stored, not one big in-memory array
        assert archive.getinfo("images.npy").file_size == 20_000 * 28 * 28 + 128
    with np.load(tmp_path / "big.npz", mmap_mode="r") as data:
        assert data["images"].shape == (20_000, 28, 28, 1) and data["images"][-1].std() > 0


def test_png_dir_is_written_whole_or_not_at_all(tiny_host, run_dir, tmp_path, monkeypatch):
    out = tmp_path / "pngs"
    draw = open_draw(tiny_host, run_dir)
    import ganzoo.runs.sample_export as export_module

    calls = []

    def png_then_fail(pixels):
        calls.append(1)
        if len(calls) == 7:
            raise KeyboardInterrupt
        return b"png"

    monkeypatch.setattr(export_module, "png_bytes", png_then_fail)
    with pytest.raises(KeyboardInterrupt):
        export_samples(draw, run_dir, out, fmt="png-dir", count=4, chunk=2)
    assert os.listdir(tmp_path) == []  # neither the target nor the temp folder is left
    monkeypatch.undo()

    export_samples(draw, run_dir, out, fmt="png-dir", count=2)
    export_samples(draw, run_dir, out, fmt="png-dir", count=3)  # an earlier export is replaced whole
    assert len(os.listdir(out)) == 2 * 3 + 1 and sorted(os.listdir(tmp_path)) == ["pngs"]


@pytest.mark.parametrize("fmt, name", [("png-dir", "pngs"), ("npz", "s.npz")])
def test_planted_links_and_foreign_targets_are_refused(tiny_host, run_dir, tmp_path, fmt, name):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("mine")
    link = tmp_path / name
    link.symlink_to(victim if fmt == "png-dir" else victim / "keep.txt")
    result = invoke(tiny_host, "sample", str(run_dir), "--format", fmt, "--n", "2", "--out", str(link))
    assert result.exit_code == 2 and "symbolic link" in result.stderr
    assert os.listdir(victim) == ["keep.txt"] and (victim / "keep.txt").read_text() == "mine"
    if fmt == "png-dir":  # a real folder of someone's files is not an earlier export: never replaced
        result = invoke(tiny_host, "sample", str(run_dir), "--format", fmt, "--n", "2", "--out", str(victim))
        assert result.exit_code == 2 and "not a ganzoo sample export" in result.stderr
        assert os.listdir(victim) == ["keep.txt"]
    assert sorted(os.listdir(tmp_path)) == sorted(["victim", name])  # no temp file left


def test_export_options_and_errors(tiny_host, run_dir, tmp_path):
    help_text = invoke(tiny_host, "sample", "--help").output
    assert "png-dir" in help_text and "npz" in help_text and "per generator" in help_text.lower()
    bad = [
        (["--format", "npz", "--columns", "4"], "--columns lays out a grid"),
        (["--format", "npz", "--seed", "-1"], "--seed"),
        (["--format", "png-dir", "--out", str(tmp_path / "no" / "such")], "does not exist"),
        (["--format", "npz", "--generator", "3"], "this run has 2 generators"),
        (["--format", "npz", "--n", str(10**12)], "on disk"),
    ]
    for args, message in bad:
        result = invoke(tiny_host, "sample", str(run_dir), *args)
        assert result.exit_code == 2 and message in result.stderr, (args, result.output)
    assert not (run_dir / "sample.npz").exists()
    assert file_name(2, 7, 10) == "g2-000007.png" and file_name(1, 5, 10**7 + 1) == "g1-00000005.png"
