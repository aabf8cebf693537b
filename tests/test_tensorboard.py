"""The tensorboard plugin (--tensorboard DIR): what it logs, read back with TensorBoard's own reader."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import subprocess
import sys
import textwrap
import threading
import tomllib
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from ganzoo import hookimpl
from ganzoo.cli.main import cli
from ganzoo.plugins.tensorboard import Logger
from ganzoo.testing import make_host, registered


class Evaluation:
    """Stands in for an evaluation that merges FID into the epoch's record before observers see it."""

    @hookimpl(tryfirst=True)
    def ganzoo_on_epoch_end(self, trainer, epoch, metrics):
        metrics["fid_lenet"] = 10.0 / epoch
        metrics["kid_lenet"] = 0.5


def test_losses_accuracy_samples_and_fid_are_logged(tmp_path):
    logs, run_dir = tmp_path / "tb", tmp_path / "run"
    args = ["train", "psg", "--dataset", "tiny", "--batch-size", "16", "--device", "cpu", "--steps", "17",
            "--log-every", "4", "--tensorboard", str(logs), "--out", str(run_dir), "--quiet"]
    with registered(Evaluation(), make_host()) as host:
        result = CliRunner().invoke(cli, args, obj=host)
    assert result.exit_code == 0, result.output
    events = EventAccumulator(str(logs), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    tags = events.Tags()
    assert {"train/d_loss", "train/g_loss_mean", "train/g_loss_1", "train/g_loss_2", "train/d_accuracy", "train/chance",
            "epoch/d_loss", "eval/fid_lenet", "eval/kid_lenet"} <= set(tags["scalars"])
    assert [e.step for e in events.Scalars("train/d_loss")] == [4, 8, 12, 16]
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    whole = [r for r in records if not r["partial"]]
    assert [(e.step, e.value) for e in events.Scalars("epoch/d_accuracy")] == [
        (r["step"], pytest.approx(r["d_accuracy"])) for r in whole
    ]
    assert [(e.step, e.value) for e in events.Scalars("eval/fid_lenet")] == [(8, 10.0), (16, 5.0)]
    images = events.Images("samples")
    assert [i.step for i in images] == [8, 16] and images[0].width == 242
    saved = tomllib.loads(run_dir.joinpath("config.toml").read_text())["train"]["options"]
    # absolute: a resume from elsewhere logs here too
    assert saved == {"tensorboard": str(logs.resolve()), "ema": 0.999, "ema_warmup": True, "r1": 30.0, "r2": 30.0, "temperature": 1.0}


def test_off_unless_asked_and_a_clear_error_without_the_package(tmp_path, monkeypatch):
    host = make_host()
    run_dir = tmp_path / "run"
    plain = ["train", "dcgan", "--dataset", "tiny", "--batch-size", "16", "--device", "cpu", "--steps", "1", "--quiet"]
    assert CliRunner().invoke(cli, [*plain, "--out", str(run_dir)], obj=host).exit_code == 0
    assert not list(tmp_path.rglob("events.out.tfevents*"))
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if the extra were not installed
    result = CliRunner().invoke(cli, [*plain, "--tensorboard", str(tmp_path / "tb"), "--out", str(tmp_path / "other")], obj=host)
    assert result.exit_code == 2
    assert result.stderr == "error: --tensorboard needs the tensorboard package: pip install 'ganzoo[tensorboard]'\n"
    assert not (tmp_path / "other").exists()


def test_resume_keeps_logging_and_may_move_the_logs(tmp_path):
    host = make_host()
    run_dir, first, second = tmp_path / "run", tmp_path / "tb1", tmp_path / "tb2"
    common = ["--dataset", "tiny", "--batch-size", "16", "--device", "cpu", "--log-every", "1", "--quiet"]
    assert CliRunner().invoke(cli, ["train", "dcgan", *common, "--steps", "2", "--tensorboard", str(first),
                                    "--out", str(run_dir)], obj=host).exit_code == 0
    kept = CliRunner().invoke(cli, ["train", "dcgan", "--resume", str(run_dir), "--steps", "3", "--quiet"], obj=host)
    assert kept.exit_code == 0, kept.output
    moved = CliRunner().invoke(cli, ["train", "dcgan", "--resume", str(run_dir), "--steps", "4", "--tensorboard", str(second),
                                     "--quiet"], obj=host)
    assert moved.exit_code == 0, moved.output
    steps = {}
    for folder in (first, second):
        events = EventAccumulator(str(folder))
        events.Reload()
        steps[folder.name] = [e.step for e in events.Scalars("train/d_loss")]
    assert steps == {"tb1": [1, 2, 3], "tb2": [4]}
    saved = tomllib.loads(run_dir.joinpath("config.toml").read_text())["train"]["options"]
    # dcgan's loss, and the moved logs
    assert saved == {"loss": "bce", "tensorboard": str(second.resolve()), "ema": 0.0, "ema_warmup": False, "r1": 0.0}


# -- a full disk: one line, and no traceback from the writer's thread -------------------------------

FULL = Path("/dev/full")  # every write to it fails with ENOSPC, as on a full disk


@pytest.mark.skipif(not FULL.is_char_device(), reason="needs /dev/full")
def test_a_full_disk_under_the_logs_is_one_line_without_the_writer_threads_traceback(tmp_path):
    """The event file is swapped for a link to /dev/full at step 2 (tensorboard opens it anew for
    every record), so the next records fail with a real ENOSPC, in the writer's background thread."""
    logs, run_dir = tmp_path / "tb", tmp_path / "run"
    filler = tmp_path / "filler.py"
    filler.write_text(textwrap.dedent(f"""
        from pathlib import Path
        from ganzoo import hookimpl

        @hookimpl
        def ganzoo_on_step_end(trainer, step):
            if step == 2:
                for events in Path({str(logs)!r}).glob("events.out.tfevents.*"):
                    events.unlink()
                    events.symlink_to("/dev/full")
    """))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "ganzoo", "--plugin", str(filler), "train", "psg", "--limit-data", "64",
                             "--batch-size", "16", "--device", "cpu", "--steps", "8", "--log-every", "1", "--tensorboard", str(logs),
                             "--out", str(run_dir), "--quiet"], check=False, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr and "Exception in thread" not in result.stderr
    assert "No space left on device" in lines[0] and f"--resume {run_dir}" in lines[0]
    assert [p.is_symlink() for p in logs.iterdir()] == [True]  # the failure came from /dev/full


@pytest.mark.skipif(not FULL.is_char_device(), reason="needs /dev/full")
def test_a_write_that_fails_when_the_logs_close_is_raised_not_printed_nor_lost(tmp_path, monkeypatch):
    """The last events fail only as the run ends: close() raises the failure (ganzoo reports it in one
    line); the writer thread prints nothing and is gone."""
    printed = []
    monkeypatch.setattr(threading, "excepthook", printed.append)  # what would print a thread's traceback
    logs = tmp_path / "tb"
    trainer = SimpleNamespace(config=SimpleNamespace(options={"tensorboard": str(logs)}), step=0)
    before = set(threading.enumerate())
    logger = Logger()
    logger.ganzoo_on_train_start(trainer)
    writers = set(threading.enumerate()) - before
    assert writers and all(t.is_alive() for t in writers)
    logger.writer.add_scalar("train/d_loss", 1.0, 1)
    logger.writer.flush()
    [events] = logs.iterdir()
    events.unlink()
    events.symlink_to(FULL)
    with contextlib.suppress(OSError):  # the thread may already have failed: then the write says so
        logger.writer.add_scalar("train/d_loss", 0.5, 2)
    with pytest.raises(OSError) as failure:
        logger.close()
    assert failure.value.errno == errno.ENOSPC and logger.writer is None
    for thread in writers:
        thread.join(10)
    assert not any(t.is_alive() for t in writers) and printed == []
    logger.close()  # closing again does nothing
