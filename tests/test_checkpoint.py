"""Checkpoints: an exact round trip, and refusal of anything that is not a ganzoo safetensors file."""

from __future__ import annotations

import json
import pickle

import pytest
import torch
from safetensors.torch import save_file

from ganzoo.checkpoint import read_checkpoint, save_checkpoint
from ganzoo.errors import CheckpointError


def test_round_trip_is_exact(tmp_path):
    torch.manual_seed(0)
    tensors = {
        "generator.0.weight": torch.randn(4, 3),
        "rng.torch": torch.get_rng_state(),
        "step": torch.tensor(7.0),
        "ints": torch.arange(5),
    }
    manifest = {"strategy": "psg", "config": {"n_gens": 2, "lr": 2e-4}, "nested": [1, {"a": None}]}
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, tensors, manifest)
    loaded, loaded_manifest = read_checkpoint(path)
    assert loaded.keys() == tensors.keys()
    for key in tensors:
        assert loaded[key].dtype == tensors[key].dtype
        assert torch.equal(loaded[key], tensors[key])
    assert loaded_manifest == {**manifest, "format": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["c.safetensors"]  # no temp files left behind


def test_trained_run_round_trip(small_run):
    trainer = small_run("psg", n_gens=2)
    path = trainer.save()
    tensors, manifest = read_checkpoint(path)
    expected = trainer.tensors()
    assert tensors.keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(tensors[key], value.cpu()), key
    assert manifest == json.loads(json.dumps({**trainer.manifest(), "format": 1}))
    assert manifest["parts"]["input policy"] == {"name": "tuple", "plugin": "psg"}


@pytest.mark.parametrize("damage", ["truncate", "flip-header", "empty", "garbage"])
def test_damaged_files_are_refused(tmp_path, damage):
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, {"w": torch.randn(100, 100)}, {"strategy": "psg"})
    raw = path.read_bytes()
    if damage == "truncate":
        raw = raw[: len(raw) // 2]
    elif damage == "flip-header":
        raw = raw[:20] + b"}" + raw[21:]
    elif damage == "empty":
        raw = b""
    else:
        raw = bytes(range(256)) * 10
    path.write_bytes(raw)
    with pytest.raises(CheckpointError):
        read_checkpoint(path)


def test_foreign_safetensors_is_refused(tmp_path):
    path = tmp_path / "model.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(CheckpointError, match="not a ganzoo checkpoint"):
        read_checkpoint(path)


class Boom:
    def __reduce__(self):
        return (open, ("/tmp/ganzoo-pickle-was-executed", "w"))


def test_pickle_is_refused_without_loading(tmp_path):
    path = tmp_path / "model.pt"
    torch.save({"w": torch.zeros(2), "evil": Boom()}, path)
    legacy = tmp_path / "legacy.pth"
    legacy.write_bytes(pickle.dumps(Boom()))
    for p in (path, legacy):
        with pytest.raises(CheckpointError, match="never unpickles"):
            read_checkpoint(p)
    import os

    assert not os.path.exists("/tmp/ganzoo-pickle-was-executed")


@pytest.mark.parametrize("padding", range(0, 300, 7))
def test_header_lengths_that_start_like_a_pickle_still_read(tmp_path, padding):
    """A header of 128 + 256k bytes starts with 0x80, the pickle opcode: it must still be read."""
    path = tmp_path / "c.safetensors"
    manifest = {"strategy": "psg", "pad": "x" * padding}
    save_checkpoint(path, {"w": torch.zeros(1)}, manifest)
    assert read_checkpoint(path)[1]["pad"] == manifest["pad"]


def test_atomic_writes_get_normal_permissions(tmp_path):
    import os
    import stat

    from ganzoo.files import write_atomic

    path = tmp_path / "out.png"
    old = os.umask(0o022)
    try:
        write_atomic(path, b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    path.chmod(0o600)
    write_atomic(path, b"y")  # an existing file keeps its mode
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.read_bytes() == b"y"
