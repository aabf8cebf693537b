"""Data-parallel training through real torchrun processes (gloo on CPU), on a slice of real MNIST."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from ganzoo.runs.checkpoint import read_checkpoint
from ganzoo.runs.rundir import CHECKPOINT

TINY = ["--limit-data", "512", "--batch-size", "32", "--log-every", "4", "--device", "cpu", "--quiet"]


def env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1"}  # two ranks on two cores


def torchrun_command(nproc: int, *args: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
            "-m", "ganzoo", "train", *args]


def torchrun(nproc: int, *args: str, timeout: int = 240) -> subprocess.CompletedProcess:
    return subprocess.run(torchrun_command(nproc, *args), capture_output=True, text=True, timeout=timeout, env=env())


def plain(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ganzoo", "train", *args], capture_output=True, text=True, timeout=240, env=env())


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    tensors, _ = read_checkpoint(run_dir / CHECKPOINT)
    return {k: v for k, v in tensors.items() if k.startswith(("generator.", "discriminator."))}


@pytest.mark.slow
def test_one_process_under_torchrun_is_the_plain_run(tmp_path):
    a, b = tmp_path / "plain", tmp_path / "torchrun"
    settings = ["psg", "--n-gens", "2", "--steps", "6", *TINY]
    first = plain(*settings, "--out", str(a))
    assert first.returncode == 0, first.stderr
    second = torchrun(1, *settings, "--out", str(b))
    assert second.returncode == 0, second.stderr
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key
    assert "world_size = 1" in (b / "config.toml").read_text()


@pytest.mark.slow
def test_two_processes_shard_the_data_and_rank_0_alone_writes(tmp_path):
    run = tmp_path / "ddp"
    done = torchrun(2, "psg", "--n-gens", "2", "--epochs", "1", *TINY, "--out", str(run))
    assert done.returncode == 0, done.stderr
    _, manifest = read_checkpoint(run / CHECKPOINT)
    # Each rank holds 256 of the 512 images: an epoch is 256 / 32 = 8 steps (a plain run: 16).
    assert manifest["step"] == 8 and manifest["epoch"] == 1
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1]  # one writer: one record per epoch, not one per rank
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["epoch-0001.png"]
    assert "world_size = 2" in (run / "config.toml").read_text()
    assert not list(run.glob("*.tmp*"))

    # Resumed under torchrun, both ranks read rank 0's checkpoint and go on to epoch 2; the
    # replicas are checked equal at every checkpoint (a divergence fails the run).
    again = torchrun(2, "psg", "--epochs", "2", "--quiet", "--resume", str(run))
    assert again.returncode == 0, again.stderr
    _, manifest = read_checkpoint(run / CHECKPOINT)
    assert manifest["step"] == 16 and manifest["epoch"] == 2
    after = weights(run)
    assert all(torch.isfinite(t).all() for t in after.values())


@pytest.mark.slow
def test_sigterm_to_torchrun_stops_both_ranks_after_the_same_step_with_a_checkpoint(tmp_path):
    run = tmp_path / "ddp"
    process = subprocess.Popen(torchrun_command(2, "psg", "--steps", "100000", *TINY, "--out", str(run)),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env(), start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while not (run / "metrics.jsonl").exists() or not (run / "metrics.jsonl").read_text().count("\n") >= 2:
            assert process.poll() is None, process.stderr.read()
            assert time.monotonic() < deadline, "no epoch finished"
            time.sleep(0.2)
        process.send_signal(signal.SIGTERM)  # torchrun passes it on to both ranks
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert "stopped by signal 15" in stderr
    _, manifest = read_checkpoint(run / CHECKPOINT)
    stopped = manifest["step"]
    assert stopped >= 16 and stopped % 4 == 0  # the ranks agreed at a logging point (--log-every 4)
    again = torchrun(2, "psg", "--steps", str(stopped + 8), "--quiet", "--resume", str(run))
    assert again.returncode == 0, again.stderr
    assert read_checkpoint(run / CHECKPOINT)[1]["step"] == stopped + 8


def test_torchrun_needs_a_named_run_directory():
    done = torchrun(2, "psg", "--steps", "2", *TINY, timeout=120)
    assert done.returncode != 0
    assert "under torchrun, give --out" in done.stderr
