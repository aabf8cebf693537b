"""The tensorboard plugin (--tensorboard DIR): what it logs, read back with TensorBoard's own reader."""

from __future__ import annotations

import json
import sys
import tomllib

import pytest
from click.testing import CliRunner
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from ganzoo import hookimpl
from ganzoo.cli.main import cli
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
    assert saved == {"tensorboard": str(logs.resolve()), "ema": 0.999, "ema_warmup": True, "r1": 0.0}


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
