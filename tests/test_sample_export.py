"""Raw sample export (``ganzoo sample --format png-dir|npz``): the files FID tools read, what they
record, streaming in bounded chunks, atomic writes that never follow a planted link."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import signal
import subprocess
import sys
import time
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


# -- interrupted exports: SIGTERM, and what a SIGKILL left behind -----------------------------------

def start_export(run_dir, fmt: str, out, count: int = 50_000) -> subprocess.Popen:
    """``ganzoo sample RUN --format FMT`` in a subprocess, big enough (2 x 50,000 images) to be interrupted."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "ganzoo", "sample", str(run_dir), "--format", fmt, "--n", str(count),
                             "--out", str(out), "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def wait_for_writing(process: subprocess.Popen, out) -> str:
    """The name of the export's temp beside out, once the export has written into it."""
    pattern = re.compile(rf"\.{re.escape(out.name)}\.tmp-{process.pid}-[0-9a-f]{{8}}")
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        names = [n for n in os.listdir(out.parent) if pattern.fullmatch(n)]
        if names:
            temp = out.parent / names[0]
            with contextlib.suppress(FileNotFoundError):
                if (os.listdir(temp) if temp.is_dir() else temp.stat().st_size):  # images are being written
                    return names[0]
        time.sleep(0.02)
    raise AssertionError("the export never started writing")


@pytest.mark.parametrize("fmt, name, number, code, said", [
    ("npz", "s.npz", signal.SIGTERM, 143, "stopped by signal 15; nothing half-written is left behind\n"),
    ("png-dir", "pngs", signal.SIGTERM, 143, "stopped by signal 15; nothing half-written is left behind\n"),
    ("npz", "s.npz", signal.SIGINT, 130, "\ninterrupted\n"),  # as before (click writes a blank line on Ctrl-C)
])
def test_a_signal_during_an_export_removes_its_temp_and_exits_with_one_line(run_dir, tmp_path, fmt, name, number, code, said):
    out = tmp_path / name
    process = start_export(run_dir, fmt, out)
    try:
        temp = wait_for_writing(process, out)
        process.send_signal(number)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == code, (temp, stderr)
    assert stderr == said and stdout == ""  # one line, no traceback
    assert os.listdir(tmp_path) == []  # neither the temp nor the target


def test_a_later_export_removes_the_temps_of_dead_exports_and_nothing_else(tiny_host, run_dir, tmp_path):
    """A SIGKILL leaves the temp; the next export to the same target removes it, and any other temp
    of that target whose process is gone, when it holds only what an export writes. A temp whose
    process lives (this test, a child), one someone holds an flock on, a link, a look-alike name, a
    folder with foreign files and another target's temp are left alone."""
    npz, pngs = tmp_path / "s.npz", tmp_path / "pngs"
    process = start_export(run_dir, "npz", npz)
    try:
        killed = wait_for_writing(process, npz)
        process.kill()  # SIGKILL: no cleanup
        process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert (tmp_path / killed).stat().st_size > 0

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    with pytest.raises(ProcessLookupError):
        os.kill(dead.pid, 0)
    victim = tmp_path / "victim.txt"
    victim.write_text("mine")

    def plant(name: str, files: dict[str, str] | None = None) -> None:
        path = tmp_path / name
        if files is None:
            path.write_bytes(b"half an npz")
            return
        path.mkdir()
        for file, text in files.items():
            (path / file).parent.mkdir(exist_ok=True)
            (path / file).write_text(text)

    stale = [f".s.npz.tmp-{dead.pid}-0123abcd", f".pngs.tmp-{dead.pid}-0123abcd", f".pngs.tmp-{dead.pid}-0a0a0a0a"]
    plant(stale[0])
    plant(stale[1], {"g1-000000.png": "png", "g2-000003.png": "png", "samples.json": "{}"})
    plant(stale[2], {"3/g1-000000.png": "png", "cat/g2-000001.png": "png", "samples.json": "{}"})  # a conditional run's, by class
    kept = [
        f".s.npz.tmp-{os.getpid()}-0123abcd", f".s.npz.tmp-{alive.pid}-0123abcd",  # alive
        f".s.npz.tmp-{dead.pid}-0123ABCD", f".s.npz.tmp-{dead.pid}-0123abc", f".s.npz.tmp-x{dead.pid}-0123abcd",
        f".s.npz.tmp-{dead.pid}-0123abcd.tmp", ".s.npz.0123abcd.tmp", f"s.npz.tmp-{dead.pid}-0123abcd",  # not our names
        f".other.npz.tmp-{dead.pid}-0123abcd",  # another target's
        f".pngs.tmp-{dead.pid}-0b0b0b0b",  # a class subfolder holding a file no export writes
        f".pngs.tmp-{dead.pid}-fedcba98",  # a folder holding a file no export writes
        f".pngs.old-{dead.pid}-01234567",  # an earlier export set aside, while no newer one is in place
    ]
    for name in kept[:-3]:
        plant(name)
    plant(kept[-3], {"3/g1-000000.png": "png", "3/notes.txt": "mine"})
    plant(kept[-2], {"g1-000000.png": "png", "notes.txt": "mine"})
    plant(kept[-1], {})
    (tmp_path / kept[-1] / "previous").mkdir()
    (tmp_path / kept[-1] / "previous" / "samples.json").write_text("{}")
    locked = tmp_path / f".s.npz.tmp-{dead.pid}-aaaaaaaa"  # in use by a process this one cannot see
    plant(locked.name)
    link = tmp_path / f".s.npz.tmp-{dead.pid}-bbbbbbbb"
    link.symlink_to(victim)
    kept += [locked.name, link.name]
    try:
        with open(locked, "rb") as holder:
            fcntl.flock(holder, fcntl.LOCK_EX)
            for fmt, out in (("npz", npz), ("png-dir", pngs)):
                result = invoke(tiny_host, "sample", str(run_dir), "--format", fmt, "--n", "2", "--out", str(out))
                assert result.exit_code == 0, result.output
    finally:
        alive.kill()
        alive.wait()
    assert sorted(os.listdir(tmp_path)) == sorted([*kept, "victim.txt", "s.npz", "pngs"])  # the killed one and stale ones went
    assert victim.read_text() == "mine" and (tmp_path / kept[-4] / "notes.txt").read_text() == "mine"
    with np.load(npz) as data:
        assert data["images"].shape == (4, 28, 28, 1)

    # once a newer export is in place, an earlier one set aside by a dead process goes too
    result = invoke(tiny_host, "sample", str(run_dir), "--format", "png-dir", "--n", "3", "--out", str(pngs))
    assert result.exit_code == 0, result.output
    assert kept[-3] not in os.listdir(tmp_path) and len(os.listdir(pngs)) == 2 * 3 + 1
