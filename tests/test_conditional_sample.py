"""``ganzoo sample`` on class-conditional runs: ``--class`` (labels, names, lists, all), the class grid
(one row per class, a block per generator), labels in the npz and class subfolders in the png-dir, the
same z for sample i whatever the classes picked, and one-line errors (exit 2) before anything is
written. Real runs trained by real ``ganzoo train`` processes; the layouts' details on hand-built
generators."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganzoo.core.errors import GanzooError
from ganzoo.runs.sample_export import class_folders, export_samples
from ganzoo.runs.sampling import Draw, class_listing, pick_classes, write_grid
from tests.folders import digit_folder

CELL = 28 + 2  # a 28 px image and the grid's 2 px pad
WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
SORTED_WORDS = sorted(WORDS)  # a folder's classes are its subfolders, sorted: label k is SORTED_WORDS[k]


def ganzoo(*args: str, root: Path | None = None, ok: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    if root is not None:
        env["GANZOO_DATA"] = str(root)
    result = subprocess.run([sys.executable, "-m", "ganzoo", *args], capture_output=True, text=True, timeout=600, env=env)
    if ok:
        assert result.returncode == 0, result.stderr
    return result


def one_line_error(result: subprocess.CompletedProcess, *said: str) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and result.stdout == "", result.stderr
    for text in said:
        assert text in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """One conditional SNGAN on real MNIST (10 classes named by their labels), 30 steps."""
    out = tmp_path_factory.mktemp("conditional") / "run"
    ganzoo("train", "sngan", "--conditional", "--steps", "30", "--limit-data", "512", "--batch-size", "32",
           "--out", str(out), "--quiet")
    return out


@pytest.fixture(scope="module")
def named_run(tmp_path_factory):
    """A conditional SNGAN on a folder whose class subfolders are named by words, a few steps."""
    base = tmp_path_factory.mktemp("named")
    digit_folder(base / "digits", count=100, size=28, jpeg_every=0)
    for label, word in enumerate(WORDS):
        os.rename(base / "digits" / str(label), base / "digits" / word)
    ganzoo("train", "sngan", "--conditional", "--dataset", f"folder:{base / 'digits'}", "--channels", "1", "--steps", "4",
           "--batch-size", "16", "--out", str(base / "run"), "--quiet", root=base / "data")
    return base / "run", base / "data"


def npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:  # plain arrays: no pickle needed
        return {key: data[key] for key in data.files}


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image)


def cell(grid: np.ndarray, row: int, column: int, top: int = 0) -> np.ndarray:
    """The image at (row, column) of a grid block starting at pixel row ``top``."""
    y, x = top + 2 + row * CELL, 2 + column * CELL
    return grid[y:y + 28, x:x + 28]


def test_one_class_as_npz_has_its_labels_and_the_run_s_class_names(run_dir, tmp_path):
    out = tmp_path / "three.npz"
    result = ganzoo("sample", str(run_dir), "--class", "3", "--format", "npz", "--n", "6", "--out", str(out), "--quiet")
    assert result.stdout == f"wrote {out}: 6 images from generator 1, class 3 (ema weights)\n"
    data = npz(out)
    assert set(data) == {"images", "generator", "labels", "class_names", "metadata"}
    assert data["images"].shape == (6, 28, 28, 1) and data["images"].dtype == np.uint8
    assert data["labels"].tolist() == [3] * 6 and data["labels"].dtype == np.int64
    assert data["generator"].tolist() == [1] * 6
    assert data["class_names"].dtype.kind == "U" and data["class_names"].tolist() == [str(k) for k in range(10)]
    meta = json.loads(str(data["metadata"]))
    assert meta["classes"] == [3] and meta["n_per_class"] == 6 and meta["n_per_generator"] == 6
    assert meta["class_names"] == [str(k) for k in range(10)]
    assert data["images"].std() > 1


def test_the_class_grid_has_a_row_per_class_and_the_same_z_per_column(run_dir, tmp_path):
    grid, three, both = tmp_path / "all.png", tmp_path / "three.npz", tmp_path / "both.npz"
    result = ganzoo("sample", str(run_dir), "--out", str(grid), "--quiet")  # a conditional run's grid: every class
    assert result.stdout == (f"wrote {grid} (ema weights); one row per class, top to bottom: "
                             "0, 1, 2, 3, 4, 5, 6, 7, 8, 9\n")
    image = pixels(grid)
    assert image.shape == (10 * CELL + 2, 8 * CELL + 2)  # 10 rows of --n 8 (the default), --columns = --n

    # sample i keeps its z whatever the classes: row 3 of the grid is --class 3's samples. (Across
    # different --n only while n x z_dim is a multiple of 16: torch draws the last 16 normals of a
    # draw otherwise; z_dim is 100 here, so --n 4 and 8.)
    ganzoo("sample", str(run_dir), "--class", "3", "--format", "npz", "--n", "4", "--out", str(three), "--quiet")
    ganzoo("sample", str(run_dir), "--class", "7,3", "--format", "npz", "--n", "4", "--out", str(both), "--quiet")
    alone, pair = npz(three), npz(both)
    for i in range(4):
        assert np.array_equal(cell(image, 3, i), alone["images"][i, :, :, 0])
    assert pair["labels"].tolist() == [7] * 4 + [3] * 4  # in the order named
    assert np.array_equal(pair["images"][4:], alone["images"])
    assert np.array_equal(cell(image, 7, 0), pair["images"][0, :, :, 0])
    assert not np.array_equal(pair["images"][0], pair["images"][4])  # the class changes the image

    # --columns wraps each class on rows of its own; a named --n and the output line say so
    wrapped = tmp_path / "wrapped.png"
    result = ganzoo("sample", str(run_dir), "--class", "2,5", "--n", "4", "--columns", "3", "--out", str(wrapped), "--quiet")
    assert result.stdout == f"wrote {wrapped} (ema weights); 2 rows per class, top to bottom: 2, 5\n"
    image = pixels(wrapped)
    assert image.shape == (4 * CELL + 2, 3 * CELL + 2)
    for row in (1, 3):  # each class's last row: one image, then the background
        assert cell(image, row, 0).std() > 1 and (cell(image, row, 1) == 0).all() and (cell(image, row, 2) == 0).all()
    assert np.array_equal(cell(image, 1, 0), cell(pixels(tmp_path / "all.png"), 2, 3))  # class 2, sample 3
    assert np.array_equal(cell(image, 2, 0), cell(pixels(tmp_path / "all.png"), 5, 0))  # class 5, sample 0


def test_png_dir_has_a_subfolder_per_class(run_dir, tmp_path):
    out, flat = tmp_path / "pngs", tmp_path / "all.npz"
    result = ganzoo("sample", str(run_dir), "--format", "png-dir", "--n", "3", "--out", str(out), "--quiet")
    assert result.stdout == (f"wrote {out}: 30 images from generator 1, 3 of each of classes "
                             "0, 1, 2, 3, 4, 5, 6, 7, 8, 9 (ema weights)\n")
    assert sorted(os.listdir(out)) == sorted([*(str(k) for k in range(10)), "samples.json"])
    for k in range(10):
        assert sorted(os.listdir(out / str(k))) == ["g1-000000.png", "g1-000001.png", "g1-000002.png"]
    manifest = json.loads((out / "samples.json").read_text())
    assert manifest["files"][:4] == ["0/g1-000000.png", "0/g1-000001.png", "0/g1-000002.png", "1/g1-000000.png"]
    assert manifest["label"] == [k for k in range(10) for _ in range(3)] and manifest["generator"] == [1] * 30
    assert manifest["class_folders"] == [str(k) for k in range(10)] and manifest["classes"] == list(range(10))
    assert manifest["n_per_class"] == 3 and manifest["n_per_generator"] == 30
    ganzoo("sample", str(run_dir), "--class", "all", "--format", "npz", "--n", "3", "--out", str(flat), "--quiet")
    data = npz(flat)
    assert data["images"].shape == (30, 28, 28, 1) and data["labels"].tolist() == manifest["label"]
    for k, name in enumerate(manifest["files"]):  # the same pictures as the npz, file for file
        assert np.array_equal(pixels(out / name), data["images"][k, :, :, 0])


def test_class_names_from_a_folder_name_the_classes_and_the_subfolders(named_run, tmp_path):
    run, root = named_run
    out = tmp_path / "pngs"
    result = ganzoo("sample", str(run), "--class", "three, one", "--format", "png-dir", "--n", "2", "--out", str(out),
                    "--quiet", root=root)
    three, one = SORTED_WORDS.index("three"), SORTED_WORDS.index("one")
    assert result.stdout == f"wrote {out}: 4 images from generator 1, 2 of each of classes {three} (three), {one} (one) (ema weights)\n"
    assert sorted(os.listdir(out)) == ["one", "samples.json", "three"]
    assert sorted(os.listdir(out / "three")) == ["g1-000000.png", "g1-000001.png"]
    manifest = json.loads((out / "samples.json").read_text())
    assert manifest["class_names"] == SORTED_WORDS and manifest["class_folders"] == SORTED_WORDS
    assert manifest["label"] == [three, three, one, one] and manifest["classes"] == [three, one]

    by_name, by_label = tmp_path / "name.npz", tmp_path / "label.npz"
    ganzoo("sample", str(run), "--class", "seven", "--format", "npz", "--n", "2", "--out", str(by_name), "--quiet", root=root)
    ganzoo("sample", str(run), "--class", str(SORTED_WORDS.index("seven")), "--format", "npz", "--n", "2",
           "--out", str(by_label), "--quiet", root=root)
    named, labelled = npz(by_name), npz(by_label)
    assert np.array_equal(named["images"], labelled["images"]) and named["labels"].tolist() == [SORTED_WORDS.index("seven")] * 2
    assert named["class_names"].tolist() == SORTED_WORDS

    grid = tmp_path / "grid.png"
    result = ganzoo("sample", str(run), "--class", "nine", "--out", str(grid), "--quiet", root=root)
    assert result.stdout == f"wrote {grid} (ema weights); class {SORTED_WORDS.index('nine')} (nine)\n"
    assert pixels(grid).shape == (CELL + 2, 8 * CELL + 2)

    bad = ganzoo("sample", str(run), "--class", "thre", "--out", str(tmp_path / "x.png"), root=root, ok=False)
    line = one_line_error(bad, "unknown class 'thre'", "did you mean 'three'?", "10 classes (label: name)", "7: three")
    assert line.count(": ") >= 10
    bad = ganzoo("sample", str(run), "--class", "one,eleven", "--format", "npz", "--out", str(tmp_path / "x.npz"),
                 root=root, ok=False)
    one_line_error(bad, "unknown class 'eleven'", "4: one")
    assert sorted(os.listdir(tmp_path)) == ["grid.png", "label.npz", "name.npz", "pngs"]  # nothing written by an error


def test_errors_are_one_line_and_write_nothing(run_dir, tmp_path):
    for args, said in [
        (["--class", "10"], ["--class 10: no such label", "this run has 10 classes, the labels 0 to 9"]),
        (["--class", "-1", "--format", "npz"], ["unknown class '-1'", "the labels 0 to 9"]),
        (["--class", "cat", "--format", "png-dir"], ["unknown class 'cat'", "the labels 0 to 9"]),
        (["--class", "3,,4"], ["an empty class in the list"]),
        (["--class", "3", "--columns", "2", "--format", "npz"], ["--columns lays out a grid"]),
    ]:
        one_line_error(ganzoo("sample", str(run_dir), *args, "--out", str(tmp_path / "out"), ok=False), *said)
    assert os.listdir(tmp_path) == []


def test_an_unconditional_run_refuses_class_and_keeps_its_exports(tmp_path):
    run = tmp_path / "run"
    ganzoo("train", "sngan", "--steps", "2", "--limit-data", "64", "--batch-size", "32", "--out", str(run), "--quiet")
    for fmt in ("grid", "npz", "png-dir"):
        bad = ganzoo("sample", str(run), "--class", "3", "--format", fmt, "--out", str(tmp_path / "out"), ok=False)
        one_line_error(bad, "this run is not class-conditional")
    assert not (tmp_path / "out").exists()
    result = ganzoo("sample", str(run), "--format", "npz", "--n", "3", "--out", str(tmp_path / "s.npz"), "--quiet")
    assert result.stdout == f"wrote {tmp_path / 's.npz'}: 3 images from generator 1 (ema weights)\n"
    data = npz(tmp_path / "s.npz")
    assert set(data) == {"images", "generator", "metadata"}
    assert not {"classes", "class_names", "n_per_class"} & set(json.loads(str(data["metadata"])))
    result = ganzoo("sample", str(run), "--n", "3", "--out", str(tmp_path / "g.png"), "--quiet")
    assert result.stdout == f"wrote {tmp_path / 'g.png'} (ema weights)\n"
    assert pixels(tmp_path / "g.png").shape == (CELL + 2, 8 * CELL + 2)


# -- the layouts on hand-built conditional generators (no training) ----------------------------------

class TinyConditional(torch.nn.Module):
    """(z, y) -> (n, 1, 4, 4) images: a class embedding added to a linear map of z."""

    def __init__(self, classes: int, z_dim: int = 3):
        super().__init__()
        self.z = torch.nn.Linear(z_dim, 16)
        self.y = torch.nn.Embedding(classes, 16)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.z(z) + self.y(y)).view(-1, 1, 4, 4)


def tiny_draw(names: tuple[str, ...], n_gens: int = 2) -> Draw:
    torch.manual_seed(0)
    generators = torch.nn.ModuleList([TinyConditional(len(names)) for _ in range(n_gens)])
    return Draw(generators, tuple(range(n_gens)), 3, 1, (1, 4, 4), {"weights": "raw", "config": {}}, len(names), names)


def test_two_generators_give_a_block_of_class_rows_each(tmp_path):
    draw = tiny_draw(("a", "b", "c"))
    made = write_grid(draw, tmp_path / "g.png", labels=(2, 0), count=3, seed=5)
    assert (made.count, made.columns, made.labels, made.rows_per_class) == (3, 3, (2, 0), 1)
    image = pixels(tmp_path / "g.png")
    block = 2 * 6 + 2  # two class rows of 4 px images and 2 px pads
    assert image.shape == (2 * block + 6, 3 * 6 + 2)
    export_samples(draw, tmp_path, tmp_path / "s.npz", fmt="npz", count=3, seed=5, classes="c,a")
    data = npz(tmp_path / "s.npz")
    assert data["generator"].tolist() == [1] * 6 + [2] * 6 and data["labels"].tolist() == [2, 2, 2, 0, 0, 0] * 2
    for g in range(2):  # generator g's block: row r is class (2, 0)[r]
        for r in range(2):
            for i in range(3):
                y, x = g * (block + 6) + 2 + r * 6, 2 + i * 6
                assert np.array_equal(image[y:y + 4, x:x + 4], data["images"][g * 6 + r * 3 + i, :, :, 0])


def test_pick_classes_reads_labels_names_lists_and_all():
    draw = tiny_draw(("cat", "dog", "1", "a,b", " spaced"), n_gens=1)
    assert pick_classes(draw, None) == pick_classes(draw, "all") == pick_classes(draw, " ALL ") == (0, 1, 2, 3, 4)
    assert pick_classes(draw, "dog,0, cat,4") == (1, 0, 4)  # in order, each once, spaces around a token ignored
    assert pick_classes(draw, "1") == (2,)  # a name wins over the label that reads the same
    assert pick_classes(draw, "a,b") == (3,) and pick_classes(draw, " spaced") == (4,)  # whole names first
    with pytest.raises(GanzooError, match="no such label; this run has 5 classes \\(label: name\\): 0: cat"):
        pick_classes(draw, "5")
    plain = Draw(draw.generators, (0,), 3, 1, (1, 4, 4), {}, 0, ())
    assert pick_classes(plain, None) == ()
    with pytest.raises(GanzooError, match="not class-conditional"):
        pick_classes(plain, "all")
    many = tiny_draw(tuple(f"c{k}" for k in range(30)), n_gens=1)
    with pytest.raises(GanzooError) as error:
        pick_classes(many, "nope")
    assert "19: c19, ... (10 more)" in str(error.value) and "c20" not in str(error.value)
    assert class_listing(many.class_names, tuple(range(25))).endswith("19 (c19), ... (25 classes)")
    assert class_listing(tuple(str(k) for k in range(4)), (3, 1)) == "3, 1"


def test_class_folders_use_the_names_only_when_all_are_safe():
    assert class_folders(("cat", "dog_2", "Golden retriever", "a-b.c")) == ("cat", "dog_2", "Golden retriever", "a-b.c")
    for names in [("cat", "../up"), ("cat", ".hidden"), ("cat", "Cat"), ("cat", "a/b"), ("cat", "trailing."),
                  ("cat", "samples.json"), ("cat", ""), ("cat", "x" * 101), ("cat", "caf\u00e9")]:
        assert class_folders(names) == ("0", "1"), names
