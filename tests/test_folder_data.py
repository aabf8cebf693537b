"""folder:PATH: real PNG and JPEG files decoded into a memory-mapped cache, with class labels from
subfolders; every kind of image converted the documented way; the cache noticed stale and rebuilt."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganzoo.core.data import load_data
from ganzoo.core.errors import DataError
from ganzoo.plugins.datasets import folder as folder_cache
from tests.folders import digit_folder, image_bytes


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    folder = tmp_path_factory.mktemp("digits")
    return folder, digit_folder(folder, count=120, size=32)


def load(host, spec, root, **settings):
    return load_data(host.registry, spec, root, **settings)


def test_a_labelled_folder_of_pngs_and_jpegs_loads_as_its_pixels(host, digits, tmp_path):
    folder, written = digits
    data = load(host, f"folder:{folder}", tmp_path)
    names = sorted(written, key=os.fsencode)
    assert data.images.shape == (120, 3, 32, 32) and data.images.dtype == torch.uint8
    assert data.classes == tuple(str(k) for k in range(10))
    assert data.labels.tolist() == [int(name.split("/")[0]) for name in names]
    for i, name in enumerate(names):
        got = data.images[i].permute(1, 2, 0).numpy().astype(int)
        if name.endswith(".png"):  # lossless and already 32 px: the very pixels written
            assert np.array_equal(got, written[name])
        else:  # JPEG: what PIL decodes from the file, and close to what was written
            assert np.array_equal(got, np.asarray(Image.open(folder / name).convert("RGB")))
            assert np.abs(got - written[name]).mean() < 8
    manifest = json.loads(next(tmp_path.glob("folders/*/manifest.json")).read_text())
    assert manifest["count"] == 120 and manifest["class_counts"] == torch.bincount(data.labels).tolist()
    assert manifest["skipped"]["count"] == 0 and data.digest == manifest["sha256"]


def test_the_cache_is_memory_mapped_not_read_into_memory(host, digits, tmp_path):
    folder, _ = digits
    data = load(host, f"folder:{folder}", tmp_path)
    cache = next(tmp_path.glob("folders/*/images-*.u8"))
    maps = Path("/proc/self/maps").read_text()
    assert str(cache) in maps
    before = data.images.float().mean()
    data.release()  # the pages go; the data stays
    assert data.images.float().mean() == before


def test_the_cache_is_reused_and_rebuilt_when_files_are_added_modified_or_removed(host, tmp_path):
    folder = tmp_path / "photos"
    digit_folder(folder, count=12, size=16, jpeg_every=0, classes=False)
    root = tmp_path / "root"
    _, first, built = folder_cache.prepare(str(folder), root)
    assert built and first["count"] == 12
    assert folder_cache.prepare(str(folder), root)[2] is False  # current: nothing decoded
    Image.new("RGB", (16, 16), (10, 20, 30)).save(folder / "added.png")
    _, added, built = folder_cache.prepare(str(folder), root)
    assert built and added["count"] == 13
    Image.new("RGB", (16, 16), (200, 20, 30)).save(folder / "added.png")
    os.utime(folder / "added.png", ns=(1, 1))  # modified, even where the size stays the same
    _, modified, built = folder_cache.prepare(str(folder), root)
    assert built and modified["sha256"] != added["sha256"]
    (folder / "added.png").unlink()
    _, removed, built = folder_cache.prepare(str(folder), root)
    assert built and removed["count"] == 12 and removed["sha256"] == first["sha256"]
    left = sorted(p.name for p in next(root.glob("folders/*")).iterdir())
    assert len([n for n in left if n.startswith("images-")]) == 1  # older caches' files are gone


def test_workers_decode_the_same_bytes_as_one_process(host, tmp_path):
    folder = tmp_path / "many"
    digit_folder(folder, count=300, size=24, classes=False)
    _, parallel, _ = folder_cache.prepare(str(folder), tmp_path / "a", workers=2)
    _, serial, _ = folder_cache.prepare(str(folder), tmp_path / "b", workers=1)
    assert parallel["workers"] == 2 and serial["count"] == 300 and parallel["sha256"] == serial["sha256"]


def test_resolution_takes_the_centre_square_and_resizes_with_antialiased_lanczos(host, tmp_path):
    folder = tmp_path / "wide"
    folder.mkdir()
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (40, 100, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(folder / "wide.png")
    data = load(host, f"folder:{folder}", tmp_path, resolution=16)
    expected = Image.fromarray(pixels).resize((16, 16), Image.LANCZOS, box=(30, 0, 70, 40))
    assert np.array_equal(data.images[0].permute(1, 2, 0).numpy(), np.asarray(expected))


def test_images_of_mixed_sizes_need_a_resolution(host, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    Image.new("L", (28, 28)).save(folder / "a.png")
    Image.new("L", (32, 32)).save(folder / "b.png")
    with pytest.raises(DataError, match=r"2 different sizes .*give --resolution"):
        load(host, f"folder:{folder}", tmp_path)
    assert load(host, f"folder:{folder}", tmp_path, resolution=16).images.shape == (2, 1, 16, 16)


def kinds_folder(folder: Path) -> None:
    """One image of each kind the docs promise to convert, named by what the test expects."""
    folder.mkdir()
    (folder / "grey.bmp").write_bytes(image_bytes(Image.new("L", (8, 8), 100), "BMP"))
    sixteen = Image.fromarray(np.full((8, 8), 257 * 100, dtype=np.uint16))
    (folder / "sixteen-bit.png").write_bytes(image_bytes(sixteen, "PNG"))
    (folder / "transparent.png").write_bytes(image_bytes(Image.new("RGBA", (8, 8), (0, 0, 0, 0)), "PNG"))
    palette = Image.new("P", (8, 8), 1)
    palette.putpalette([0, 0, 0, 200, 100, 50] + [0] * 762)
    (folder / "palette.gif").write_bytes(image_bytes(palette, "GIF"))
    frames = [Image.new("RGB", (8, 8), (250, 0, 0)), Image.new("RGB", (8, 8), (0, 0, 250))]
    (folder / "animated.gif").write_bytes(image_bytes(frames[0], "GIF", save_all=True, append_images=frames[1:]))
    (folder / "cmyk.jpg").write_bytes(image_bytes(Image.new("CMYK", (8, 8), (0, 0, 0, 0)), "JPEG", quality=100))
    (folder / "float.tiff").write_bytes(image_bytes(Image.fromarray(np.full((8, 8), 0.5, dtype=np.float32), "F"), "TIFF"))
    (folder / "photo.webp").write_bytes(image_bytes(Image.new("RGB", (8, 8), (0, 128, 255)), "WEBP", lossless=True))
    upright = np.zeros((16, 8), dtype=np.uint8)  # 8 wide, 16 tall: top half black, bottom half white
    upright[8:] = 255
    stored = Image.fromarray(np.ascontiguousarray(np.rot90(upright, 1)))  # stored rotated; EXIF says turn it back
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    (folder / "rotated.png").write_bytes(image_bytes(stored, "PNG", exif=exif))


def test_every_kind_of_image_is_converted_the_documented_way(host, tmp_path):
    kinds_folder(tmp_path / "kinds")
    data = load(host, f"folder:{tmp_path / 'kinds'}", tmp_path / "root", resolution=8)
    manifest = json.loads(next((tmp_path / "root").glob("folders/*/manifest.json")).read_text())
    assert manifest["skipped"]["count"] == 0 and data.images.shape == (9, 3, 8, 8)
    names = sorted(p.name for p in (tmp_path / "kinds").iterdir())
    pixel = {name: data.images[i, :, 4, 4].tolist() for i, name in enumerate(names)}
    assert pixel["grey.bmp"] == [100, 100, 100]  # grey repeated to RGB (other images are colour)
    assert pixel["sixteen-bit.png"] == [100, 100, 100]  # 16 bits scaled by 257, not clipped
    assert pixel["transparent.png"] == [255, 255, 255]  # transparency over white
    assert pixel["palette.gif"] == [200, 100, 50]
    assert pixel["animated.gif"][0] > 200 and pixel["animated.gif"][2] < 50  # the first frame
    assert min(pixel["cmyk.jpg"]) > 245  # CMYK (0, 0, 0, 0) is white
    assert pixel["float.tiff"] == [128, 128, 128]  # float read as [0, 1]
    assert pixel["photo.webp"] == [0, 128, 255]
    rotated = data.images[names.index("rotated.png"), 0]
    # upright 8x16 -> centre square rows 4..12 -> resized 8x8: top half black, bottom half white
    assert rotated[:3].max() < 30 and rotated[5:].min() > 225


def test_channels_default_from_the_data_and_can_be_forced(host, tmp_path):
    folder = tmp_path / "grey"
    folder.mkdir()
    for i in range(3):
        Image.new("L", (8, 8), 50 * i).save(folder / f"{i}.png")
    assert load(host, f"folder:{folder}", tmp_path).images.shape == (3, 1, 8, 8)
    rgb = load(host, f"folder:{folder}", tmp_path, channels=3).images
    assert rgb.shape == (3, 3, 8, 8) and rgb[2, :, 0, 0].tolist() == [100, 100, 100]
    colour = tmp_path / "colour"
    colour.mkdir()
    Image.new("RGB", (8, 8), (255, 0, 0)).save(colour / "red.png")
    assert load(host, f"folder:{colour}", tmp_path, channels=1).images[0, 0, 0, 0] == 76  # PIL's luma of red


def test_images_directly_in_the_folder_mean_no_classes(host, tmp_path):
    folder = tmp_path / "flat"
    digit_folder(folder / "sub", count=4, size=8, classes=False)
    Image.new("RGB", (8, 8)).save(folder / "top.png")
    data = load(host, f"folder:{folder}", tmp_path)
    assert data.labels is None and data.classes is None


def test_datasets_of_a_fixed_size_refuse_resolution_and_channels(host, tmp_path):
    with pytest.raises(DataError, match=r"^--resolution applies to datasets that resize"):
        load(host, "mnist", tmp_path, resolution=32)
    with pytest.raises(DataError, match="--resolution and --channels apply"):
        load(host, "mnist", tmp_path, resolution=32, channels=3)


def test_a_tilde_in_the_spec_is_the_home_folder(host, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # the shell does not expand the ~ of folder:~/pics
    digit_folder(tmp_path / "pics", count=3, size=8, classes=False)
    assert load(host, "folder:~/pics", tmp_path / "root").images.shape == (3, 3, 8, 8)


def test_stacked_mnist_as_a_folder_of_pngs_is_the_built_in_loader_byte_for_byte(host, tmp_path):
    from tests.folders import stacked_folder

    stacked_folder(tmp_path / "stacked", 64)
    folder = load(host, f"folder:{tmp_path / 'stacked'}", tmp_path / "root")
    built_in = load_data(host.registry, "stacked-mnist", tmp_path / "empty-root")
    assert folder.images.shape == (64, 3, 28, 28) and folder.labels is None
    assert torch.equal(folder.images, built_in.images[:64])


def test_data_info_says_count_size_classes_and_cache(host, digits, tmp_path):
    from ganzoo.testing import invoke

    folder, _ = digits
    result = invoke(host, "data", "info", f"folder:{folder}", "--data-root", str(tmp_path), "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["images"], summary["size"], summary["channels"], summary["bytes"]) == (120, "32x32", 3, 120 * 3 * 32 * 32)
    assert summary["classes"] == [str(k) for k in range(10)] and sum(summary["class_counts"]) == 120
    assert Path(summary["cache"]).parent == tmp_path / "folders" and summary["skipped"] == 0
    mnist = json.loads(invoke(host, "data", "info", "mnist", "--json").stdout)
    assert (mnist["images"], mnist["size"], mnist["class_counts"][0]) == (60_000, "28x28", 5923)
