"""Checkpoints: an exact round trip, and refusal of anything that is not a ganzoo safetensors file."""

from __future__ import annotations

import json
import os
import pickle

import pytest
import torch
from safetensors.torch import save_file

from ganzoo.core.errors import CheckpointError
from ganzoo.core.tensorfile import save_tensor_file
from ganzoo.runs.checkpoint import read_checkpoint


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
    save_tensor_file(path, tensors, manifest)
    loaded, loaded_manifest = read_checkpoint(path)
    assert loaded.keys() == tensors.keys()
    for key in tensors:
        assert loaded[key].dtype == tensors[key].dtype
        assert torch.equal(loaded[key], tensors[key])
    assert loaded_manifest == {**manifest, "format": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["c.safetensors"]  # no temp files left behind


def test_trained_run_round_trip(small_run):
    from ganzoo.training.checkpointing import write

    trainer = small_run("psg", n_gens=2)
    path = write(trainer)
    tensors, manifest = read_checkpoint(path)
    expected = trainer.tensors()
    assert expected.keys() <= tensors.keys()
    assert {k.split(".")[0] for k in tensors.keys() - expected.keys()} == {"ema"}  # psg's default EMA (the ema plugin)
    for key, value in expected.items():
        assert torch.equal(tensors[key], value.cpu()), key
    assert manifest == json.loads(json.dumps({**trainer.manifest(), "format": 1}))
    assert manifest["parts"]["input policy"] == {"name": "tuple", "plugin": "psg"}


@pytest.mark.parametrize("damage", ["truncate", "flip-header", "empty", "garbage"])
def test_damaged_files_are_refused(tmp_path, damage):
    path = tmp_path / "c.safetensors"
    save_tensor_file(path, {"w": torch.randn(100, 100)}, {"strategy": "psg"})
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
    save_tensor_file(path, {"w": torch.zeros(1)}, manifest)
    assert read_checkpoint(path)[1]["pad"] == manifest["pad"]


def test_atomic_writes_get_normal_permissions(tmp_path):
    import os
    import stat

    from ganzoo.core.files import write_atomic

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


# -- integrity and bounds (issue 14) --------------------------------------------------------------

def _saved(tmp_path, tensors=None):
    path = tmp_path / "c.safetensors"
    save_tensor_file(path, tensors or {"a": torch.randn(64, 8), "b": torch.arange(10), "flag": torch.ones(3, dtype=torch.bool)},
                    {"strategy": "psg"})
    return path


@pytest.mark.parametrize("where", [-1, -200, -2000])
def test_a_flipped_data_byte_fails_the_checksum_of_its_tensor(tmp_path, where):
    path = _saved(tmp_path)
    raw = bytearray(path.read_bytes())
    raw[where] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="corrupted: the data of tensor '(a|b|flag)' fails its sha256 checksum"):
        read_checkpoint(path)


def test_a_checkpoint_without_checksums_still_reads(tmp_path):
    from safetensors.torch import save

    tensors = {"w": torch.randn(3, 2)}
    path = tmp_path / "old.safetensors"
    path.write_bytes(save(tensors, metadata={"ganzoo": json.dumps({"strategy": "psg", "format": 1})}))
    loaded, manifest = read_checkpoint(path)
    assert torch.equal(loaded["w"], tensors["w"]) and manifest["strategy"] == "psg"


def test_a_checksum_table_that_does_not_match_the_tensors_is_refused(tmp_path):
    from safetensors.torch import save

    path = tmp_path / "c.safetensors"
    path.write_bytes(save({"w": torch.zeros(2)}, metadata={"ganzoo": json.dumps({"format": 1}), "ganzoo.sha256": json.dumps({"v": "0"})}))
    with pytest.raises(CheckpointError, match="checksums"):
        read_checkpoint(path)


def test_the_header_is_checked_before_any_data_is_read(tmp_path):
    """A sparse file declaring a 200 GB tensor: the check sees its shape on the meta device, and
    reading it whole is refused for want of memory, before anything is allocated."""
    size = 50 * 10**9
    header = json.dumps({"__metadata__": {"ganzoo": json.dumps({"format": 1})},
                         "big": {"dtype": "F32", "shape": [size], "data_offsets": [0, 4 * size]}}).encode()
    path = tmp_path / "sparse.safetensors"
    with open(path, "wb") as f:
        f.write(len(header).to_bytes(8, "little") + header)
        f.truncate(8 + len(header) + 4 * size)
    seen = {}

    def check(meta, manifest):
        seen.update({k: (v.device.type, tuple(v.shape)) for k, v in meta.items()})
        raise CheckpointError("does not fit")

    with pytest.raises(CheckpointError, match="does not fit"):
        read_checkpoint(path, check=check)
    assert seen == {"big": ("meta", (size,))}
    with pytest.raises(CheckpointError, match="memory"):
        read_checkpoint(path)


def test_open_checkpoint_reads_only_the_tensors_asked_for(tmp_path):
    from ganzoo.core.tensorfile import open_tensor_file

    path = _saved(tmp_path)
    raw = bytearray(path.read_bytes())
    with open_tensor_file(path) as checkpoint:
        a_start = checkpoint.entries["a"].start
    raw[a_start] ^= 0xFF  # "a" is corrupt; "b" alone still reads
    path.write_bytes(bytes(raw))
    with open_tensor_file(path) as checkpoint:
        assert torch.equal(checkpoint.read(["b"])["b"], torch.arange(10))
        with pytest.raises(CheckpointError, match="'a'"):
            checkpoint.read(["a"])


@pytest.mark.parametrize("header", [b"[" * 100_000 + b"]" * 100_000, b'{"a": ' + b"[" * 70 + b"]" * 70 + b"}",
                                    b'{"__metadata__": {"ganzoo": "{\\"format\\": 1}"}, "w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}',
                                    b'{"__metadata__": {"ganzoo": "{\\"format\\": 1}"}, "w": {"dtype": ["F32"], "shape": [1], "data_offsets": [0, 4]}}',
                                    b'{"__metadata__": {"ganzoo": "{\\"format\\": 1}"}, "w": [1, 2]}'])
def test_malformed_and_deep_headers_are_checkpoint_errors(tmp_path, header):
    path = tmp_path / "c.safetensors"
    path.write_bytes(len(header).to_bytes(8, "little") + header + bytes(4))
    with pytest.raises(CheckpointError):
        read_checkpoint(path)


@pytest.mark.parametrize("value", ["a string", 3, [1.0], None])
def test_only_tensors_can_be_saved(tmp_path, value):
    with pytest.raises(CheckpointError, match="'extra.x' is a .*, not a tensor"):
        save_tensor_file(tmp_path / "c.safetensors", {"w": torch.zeros(1), "extra.x": value}, {})
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "dir-inside"])
def test_non_regular_checkpoint_files_are_refused_at_once(tmp_path, kind):
    path = tmp_path / "checkpoint.safetensors"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev-zero":
        path.symlink_to("/dev/zero")
    else:
        path.mkdir()
        (path / "checkpoint.safetensors").mkdir()
    with pytest.raises(CheckpointError, match="not a regular file"):
        read_checkpoint(path)


# -- state checks against the run that loads a checkpoint ---------------------------------------

def _adam_after_a_step():
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    return model, optimizer


def test_check_state_names_the_tensor_that_does_not_fit():
    from ganzoo.runs.checkpoint import optimizer_tensors
    from ganzoo.runs.state_check import StateSpec, check_state
    from ganzoo.training.optimizers import parameter_state

    model, optimizer = _adam_after_a_step()
    fresh = torch.optim.Adam(model.parameters(), lr=1e-3)
    spec = StateSpec({"rng.torch": (tuple(torch.get_rng_state().shape), torch.uint8), "sample_z": ((4, 1, 8), torch.float32)},
                     parameter_state(fresh, "optimizer.discriminator"))
    good = {"rng.torch": torch.get_rng_state(), "sample_z": torch.zeros(4, 1, 8),
            **optimizer_tensors("optimizer.discriminator", optimizer)[0], "ema.generator.0.w": torch.zeros(1)}
    check_state(good, spec)
    check_state({k: v.to("meta") for k, v in good.items()}, spec)
    check_state({k: v for k, v in good.items() if not k.startswith("optimizer.")}, spec)  # Adam before its first step
    cases = {
        "rng.torch": ({"rng.torch": torch.get_rng_state()[:-1]}, "'rng.torch' is uint8 of shape (5055,)"),
        "rng.torch content": ({"rng.torch": torch.zeros(5056, dtype=torch.uint8)}, "not a valid random number generator state"),
        "sample_z dtype": ({"sample_z": torch.zeros(4, 1, 8, dtype=torch.float64)}, "'sample_z' is float64"),
        "exp_avg": ({"optimizer.discriminator.0.exp_avg": torch.zeros(5)}, "'optimizer.discriminator.0.exp_avg' is float32 of shape"),
        "unexpected": ({"generator.7.w": torch.zeros(1)}, "'generator.7.w' is not part of this run's state"),
    }
    for name, (change, message) in cases.items():
        with pytest.raises(CheckpointError, match=message.replace("(", r"\(").replace(")", r"\)")):
            check_state({**good, **change}, spec)
    half = {k: v for k, v in good.items() if k != "optimizer.discriminator.1.exp_avg_sq"}
    with pytest.raises(CheckpointError, match="'optimizer.discriminator.1.exp_avg_sq' is missing"):
        check_state(half, spec)


def test_z_state_continues_or_says_it_cannot():
    from ganzoo.runs.state_check import check_z_state

    generator = torch.Generator().manual_seed(3)
    assert check_z_state(generator.get_state(), generator) is True
    assert check_z_state(torch.zeros(16, dtype=torch.uint8), generator) is False  # a CUDA state: the caller reseeds and says so
    for bad in (generator.get_state()[:100], generator.get_state().float(), torch.zeros(5056, dtype=torch.uint8)):
        with pytest.raises(CheckpointError, match="rng.z"):
            check_z_state(bad, generator)


def test_manifest_counters_and_optimizer_groups_are_checked():
    import random

    from ganzoo.runs.state_check import check_manifest_counters, check_optimizer_groups

    good = {"step": 2, "epoch": 0, "metric_count": 2, "chance": 0.5, "rollbacks": 0,
            "python_rng": json.loads(json.dumps(random.getstate()))}
    check_manifest_counters(good)
    for key, value in [("step", -5), ("step", 2.0), ("epoch", "1"), ("metric_count", 2**60), ("chance", None),
                       ("python_rng", [3, [0] * 10, None]), ("python_rng", [3, [2**40] * 625, None])]:
        with pytest.raises(CheckpointError, match=key):
            check_manifest_counters({**good, key: value})
    _, optimizer = _adam_after_a_step()
    groups = json.loads(json.dumps(optimizer.state_dict()["param_groups"]))
    check_optimizer_groups(groups, optimizer, "D")
    for change in ({"betas": [0.5]}, {"amsgrad": 1}, {"amsgrad": True}, {"capturable": True}, {"weight_decay": 1e300}, {"eps": 0.1}):
        with pytest.raises(CheckpointError, match="optimizer setting"):
            check_optimizer_groups([{**groups[0], **change}], optimizer, "D")
    for change in ({"lr": "fast"}, {"lr": float("inf")}, {"lr": 1e300}, {"lr": 0}):
        with pytest.raises(CheckpointError, match="learning rate of D"):
            check_optimizer_groups([{**groups[0], **change}], optimizer, "D")
    with pytest.raises(CheckpointError, match="do not fit this run"):
        check_optimizer_groups([{**groups[0], "params": [0]}], optimizer, "D")
    check_optimizer_groups([{**groups[0], "lr": 5e-4}], optimizer, "D")  # the schedule's and rollbacks' to set


def test_check_finite_names_the_tensor():
    from ganzoo.runs.state_check import check_finite

    tensors = {"generator.0.w": torch.ones(3), "ema.generator.0.w": torch.tensor([1.0, float("inf")]), "steps": torch.arange(3)}
    check_finite(tensors, ("generator.",))
    with pytest.raises(CheckpointError, match="'ema.generator.0.w' holds NaN or infinite values"):
        check_finite(tensors, ("",))
    # large but finite values whose float32 sum overflows (Adam's second moments in a wild run) are finite
    huge = {"optimizer.generator.0.0.exp_avg_sq": torch.full((4,), 3e38), "generator.0.w": torch.ones(2)}
    check_finite(huge, ("",))
    from ganzoo.runs.state_check import first_non_finite
    from ganzoo.training.nan_guard import non_finite

    assert first_non_finite(huge) is None and first_non_finite({**huge, "x": torch.tensor([float("nan")])}) == "x"
    net = torch.nn.Linear(2, 2)
    with torch.no_grad():
        net.weight.fill_(3e38)
    assert non_finite({"d_loss": 1.0}, dict(net.named_parameters())) == []  # the NaN guard does not roll back a run for it
    with torch.no_grad():
        net.bias[0] = float("nan")
    assert non_finite({"d_loss": 1.0}, dict(net.named_parameters())) == ["tensor 'bias'"]
