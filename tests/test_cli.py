"""The CLI end to end on slices of real MNIST: train, sample, resume, list, and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from ganzoo import PLUGIN_API, __version__
from ganzoo.cli.main import cli
from ganzoo.core.tensorfile import save_tensor_file
from ganzoo.runs.checkpoint import read_checkpoint

SMALL = ["--limit-data", "256", "--batch-size", "32", "--device", "cpu"]
VENV_BIN = Path(sys.executable).parent


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def train(run_dir: Path, strategy: str, *extra: str, steps: int = 3):
    result = invoke("train", strategy, *SMALL, "--steps", str(steps), "--out", str(run_dir), "--json", *extra)
    assert result.exit_code == 0, result.output + str(result.exception)
    return json.loads(result.stdout)


def png_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        return image.size


@pytest.mark.parametrize("strategy, extra, n_gens", [
    ("psg", ["--n-gens", "2"], 2),
    ("psg", ["--n-gens", "3", "--aggregation", "algorithm1", "--no-shared-z"], 3),
    ("sngan", ["--loss", "bce"], 1),
])
def test_train_writes_a_complete_run_directory(tmp_path, strategy, extra, n_gens):
    run_dir = tmp_path / "run"
    record = train(run_dir, strategy, *extra, steps=10)  # 256 // 32 = 8 steps an epoch: 1 epoch + 2 steps
    assert record["step"] == 10 and record["partial"] is True and record["run_dir"] == str(run_dir)
    assert sorted(p.name for p in run_dir.iterdir()) == [".lock", "checkpoint.safetensors", "config.toml", "metrics.jsonl", "samples"]
    assert sorted(p.name for p in (run_dir / "samples").iterdir()) == ["epoch-0001.png", "epoch-0002.png"]

    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [(r["epoch"], r["step"], r["partial"]) for r in lines] == [(1, 8, False), (2, 10, True)]
    for r in lines:
        assert len(r["g_loss"]) == n_gens
        assert r["loss_gap"] == pytest.approx(abs(r["d_loss"] - r["g_loss_mean"]))
        assert r["images_per_s"] > 0 and r["seconds"] > 0
        assert r["chance"] == pytest.approx(1 / (n_gens + 1) if strategy == "psg" else 0.5)

    config = tomllib.loads((run_dir / "config.toml").read_text())
    assert config["train"]["strategy"] == strategy and config["train"]["n_gens"] == n_gens
    assert config["train"]["batch_size"] == 32 and config["train"]["lr"] == 1e-3  # the strategies' defaults (the recipe study)
    assert config["meta"]["ganzoo_version"] == __version__
    assert "MD5 verified" in config["meta"]["data_source"]

    tensors, manifest = read_checkpoint(run_dir / "checkpoint.safetensors")
    assert manifest["strategy"] == strategy and manifest["format"] == 1
    assert manifest["architecture"] == "dcgan28" and manifest["image_shape"] == [1, 28, 28]
    assert manifest["step"] == 10 and manifest["epoch"] == 1
    assert manifest["parts"]["strategy"]["plugin"] == strategy
    assert sum(k.startswith("generator.") and k.endswith("net.0.weight") for k in tensors) == n_gens
    if strategy == "sngan":
        assert any("parametrizations.weight.original" in k for k in tensors)

    # an epoch grid: one block of 64 fixed-z samples (8 rows of 8) per generator
    block = 8 * 30 + 2
    assert png_size(run_dir / "samples" / "epoch-0001.png") == (242, n_gens * block + (n_gens - 1) * 6)


def test_sample_grid_sizes_and_generator_choice(tmp_path):
    run_dir = tmp_path / "run"
    train(run_dir, "psg", "--n-gens", "2")
    out = tmp_path / "grid.png"
    result = invoke("sample", str(run_dir), "--n", "16", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert png_size(out) == (242, 2 * (2 * 30 + 2) + 6)
    one = tmp_path / "one.png"
    assert invoke("sample", str(run_dir), "--n", "5", "--generator", "2", "--columns", "5", "--out", str(one)).exit_code == 0
    assert png_size(one) == (5 * 30 + 2, 32)
    with Image.open(one) as image:
        pixels = torch.from_numpy(np.asarray(image).astype("float32"))
    assert pixels.std() > 1  # generated images, not a blank canvas
    bad = invoke("sample", str(run_dir), "--generator", "3", "--out", str(one))
    assert bad.exit_code == 2 and "this run has 2 generators" in bad.stderr


def test_resume_continues_and_refuses_changes(tmp_path):
    run_dir = tmp_path / "run"
    train(run_dir, "psg", steps=4)
    result = invoke("train", "psg", "--resume", str(run_dir), "--steps", "6", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["step"] == 6
    assert read_checkpoint(run_dir)[1]["step"] == 6
    changed = invoke("train", "psg", "--resume", str(run_dir), "--n-gens", "3")
    assert changed.exit_code == 2 and "cannot change --n-gens when resuming" in changed.stderr
    other = invoke("train", "sngan", "--resume", str(run_dir))
    assert other.exit_code == 2 and "ganzoo train psg --resume" in other.stderr
    again = invoke("train", "psg", *SMALL, "--steps", "1", "--out", str(run_dir))
    assert again.exit_code == 2 and "already holds a run" in again.stderr


def test_config_file_and_command_line_precedence(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('n_gens = 3\naggregation = "independent"\nbatch_size = 16\n')
    run_dir = tmp_path / "run"
    train(run_dir, "psg", "--config", str(config), "--n-gens", "2", steps=1)
    saved = tomllib.loads((run_dir / "config.toml").read_text())["train"]
    assert (saved["n_gens"], saved["aggregation"], saved["batch_size"]) == (2, "independent", 32)


def _not_a_run(tmp_path: Path) -> list[tuple[list[str], str]]:
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    pickled = tmp_path / "model.pt"
    torch.save({"w": torch.zeros(1)}, pickled)
    foreign = tmp_path / "needs-plugin.safetensors"
    save_tensor_file(foreign, {"w": torch.zeros(1)}, {
        "architecture": "resnet9000", "parts": {"architecture": {"name": "resnet9000", "plugin": "ganzoo-bigmodels"}},
        "strategy": "psg", "config": {"dataset": "mnist", "n_gens": 1, "z_dim": 100}, "image_shape": [1, 28, 28],
    })
    incomplete = tmp_path / "incomplete.safetensors"
    save_tensor_file(incomplete, {"w": torch.zeros(1)}, {"strategy": "psg"})
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text("n_gens = 2\nwidth = 3\n")
    train_small = ["train", "psg", *SMALL, "--steps", "1"]
    return [
        (["train", "psg", "--n-gens", "0"], "n-gens must be at least 1, got 0"),
        (["train", "psg", "--n-gens", "-2"], "n-gens must be at least 1"),
        (["train", "psg", "--batch-size", "0"], "batch-size must be at least 1"),
        (["train", "psg", "--lr", "0"], "lr must be a positive number"),
        (["train", "psg", "--aggregation", "avg"], "unknown aggregation 'avg'"),
        (["train", "psg", "--dataset", "minst"], "did you mean 'mnist'"),
        (["train", "psg", "--arch", "dcgan"], "did you mean 'dcgan64' or 'dcgan28'"),
        (["train", "pgs"], "did you mean psg"),
        ([*train_small, "--out", str(a_file)], "is a file"),
        ([*train_small, "--config", str(bad_toml)], "unknown setting 'width'"),
        (["train", "psg", "--resume", str(tmp_path / "nothing")], "nothing to resume"),
        (["sample", str(pickled)], "never unpickles"),
        (["sample", str(a_file)], "not a safetensors file"),
        (["sample", str(foreign)], "needs the architecture 'resnet9000' from plugin 'ganzoo-bigmodels'"),
        (["sample", str(tmp_path / "missing")], "checkpoint not found"),
        (["sample", str(incomplete)], "the manifest: field 'architecture' is missing"),
    ]


def test_bad_input_is_one_line_and_exit_code_2(tmp_path):
    for args, message in _not_a_run(tmp_path):
        result = invoke(*args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.output
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "nothing").exists()


def test_debug_shows_the_exception():
    result = invoke("--debug", "train", "psg", "--n-gens", "0")
    assert result.exit_code != 2 and type(result.exception).__name__ == "GanzooError"


def test_version_and_help():
    assert invoke("--version").stdout.strip() == f"ganzoo {__version__} (plugin API {PLUGIN_API})"
    for args in (["-h"], ["--help"], ["train", "-h"], ["train", "psg", "--help"], ["sample", "-h"]):
        result = invoke(*args)
        assert result.exit_code == 0 and "Usage:" in result.stdout
    psg_help = invoke("train", "psg", "--help").stdout
    for option in ("--n-gens", "--aggregation", "--shared-z / --no-shared-z", "--spectral-norm", "--epochs", "--steps", "--resume", "--config"):
        assert option in psg_help
    assert "--loss [hinge|bce]" in invoke("train", "sngan", "--help").stdout


def test_real_subprocesses_train_and_sample(tmp_path):
    """The installed console script and python -m ganzoo, as a user runs them."""
    env = {**os.environ, "COLUMNS": "120"}
    run_dir = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "ganzoo", "train", "psg", "--n-gens", "2", *SMALL, "--steps", "2", "--out", str(run_dir)],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "run directory" in done.stdout and str(run_dir) in done.stdout  # the summary table
    sampled = subprocess.run(
        [str(VENV_BIN / "ganzoo"), "sample", str(run_dir), "--n", "8", "--out", str(tmp_path / "s.png")],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert sampled.returncode == 0, sampled.stderr
    assert png_size(tmp_path / "s.png") == (242, 2 * 32 + 6)
    failed = subprocess.run([str(VENV_BIN / "ganzoo"), "train", "psg", "--n-gens", "0"], capture_output=True, text=True, timeout=300)
    assert failed.returncode == 2 and failed.stderr.strip() == "error: n-gens must be at least 1, got 0"


def test_resume_with_epochs_after_a_steps_run(tmp_path):
    run_dir = tmp_path / "run"
    train(run_dir, "sngan", steps=3)  # 8 steps an epoch
    result = invoke("train", "sngan", "--resume", str(run_dir), "--epochs", "2", "--json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert (record["epoch"], record["step"], record["partial"]) == (2, 16, False)


def test_help_groups_options_by_the_part_that_owns_them():
    text = invoke("train", "psg", "--help").stdout
    order = ["Core options:", "--policy", "--n-gens", "--dataset", "--epochs", "--json", "Policy options:", "--gman-lambda", "--loss",
             "Observer options (any run):", "--ema"]
    # where each option's own line is (its flag may also appear in another option's help)
    where = [text.index(word if word.endswith(":") else f"\n  {word}") for word in order]
    assert where == sorted(where)
    assert "[policies binary, pac; default: bce; tune searches hinge,bce]" in " ".join(text.split())  # who owns --loss, its one default, its space
    assert "[policy gman, aggregation gman; default: 1.0]" in " ".join(text.split())  # an option of two kinds of part
    sngan = " ".join(invoke("train", "sngan", "--help").stdout.split())
    assert "[policies binary, pac; default: bce; this strategy: hinge; tune searches hinge,bce]" in sngan  # and the strategy's own value, where it sets one


def test_more_bad_input_is_one_line_and_exit_code_2(tmp_path):
    run_dir = tmp_path / "run"
    train(run_dir, "psg", steps=2)
    leftovers = tmp_path / "leftovers"
    leftovers.mkdir()
    (leftovers / "metrics.jsonl").write_text("{}\n")
    fifo = tmp_path / "fifo.png"
    os.mkfifo(fifo)
    dated = tmp_path / "dated.toml"
    dated.write_text("[options]\ntensorboard = 1979-05-27\n")
    cases = [
        (["train", "psg", "--resume", str(run_dir), "--steps", "1"], "already at step 2"),
        (["train", "psg", *SMALL, "--steps", "1", "--out", str(leftovers)], "is not empty"),
        (["train", "psg", "--lr", "inf"], "lr must be a positive number"),
        (["train", "psg", "--seed", "100000000000000"], "seed must be in [0, 2**32)"),
        (["train", "psg", "--config", str(dated)], "--tensorboard needs a folder"),
        (["sample", str(run_dir), "--out", str(tmp_path)], "is not a regular file"),
        (["sample", str(run_dir), "--out", str(fifo)], "is not a regular file"),
        (["sample", str(run_dir), "--out", str(tmp_path / "no" / "such" / "x.png")], "does not exist"),
        (["sample", str(run_dir), "--device", "tpu"], "device must be auto, cpu, cuda or cuda:N"),
    ]
    for args, message in cases:
        result = invoke(*args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.stderr, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1
    assert [p.name for p in leftovers.iterdir()] == ["metrics.jsonl"]


def test_a_run_config_passed_back_with_epochs_trains_whole_epochs(tmp_path):
    first = tmp_path / "first"
    train(first, "sngan", steps=3)
    second = tmp_path / "second"
    result = invoke("train", "sngan", "--config", str(first / "config.toml"), "--epochs", "1", "--out", str(second), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["step"] == 8  # a whole epoch of 256 // 32, not the file's 3 steps


def test_ctrl_c_exits_130_and_says_how_to_resume(tmp_path):
    import signal
    import time

    run_dir = tmp_path / "run"
    args = [sys.executable, "-m", "ganzoo", "train", "sngan", "--limit-data", "64", "--batch-size", "32",
            "--device", "cpu", "--steps", "100000", "--out", str(run_dir), "--quiet"]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (run_dir / "checkpoint.safetensors").exists() and time.time() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "continue with: ganzoo train sngan --resume" in stderr and "Traceback" not in stderr
    resumed = invoke("train", "sngan", "--resume", str(run_dir), "--steps", str(read_checkpoint(run_dir)[1]["step"] + 2), "--json")
    assert resumed.exit_code == 0, resumed.output


def training_started(run_dir: Path, strategy: str, *options: str) -> subprocess.Popen:
    """``ganzoo train`` in a subprocess, returned once it has written its config.toml."""
    import time

    args = [sys.executable, "-m", "ganzoo", "train", strategy, *options, "--device", "cpu", "--out", str(run_dir), "--quiet"]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (run_dir / "config.toml").exists() and time.time() < deadline:
        time.sleep(0.1)
    return process


def test_a_sigint_passed_on_after_usr2_is_not_a_second_ctrl_c(tmp_path):
    """A Slurm job warned of its end (USR2) passes the warning on to its training, which Slurm may
    have warned too; a SIGINT that follows another signal must not interrupt without a checkpoint
    (the order the handlers see is tested in-process below)."""
    import signal
    import time

    run_dir = tmp_path / "run"
    process = training_started(run_dir, "sngan", "--batch-size", "512", "--limit-data", "51200")  # long steps: both signals land in one
    time.sleep(1.0)
    process.send_signal(signal.SIGUSR2)
    time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    # Python runs the handlers of signals pending together lowest number first, so either may be the
    # first one seen (and reported); what must hold is the stop at a checkpoint, not an interrupt.
    assert process.returncode in (128 + signal.SIGINT, 128 + signal.SIGUSR2), stderr
    step = read_checkpoint(run_dir)[1]["step"]
    assert 0 < step < 100 and f"at step {step}; checkpoint saved" in stderr and stderr.startswith("stopped by signal")
    assert "interrupted" not in stderr


def test_only_a_second_sigint_interrupts_at_once():
    """The handler itself, in this process: the first signal is the one reported; a SIGINT after
    USR2 or SIGTERM only asks to stop; a second SIGINT raises KeyboardInterrupt."""
    import os
    import signal
    import time
    from types import SimpleNamespace

    from ganzoo.training.session import stop_on_signals

    def handled(*numbers: int) -> tuple[int | None, bool]:
        trainer = SimpleNamespace(stop_signal=None)
        try:
            with stop_on_signals(trainer):
                for number in numbers:
                    os.kill(os.getpid(), number)
                    time.sleep(0.01)  # the handler runs here
        except KeyboardInterrupt:
            return trainer.stop_signal, True
        return trainer.stop_signal, False

    assert handled(signal.SIGUSR2, signal.SIGINT) == (signal.SIGUSR2, False)
    assert handled(signal.SIGTERM, signal.SIGINT, signal.SIGUSR2) == (signal.SIGTERM, False)
    assert handled(signal.SIGINT) == (signal.SIGINT, False)
    assert handled(signal.SIGINT, signal.SIGINT) == (signal.SIGINT, True)
    assert handled(signal.SIGTERM, signal.SIGINT, signal.SIGINT) == (signal.SIGTERM, True)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored


def test_sigterm_mid_epoch_saves_a_checkpoint_there_and_exits_143(tmp_path):
    import signal
    import time

    run_dir = tmp_path / "run"
    process = training_started(run_dir, "psg", "--batch-size", "32", "--limit-data", "6400")
    time.sleep(1.5)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, stderr
    step = read_checkpoint(run_dir)[1]["step"]
    assert 0 < step < 200  # mid-epoch: an epoch is 200 steps
    assert f"stopped by signal 15 at step {step}; checkpoint saved in {run_dir}" in stderr
    assert not (run_dir / "metrics.jsonl").exists()  # no epoch ended
    resumed = invoke("train", "psg", "--resume", str(run_dir), "--steps", str(step + 1), "--json")
    assert resumed.exit_code == 0, resumed.output
