"""Hostile folders through the real CLI (``ganzoo data prepare``, ``ganzoo train``): each ends in
exit 2 with one line and no traceback, or in a skip that the data manifest lists, never in a hang
(a timeout) or a half-written cache. See docs/own-images.md."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from ganzoo.core.errors import DataError
from ganzoo.plugins.datasets import folder as folder_cache
from ganzoo.plugins.datasets import folder_decode
from tests.folders import digit_folder, png_declaring
from tests.test_hostile import ganzoo


def prepare(folder: Path, root: Path, *extra: str, plain_user: bool = False) -> subprocess.CompletedProcess:
    return ganzoo("data", "prepare", f"folder:{os.fsdecode(folder)}", "--data-root", str(root), "--quiet", *extra,
                  plain_user=plain_user, timeout=60)


def refused(result: subprocess.CompletedProcess, pattern: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and pattern in lines[0], lines


def manifest(root: Path) -> dict:
    [path] = root.glob("folders/*/manifest.json")
    return json.loads(path.read_text())


def skipped(root: Path) -> dict[str, str]:
    return dict(manifest(root)["skipped"]["files"])


def good_images(folder: Path, count: int = 3) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.new("RGB", (16, 16), (40 * i, 0, 0)).save(folder / f"good-{i}.png")


def test_an_empty_folder_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    refused(prepare(tmp_path / "empty", tmp_path / "root"), "the folder is empty")
    assert not (tmp_path / "root").exists()


def test_a_folder_of_other_files_is_refused(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "notes.txt").write_text("hello")
    (folder / "data.csv").write_text("1,2")
    refused(prepare(folder, tmp_path / "root"), "no images under")


def test_a_missing_path_or_a_file_is_refused(tmp_path):
    refused(prepare(tmp_path / "nowhere", tmp_path / "root"), "folder not found")
    (tmp_path / "file.png").write_bytes(b"x")
    refused(prepare(tmp_path / "file.png", tmp_path / "root"), "is not a folder")


def test_corrupt_truncated_and_bomb_images_are_skipped_and_listed(tmp_path):
    folder = tmp_path / "photos"
    good_images(folder)
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG")
    noise = Image.frombytes("RGB", (16, 16), os.urandom(16 * 16 * 3))
    noise.save(folder / "whole.png")
    whole = (folder / "whole.png").read_bytes()
    (folder / "truncated.png").write_bytes(whole[:len(whole) // 2])  # the header intact, the pixels cut
    (folder / "whole.png").unlink()
    (folder / "bomb.png").write_bytes(png_declaring(100_000, 100_000))
    result = prepare(folder, tmp_path / "root")
    assert result.returncode == 0, result.stderr
    assert "skipped 3 file(s)" in result.stderr and "Traceback" not in result.stderr
    listed = skipped(tmp_path / "root")
    assert set(listed) == {"bomb.png", "corrupt.jpg", "truncated.png"}
    assert "decompression bomb" in listed["bomb.png"] and "truncated" in listed["truncated.png"]
    assert manifest(tmp_path / "root")["count"] == 3


def test_a_folder_of_nothing_but_a_bomb_is_refused(tmp_path):
    folder = tmp_path / "bomb"
    folder.mkdir()
    (folder / "bomb.png").write_bytes(png_declaring(100_000, 100_000))
    refused(prepare(folder, tmp_path / "root"), "none of the 1 images")


def test_unreadable_files_are_skipped(tmp_path):
    folder = tmp_path / "photos"
    good_images(folder)
    Image.new("RGB", (16, 16)).save(folder / "secret.png")
    (folder / "secret.png").chmod(0)  # unreadable to its owner, root without the capabilities that bypass that
    root = tmp_path / "root"
    result = prepare(folder, root, plain_user=True)
    assert result.returncode == 0, result.stderr
    assert skipped(root) == {"secret.png": "Permission denied"}


def test_an_unwritable_cache_place_is_refused(tmp_path):
    folder = tmp_path / "photos"
    good_images(folder)
    root = tmp_path / "read-only"
    root.mkdir()
    root.chmod(0o555)
    refused(prepare(folder, root, plain_user=True), "cannot write the folder cache")


def test_links_loops_fifos_devices_and_huge_files_neither_hang_nor_count_twice(tmp_path):
    folder = tmp_path / "photos"
    good_images(folder / "sub")
    (folder / "sub" / "up").symlink_to("..")  # a loop through the parent
    (folder / "again").symlink_to("sub")  # the same folder reached twice
    (folder / "self.png").symlink_to("self.png")  # a link to itself
    (folder / "gone.png").symlink_to("nowhere.png")
    (folder / "zero.png").symlink_to("/dev/zero")
    os.mkfifo(folder / "fifo.png")
    with open(folder / "huge.png", "wb") as sparse:  # 600 MiB that take no disk: never read
        sparse.truncate(600 << 20)
    started = time.monotonic()
    result = prepare(folder, tmp_path / "root")
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 30
    listed = skipped(tmp_path / "root")
    assert listed["self.png"] == "a link loop" and "No such file" in listed["gone.png"]
    assert listed["zero.png"] == "not a regular file (a character device)"
    assert listed["fifo.png"] == "not a regular file (a FIFO)"
    assert listed["huge.png"] == "629,145,600 bytes, above the 512 MiB limit"
    assert manifest(tmp_path / "root")["count"] == 3  # sub/ read once, though three paths reach it


def test_names_that_are_not_utf8_are_kept_and_shown_escaped(tmp_path):
    folder = tmp_path / "photos"
    good_images(folder, 1)
    os.rename(folder / "good-0.png", os.path.join(os.fsencode(folder), b"caf\xe9.png"))
    (folder / b"bad-\xff.jpg".decode("utf-8", "surrogateescape")).write_bytes(b"not an image")
    result = prepare(folder, tmp_path / "root")
    assert result.returncode == 0, result.stderr
    assert manifest(tmp_path / "root")["count"] == 1
    assert "bad-\\xff.jpg" in result.stderr and skipped(tmp_path / "root") == {"bad-\\xff.jpg": "not an image PIL can read"}
    lines = (next((tmp_path / "root").glob("folders/*/files-*.tsv"))).read_text().splitlines()
    assert lines[0].endswith("caf\\xe9.png")


def test_mixed_sizes_without_a_resolution_are_refused(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    Image.new("RGB", (28, 28)).save(folder / "a.png")
    Image.new("RGB", (64, 48)).save(folder / "b.png")
    refused(prepare(folder, tmp_path / "root"), "give --resolution R")
    assert prepare(folder, tmp_path / "root", "--resolution", "32").returncode == 0


def test_train_on_a_hostile_folder_ends_in_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    result = ganzoo("train", "sngan", "--dataset", f"folder:{tmp_path / 'empty'}", "--data-root", str(tmp_path / "root"),
                    "--steps", "1", "--out", str(tmp_path / "run"), "--quiet")
    refused(result, "the folder is empty")
    result = ganzoo("train", "sngan", "--dataset", "mnist", "--resolution", "32", "--out", str(tmp_path / "run"), "--quiet")
    refused(result, "--resolution applies to datasets that resize")
    assert not (tmp_path / "run").exists()


def test_a_folder_that_changes_while_it_is_prepared_leaves_no_cache(tmp_path, monkeypatch):
    folder = tmp_path / "photos"
    good_images(folder, 5)
    decodes = folder_decode.decodes

    def decode_then_change(*args):  # another program adds a file while the images are decoded
        out = decodes(*args)
        Image.new("RGB", (16, 16)).save(folder / "late.png")
        return out

    monkeypatch.setattr(folder_decode, "decodes", decode_then_change)
    with pytest.raises(DataError, match="changed while it was prepared"):
        folder_cache.prepare(str(folder), tmp_path / "root")
    [cache] = (tmp_path / "root" / "folders").iterdir()
    assert sorted(p.name for p in cache.iterdir()) == ["lock"]  # no manifest, no images, no partial files


def test_a_file_rewritten_while_it_is_read_is_noticed(tmp_path, monkeypatch):
    folder = tmp_path / "photos"
    good_images(folder, 5)
    read = folder_decode._read

    def read_after_a_rewrite(folder_, relpath, size, mtime_ns, *rest):
        if relpath == "good-2.png" and not rest:  # the decode, not the header
            Image.new("RGB", (16, 16), (9, 9, 9)).save(folder / relpath)
            os.utime(folder / relpath, ns=(mtime_ns + 10**9, mtime_ns + 10**9))
        return read(folder_, relpath, size, mtime_ns, *rest)

    monkeypatch.setattr(folder_decode, "_read", read_after_a_rewrite)
    with pytest.raises(DataError, match=r"changed while it was prepared \(good-2.png was modified\)"):
        folder_cache.prepare(str(folder), tmp_path / "root")


def test_a_killed_preparation_leaves_no_cache_and_the_next_one_builds_it(tmp_path):
    folder = tmp_path / "many"
    digit_folder(folder, count=2000, size=64, jpeg_every=0, classes=False)
    root = tmp_path / "root"
    command = [sys.executable, "-m", "ganzoo", "data", "prepare", f"folder:{folder}", "--data-root", str(root),
               "--resolution", "128", "--workers", "1", "--quiet"]
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not list(root.glob("folders/*/.images-*.partial")) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    child.send_signal(signal.SIGKILL)
    child.wait()
    [cache] = (root / "folders").iterdir()
    assert not (cache / "manifest.json").exists() and list(cache.glob(".images-*.partial"))
    assert folder_cache.read_manifest(cache) is None  # nothing to load: the next use builds it
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert manifest(root)["count"] == 2000 and not list(cache.glob(".*.partial"))


def test_a_damaged_cache_is_rebuilt(tmp_path):
    folder = tmp_path / "photos"
    good_images(folder, 4)
    cache, first, _ = folder_cache.prepare(str(folder), tmp_path / "root")
    images = cache / first["images_file"]
    images.write_bytes(images.read_bytes()[:-5])  # cut short
    _, again, built = folder_cache.prepare(str(folder), tmp_path / "root")
    assert built and again["sha256"] == first["sha256"]


def test_a_cache_manifest_edited_by_hand_is_rebuilt_not_trusted(tmp_path):
    folder = tmp_path / "photos"
    for label in ("a", "b"):
        good_images(folder / label, 2)
    cache, first, _ = folder_cache.prepare(str(folder), tmp_path / "root")
    edited = {**first, "classes": 7}
    (cache / "manifest.json").write_text(json.dumps(edited))
    _, again, built = folder_cache.prepare(str(folder), tmp_path / "root")
    assert built and again["classes"] == ["a", "b"]
