"""Runs that survive: exact resume after SIGKILL, kills during checkpoint writes, NaN guards,
locks, full disks, out-of-memory, and fuzzed checkpoints. Real subprocesses, signals and files."""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ganzoo import hookimpl
from ganzoo.cli.main import cli
from ganzoo.core import files
from ganzoo.core.config import make_config
from ganzoo.core.errors import GanzooError, NonFiniteError
from ganzoo.core.host import load_host
from ganzoo.core.tensorfile import save_tensor_file
from ganzoo.runs import rundir
from ganzoo.runs.checkpoint import read_checkpoint
from ganzoo.runs.rundir import checkpoint_step
from ganzoo.runs.sampling import load_generators
from ganzoo.training.trainer import Trainer

TINY = ["--limit-data", "128", "--batch-size", "32", "--device", "cpu"]


def ganzoo(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "ganzoo", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def final_state(run_dir: Path) -> dict[str, torch.Tensor]:
    tensors, _ = read_checkpoint(run_dir)
    return tensors


def comparable_metrics(run_dir: Path) -> list[dict]:
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in ("seconds", "images_per_s", "train_seconds")} for r in records]


def test_sigkill_at_a_random_step_then_resume_is_bit_identical(tmp_path):
    common = ["train", "psg", *TINY, "--epochs", "4", "--deterministic", "--checkpoint-every", "1", "--quiet"]
    straight = tmp_path / "straight"
    done = ganzoo(*common, "--out", str(straight))
    assert done.wait(timeout=300) == 0, done.stderr.read()

    killed = tmp_path / "killed"
    process = ganzoo(*common, "--out", str(killed))
    target = random.Random(0).randint(3, 12)  # 4 steps an epoch, 16 in all
    deadline = time.time() + 120
    while time.time() < deadline:
        step = checkpoint_step(killed)
        if step is not None and step >= target:
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    assert checkpoint_step(killed) < 16

    resumed = ganzoo("train", "psg", "--resume", str(killed), "--quiet")
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()
    a, b = final_state(straight), final_state(killed)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert comparable_metrics(straight) == comparable_metrics(killed)


def test_kills_during_checkpoint_writes_leave_a_whole_checkpoint(tmp_path):
    """Checkpoint every step, SIGKILL at random moments (many land inside a write), five times
    over: the checkpoint always reads, and resume goes on from it."""
    run_dir = tmp_path / "run"
    rng = random.Random(1)
    args = ["train", "sngan", *TINY, "--steps", "100000", "--checkpoint-every", "1", "--quiet"]
    process = ganzoo(*args, "--out", str(run_dir))
    for _ in range(5):
        deadline = time.time() + 120
        while checkpoint_step(run_dir) is None and time.time() < deadline:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.05, 0.6))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
        tensors, manifest = read_checkpoint(run_dir)  # whole, never half-written
        assert manifest["step"] > 0 and "discriminator.net.0.parametrizations.weight.original" in tensors
        process = ganzoo("train", "sngan", "--resume", str(run_dir), "--quiet")
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)


class Poison:
    """Turns one D weight to NaN after generator step `at`, once."""

    def __init__(self, at: int):
        self.at, self.done = at, False

    @hookimpl
    def ganzoo_on_step_end(self, trainer, step):
        if step == self.at and not self.done:
            self.done = True
            with torch.no_grad():
                next(trainer.discriminator.parameters()).view(-1)[0] = float("nan")


def _poisoned_trainer(tmp_path: Path, on_nan: str) -> Trainer:
    host = load_host(plugins=[Poison(at=5)])
    config = make_config("psg", host.registry.get("strategy", "psg").defaults, {
        "limit_data": 128, "batch_size": 32, "steps": 10, "device": "cpu", "sample_count": 4,
        "log_every": 2, "checkpoint_every": 2, "on_nan": on_nan})
    return Trainer(config, host, rundir.create(tmp_path / "run"))


def test_a_nan_weight_stops_the_run_within_one_logging_interval(tmp_path):
    trainer = _poisoned_trainer(tmp_path, "stop")
    with pytest.raises(NonFiniteError, match="non-finite values at step 6: d_loss=nan"):
        trainer.run()
    tensors, manifest = read_checkpoint(tmp_path / "run")
    assert manifest["step"] == 4  # the last good checkpoint is kept
    assert all(torch.isfinite(t).all() for k, t in tensors.items() if t.is_floating_point())


def test_on_nan_rollback_reloads_and_halves_the_learning_rate(tmp_path):
    trainer = _poisoned_trainer(tmp_path, "rollback")
    trainer.run()
    assert trainer.step == 10 and trainer.rollbacks == 1
    assert {g["lr"] for o in (*trainer.g_optimizers, trainer.d_optimizer) for g in o.param_groups} == {5e-4}  # psg's 1e-3, halved
    _, manifest = read_checkpoint(tmp_path / "run")
    assert manifest["rollbacks"] == 1 and manifest["optimizer_groups"]["discriminator"][0]["lr"] == 5e-4


def test_a_second_run_in_a_busy_run_dir_is_refused_and_a_dead_holder_is_taken_over(tmp_path):
    run_dir = tmp_path / "run"
    first = ganzoo("train", "sngan", *TINY, "--steps", "100000", "--checkpoint-every", "2", "--out", str(run_dir), "--quiet")
    deadline = time.time() + 120
    while checkpoint_step(run_dir) is None and time.time() < deadline:
        time.sleep(0.05)
    first.send_signal(signal.SIGSTOP)  # hold it still, lock and all, while we look at its files
    with open(run_dir / "metrics.jsonl", "a") as f:  # as if it had just appended an epoch's record
        f.write(json.dumps({"epoch": 99, "step": 10**6, "partial": False}) + "\n")
    files_before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    second = CliRunner().invoke(cli, ["train", "sngan", "--resume", str(run_dir), "--steps", "200000"])
    assert second.exit_code == 2
    assert f"is in use by a training run (pid {first.pid})" in second.stderr
    assert {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()} == files_before  # wrote nothing
    first.send_signal(signal.SIGKILL)  # its lock dies with it
    first.wait(timeout=60)
    assert (run_dir / ".lock").read_text() == str(first.pid)  # a stale lock file stays behind
    step = checkpoint_step(run_dir)
    third = CliRunner().invoke(cli, ["train", "sngan", "--resume", str(run_dir), "--steps", str(step + 2), "--json"])
    assert third.exit_code == 0, third.output
    assert checkpoint_step(run_dir) == step + 2


def test_a_full_disk_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    assert CliRunner().invoke(cli, ["train", "sngan", *TINY, "--steps", "4", "--out", str(run_dir), "--quiet"]).exit_code == 0
    before = (run_dir / "checkpoint.safetensors").read_bytes()
    real_write = files._write

    def full_disk(path, data):
        if path.name == "checkpoint.safetensors":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_write(path, data)

    monkeypatch.setattr(files, "_write", full_disk)
    result = CliRunner().invoke(cli, ["train", "sngan", "--resume", str(run_dir), "--steps", "8", "--quiet"])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: cannot write {run_dir / 'checkpoint.safetensors'}: No space left on device"
    assert (run_dir / "checkpoint.safetensors").read_bytes() == before
    assert not list(run_dir.glob(".*.tmp"))


def test_out_of_memory_names_the_batch_size(tmp_path, monkeypatch):
    def oom(self):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(Trainer, "train_step", oom)
    result = CliRunner().invoke(cli, ["train", "psg", *TINY, "--batch-size", "64", "--steps", "2", "--out", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert "out of memory on cpu at batch size 64 with 2 generator(s); try --batch-size 32" in result.stderr


@pytest.fixture(scope="module")
def good_checkpoint(tmp_path_factory) -> bytes:
    run_dir = tmp_path_factory.mktemp("fuzz") / "run"
    assert CliRunner().invoke(cli, ["train", "psg", *TINY, "--steps", "1", "--out", str(run_dir), "--quiet"]).exit_code == 0
    return (run_dir / "checkpoint.safetensors").read_bytes()


FUZZ = {"deadline": None, "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]}


@settings(max_examples=100, derandomize=True, **FUZZ)
@given(data=st.data())
def test_fuzzed_checkpoints_are_read_or_refused_never_crash(good_checkpoint, tmp_path_factory, data):
    fuzz_checkpoint(good_checkpoint, tmp_path_factory, data)


@pytest.mark.slow  # the same, 1,000 times (about a minute)
@settings(max_examples=1000, derandomize=True, **FUZZ)
@given(data=st.data())
def test_a_thousand_fuzzed_checkpoints_are_read_or_refused_never_crash(good_checkpoint, tmp_path_factory, data):
    fuzz_checkpoint(good_checkpoint, tmp_path_factory, data)


def fuzz_checkpoint(good_checkpoint: bytes, tmp_path_factory, data) -> None:
    """Damage the checkpoint as drawn (flipped, truncated, spliced bytes or a wrong header length)
    and load it: it reads, or it is refused with a GanzooError, never anything else."""
    raw = bytearray(good_checkpoint)
    header_end = 8 + int.from_bytes(raw[:8], "little")
    kind = data.draw(st.sampled_from(["flip-header", "flip-anywhere", "truncate", "splice", "length"]))
    if kind == "flip-header":
        for _ in range(data.draw(st.integers(1, 8))):
            raw[data.draw(st.integers(0, header_end - 1))] = data.draw(st.integers(0, 255))
    elif kind == "flip-anywhere":
        raw[data.draw(st.integers(0, len(raw) - 1))] ^= data.draw(st.integers(1, 255))
    elif kind == "truncate":
        raw = raw[: data.draw(st.integers(0, len(raw) - 1))]
    elif kind == "splice":
        at = data.draw(st.integers(0, header_end))
        raw[at:at] = data.draw(st.binary(min_size=1, max_size=64))
    else:
        raw[:8] = data.draw(st.integers(0, 2**64 - 1)).to_bytes(8, "little")
    path = tmp_path_factory.getbasetemp() / "fuzzed.safetensors"
    path.write_bytes(bytes(raw))
    try:
        load_generators(_HOST, path)  # what `ganzoo sample` does with the file
    except GanzooError:
        pass


_HOST = load_host()


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    n_gens=st.one_of(st.integers(-3, 4), st.just(10**30)),
    batch=st.integers(-2, 40),
    lr=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([2e-4, 1e-3])),
    aggregation=st.one_of(st.sampled_from(["mean", "independent", "algorithm1"]), st.text(max_size=8)),
    arch=st.sampled_from(["dcgan28", "cnn32", "dcgan", ""]),
)
def test_cli_options_fuzzed_give_a_run_or_one_line_exit_2(tmp_path_factory, n_gens, batch, lr, aggregation, arch):
    out = tmp_path_factory.mktemp("cli") / "run"
    args = ["train", "psg", "--n-gens", str(n_gens), "--batch-size", str(batch), "--lr", repr(lr),
            "--aggregation", aggregation, "--limit-data", "64", "--steps", "1", "--device", "cpu", "--out", str(out), "--quiet"]
    if arch:
        args += ["--arch", arch]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code in (0, 2), (args, result.output, result.exception)
    if result.exit_code == 2:
        assert "Traceback" not in result.output
        assert len(result.stderr.strip().splitlines()) in (1, 3)  # ours: one line; click's usage errors: usage, hint, error
        if "non-finite values" not in result.stderr:  # found while training: the run dir stays, as it should
            assert not out.exists()  # refused before anything was written
    else:
        assert (out / "checkpoint.safetensors").exists()


def test_keep_last_keeps_the_newest_checkpoints_and_each_resumes(tmp_path):
    run_dir = tmp_path / "run"
    args = ["train", "sngan", *TINY, "--steps", "5", "--checkpoint-every", "1", "--keep-last", "3", "--out", str(run_dir), "--quiet"]
    assert CliRunner().invoke(cli, args).exit_code == 0
    kept = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert kept == ["step-00000003.safetensors", "step-00000004.safetensors", "step-00000005.safetensors"]
    assert [read_checkpoint(run_dir / "checkpoints" / name)[1]["step"] for name in kept] == [3, 4, 5]
    assert (run_dir / "checkpoints" / kept[-1]).read_bytes() == (run_dir / "checkpoint.safetensors").read_bytes()


def test_a_run_missing_its_samples_folder_or_an_option_default_resumes(tiny_host, tmp_path):
    import shutil
    import tomllib

    from ganzoo.testing import smoke_resume, smoke_train

    run_dir = tmp_path / "run"
    smoke_train("dcgan", host=tiny_host, steps=2, run_dir=run_dir)
    shutil.rmtree(run_dir / "samples")  # deleted by hand to save space
    tensors, manifest = read_checkpoint(run_dir)
    assert manifest["config"]["options"]["loss"] == "bce"
    del manifest["config"]["options"]["loss"]  # as written before the binary policy declared its default
    save_tensor_file(run_dir / "checkpoint.safetensors", tensors, manifest)

    assert smoke_resume(run_dir, host=tiny_host, steps=4)["step"] == 4
    assert (run_dir / "samples" / "epoch-0001.png").is_file()  # the folder is back, with the resumed run's grid
    assert tomllib.loads((run_dir / "config.toml").read_text())["train"]["options"]["loss"] == "bce"
    assert read_checkpoint(run_dir)[1]["config"]["options"]["loss"] == "bce"


def test_tensors_that_do_not_fit_and_unwritable_out_dirs_are_one_line_errors(tmp_path):
    run_dir = tmp_path / "run"
    assert CliRunner().invoke(cli, ["train", "psg", *TINY, "--steps", "1", "--out", str(run_dir), "--quiet"]).exit_code == 0
    tensors, manifest = read_checkpoint(run_dir)
    manifest["config"]["z_dim"] = 64  # the file's generators were built for z_dim 100
    save_tensor_file(run_dir / "checkpoint.safetensors", tensors, manifest)
    cases = {("sample", str(run_dir)): "checkpoint tensors do not fit the architecture (generator.0: net.0.weight is float32 of shape "
                                       "(6272, 100), the model needs float32 of shape (6272, 64))",
             ("train", "psg", "--resume", str(run_dir), "--steps", "3"): "tensor 'generator.0.net.0.weight' is float32 of shape "
                                                                         "(6272, 100); this run needs float32 of shape (6272, 64)"}
    for args, message in cases.items():
        result = CliRunner().invoke(cli, list(args))
        assert result.exit_code == 2 and message in result.stderr, result.stderr
    unwritable = CliRunner().invoke(cli, ["train", "psg", *TINY, "--steps", "1", "--out", "/proc/ganzoo-run"])
    assert unwritable.exit_code == 2 and "cannot create run directory /proc/ganzoo-run" in unwritable.stderr


def test_a_periodic_checkpoint_never_saves_a_nan(tmp_path):
    """The poison lands at step 5 and step 6 is a checkpoint step but not a logging step."""
    host = load_host(plugins=[Poison(at=5)])
    config = make_config("psg", host.registry.get("strategy", "psg").defaults, {
        "limit_data": 128, "batch_size": 32, "steps": 10, "device": "cpu", "sample_count": 4,
        "log_every": 7, "checkpoint_every": 3})
    with pytest.raises(NonFiniteError, match="at step 6"):
        Trainer(config, host, rundir.create(tmp_path / "run")).run()
    assert read_checkpoint(tmp_path / "run")[1]["step"] == 4  # the epoch end at step 4; 3 was overwritten


class PoisonAlways(Poison):
    """Poisons D at step `at` on every pass, so every rollback meets the NaN again."""

    @hookimpl
    def ganzoo_on_step_end(self, trainer, step):
        if step == self.at:
            self.lrs.append(trainer.d_optimizer.param_groups[0]["lr"])
            with torch.no_grad():
                next(trainer.discriminator.parameters()).view(-1)[0] = float("nan")


def test_repeated_rollbacks_keep_halving_then_give_up(tmp_path):
    poison = PoisonAlways(at=5)
    poison.lrs = []
    host = load_host(plugins=[poison])
    config = make_config("psg", host.registry.get("strategy", "psg").defaults, {
        "limit_data": 128, "batch_size": 32, "steps": 10, "device": "cpu", "sample_count": 4,
        "log_every": 2, "checkpoint_every": 2, "on_nan": "rollback"})
    with pytest.raises(NonFiniteError, match="non-finite values at step 6"):
        Trainer(config, host, rundir.create(tmp_path / "run")).run()
    assert poison.lrs == [1e-3, 5e-4, 2.5e-4, 1.25e-4]  # psg's 1e-3; three rollbacks, each halving, then stop


def test_a_checkpoint_from_another_kind_of_device_resumes_and_says_it_is_not_exact(tmp_path):
    run_dir = tmp_path / "run"
    assert CliRunner().invoke(cli, ["train", "psg", *TINY, "--steps", "2", "--out", str(run_dir), "--quiet"]).exit_code == 0
    tensors, manifest = read_checkpoint(run_dir / "checkpoint.safetensors")
    tensors["rng.z"] = torch.arange(16, dtype=torch.uint8)  # a CUDA generator's state: seed and offset, 16 bytes
    save_tensor_file(run_dir / "checkpoint.safetensors", tensors, {k: v for k, v in manifest.items() if k != "format"})
    result = CliRunner().invoke(cli, ["train", "psg", "--resume", str(run_dir), "--steps", "3"])
    assert result.exit_code == 0, result.output
    assert "saved on another kind of device: the z stream restarts, so this resume is not bit-exact" in result.stderr
    meta = (run_dir / "config.toml").read_text()
    assert "exact_resume = false" in meta
    later = CliRunner().invoke(cli, ["train", "psg", "--resume", str(run_dir), "--steps", "4", "--quiet"])
    assert later.exit_code == 0 and "exact_resume = false" in (run_dir / "config.toml").read_text()  # the run as a whole stays so


def test_a_state_holding_nan_outside_g_and_d_is_never_written(tmp_path):
    """A plugin's tensor (as an EMA average would be) turned NaN at step 3: the NaN guard, which looks
    at everything a checkpoint would hold before it is saved, stops the run naming it, and the last
    good checkpoint stays; a checkpoint holding one is refused on resume."""
    from ganzoo.testing import make_host, registered, smoke_resume, smoke_train

    class Average:
        @hookimpl
        def ganzoo_add_checkpoint_tensors(self, trainer, tensors):
            tensors["average.x"] = torch.tensor([float("nan") if trainer.step == 3 else 1.0])

    run = tmp_path / "run"
    with registered(Average(), make_host()) as host:
        smoke_train("dcgan", host=host, steps=2, checkpoint_every=1, run_dir=run)
        with pytest.raises(NonFiniteError, match="non-finite values at step 3: tensor 'average.x'; the last good checkpoint is kept"):
            smoke_resume(run, host=host, steps=4)
    assert read_checkpoint(run)[1]["step"] == 2
    tensors, manifest = read_checkpoint(run)
    tensors["optimizer.discriminator.0.exp_avg_sq"] = torch.full_like(tensors["optimizer.discriminator.0.exp_avg_sq"], float("inf"))
    save_tensor_file(run / "checkpoint.safetensors", tensors, manifest)
    with pytest.raises(GanzooError, match="tensor 'optimizer.discriminator.0.exp_avg_sq' holds NaN or infinite values"):
        smoke_resume(run, host=make_host(), steps=4)
