"""Budgets in training time and evaluation intervals: ``--minutes``, ``--eval-every`` in epochs,
steps or seconds, the weights a run shows while it trains (``--ema``), ``--lr-d`` and the dcgan28
variants, and ``ganzoo compare --minutes``."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import tomllib

import pytest
import torch

from ganzoo.core.config import make_config, parse_interval
from ganzoo.core.errors import GanzooError
from ganzoo.training.clock import TrainClock, crossed
from ganzoo.training.trainer import UNBOUNDED
from tests.helpers import TINY, invoke


def records_of(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("text, fields", [
    ("2", (2, 0, 0.0)), (3, (3, 0, 0.0)), ("2epochs", (2, 0, 0.0)), ("500steps", (0, 500, 0.0)), ("1step", (0, 1, 0.0)),
    ("60s", (0, 0, 60.0)), ("2.5m", (0, 0, 150.0)), ("90 seconds", (0, 0, 90.0)), ("0", (0, 0, 0.0)),
])
def test_intervals_parse_into_one_field(text, fields):
    parsed = parse_interval(text)
    assert (parsed["eval_every"], parsed["eval_every_steps"], parsed["eval_every_seconds"]) == fields


@pytest.mark.parametrize("text", ["5x", "-1", "1.5steps", "1.5", "steps", "", "60 s s"])
def test_bad_intervals_are_one_line(text):
    with pytest.raises(GanzooError, match="eval-every must be|whole number"):
        parse_interval(text)


def test_a_later_interval_replaces_an_earlier_one_of_another_kind():
    config = make_config("psg", {"eval_every": "60s"}, {"eval_every": 2})
    assert (config.eval_every, config.eval_every_seconds) == (2, 0.0)
    config = make_config("psg", {"eval_every": 2}, {"eval_every_steps": 100})
    assert (config.eval_every, config.eval_every_steps) == (0, 100)
    with pytest.raises(GanzooError, match="one evaluation interval"):
        make_config("psg", {"eval_every_steps": 100, "eval_every_seconds": 5.0})


def test_minutes_alone_has_no_epoch_limit_and_with_epochs_keeps_it():
    assert make_config("psg", {"minutes": 2.0}).epochs == 0
    assert make_config("psg", {"epochs": 3}, {"minutes": 2.0}).epochs == 3
    assert make_config("psg", {"steps": 50, "minutes": 2.0}).steps == 50
    with pytest.raises(GanzooError, match="epochs must be at least 1"):
        make_config("psg", {"epochs": 0})
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(GanzooError, match="minutes must be"):
            make_config("psg", {"minutes": bad})


def test_the_clock_leaves_out_paused_time():
    clock = TrainClock(10.0)
    clock.start()
    time.sleep(0.05)
    with clock.paused():
        time.sleep(0.3)
    time.sleep(0.05)
    seconds = clock.read()
    assert 10.1 <= seconds < 10.3
    assert crossed(59.0, 61.0, 60.0) and not crossed(61.0, 119.0, 60.0) and not crossed(0.0, 100.0, 0.0)


def test_eval_every_steps_scores_the_shown_weights_and_the_budget_end(small_run, host, tmp_path):
    """Evaluations at steps 3 and 6 and at the budget's end (7), of the EMA weights, with the same
    numbers as ganzoo eval of the saved run; training itself is not changed by them."""
    from ganzoo.evaluation.run_eval import evaluate_run

    plain = small_run("psg", out=tmp_path / "plain", steps=7, limit_data=128, options={"ema": 0.9})
    trainer = small_run("psg", out=tmp_path / "run", steps=7, limit_data=128, eval_every="3steps", eval_n=200,
                        options={"ema": 0.9})
    records = records_of(tmp_path / "run")
    # 128 images in batches of 32: epochs end at steps 4 and 8
    assert [(r["step"], r["partial"], "fid" in r) for r in records] == [(3, True, True), (4, False, False), (6, True, True), (7, True, True)]
    assert {r["eval_weights"] for r in records if "fid" in r} == {"ema"}
    assert all(r["train_seconds"] > 0 for r in records)
    assert [r["train_seconds"] for r in records] == sorted(r["train_seconds"] for r in records)
    saved = evaluate_run(host, tmp_path / "run", n=200, features="lenet", seed=0)
    assert saved["fid"] == pytest.approx(records[-1]["fid"], rel=1e-4)
    raw = evaluate_run(host, tmp_path / "run", n=200, features="lenet", seed=0, weights="raw")
    assert raw["fid"] != pytest.approx(records[-1]["fid"], rel=1e-3)  # the EMA was scored, not the raw weights
    for a, b in zip(plain.generators.parameters(), trainer.generators.parameters()):
        assert torch.equal(a, b)
    page = invoke(host, "report", str(tmp_path / "run"), "--out", str(tmp_path / "run.html"))
    assert page.exit_code == 0, page.output
    assert "FID over training time" in (tmp_path / "run.html").read_text()  # the three evaluations, by minutes


def test_without_ema_the_trained_weights_are_shown(small_run, tmp_path):
    small_run("sngan", out=tmp_path / "run", steps=4, limit_data=128, eval_every="2steps", eval_n=100, options={"ema": 0.0})
    assert [(r["step"], r.get("eval_weights")) for r in records_of(tmp_path / "run")] == [(2, "raw"), (4, "raw")]


def test_minutes_stop_checkpoint_and_resume_with_more(tiny_host, tmp_path):
    run = tmp_path / "run"
    done = invoke(tiny_host, "train", "dcgan", *TINY, "--minutes", "0.005", "--log-every", "1", "--out", str(run), "--quiet")
    assert done.exit_code == 0, done.output
    config = tomllib.loads((run / "config.toml").read_text())["train"]
    assert (config["epochs"], config["steps"], config["minutes"]) == (0, 0, 0.005)
    first = records_of(run)[-1]
    assert 0.3 <= first["train_seconds"] < 60 and first["step"] < UNBOUNDED
    again = invoke(tiny_host, "train", "dcgan", "--resume", str(run), "--quiet")
    trained = re.search(r"already trained (\d+\.\d\d) minutes; give a larger --minutes", again.output)
    assert again.exit_code == 2 and trained, again.output  # 0.01 on an idle machine; a loaded one overshoots more
    more = invoke(tiny_host, "train", "dcgan", "--resume", str(run), "--minutes", f"{float(trained[1]) + 0.01:.2f}", "--quiet")
    assert more.exit_code == 0, more.output
    last = records_of(run)[-1]
    assert last["train_seconds"] >= first["train_seconds"] + 0.25 and last["step"] > first["step"]


def test_minutes_and_epochs_stop_at_whichever_comes_first(tiny_host, tmp_path):
    run = tmp_path / "run"
    done = invoke(tiny_host, "train", "dcgan", *TINY, "--minutes", "60", "--epochs", "1", "--out", str(run), "--quiet")
    assert done.exit_code == 0, done.output
    assert [r["epoch"] for r in records_of(run)] == [1]


def test_lr_d_sets_the_discriminator_rate_only(small_run, tmp_path):
    trainer = small_run("sngan", out=tmp_path / "ttur", steps=1, lr=1e-4, lr_d=4e-4)
    assert trainer.d_optimizer.param_groups[0]["lr"] == 4e-4
    assert {g["lr"] for o in trainer.g_optimizers for g in o.param_groups} == {1e-4}
    assert small_run("sngan", out=tmp_path / "same", steps=1, lr=1e-4).d_optimizer.param_groups[0]["lr"] == 1e-4
    with pytest.raises(GanzooError, match="lr-d must be"):
        make_config("sngan", {"lr_d": 2.0})


def test_lean_and_wide_dcgan28_are_registered_and_train(host, small_run, tmp_path):
    sizes = {}
    for arch in ("dcgan28-lean", "dcgan28", "dcgan28-wide"):
        trainer = small_run("sngan", out=tmp_path / arch, steps=1, arch=arch)
        sizes[arch] = sum(p.numel() for p in trainer.generators.parameters())
        assert trainer.arch_name == arch
    assert sizes["dcgan28-lean"] < sizes["dcgan28"] < sizes["dcgan28-wide"]


@pytest.mark.slow
def test_compare_with_a_time_budget(tmp_path):
    out = tmp_path / "cmp"
    argv = [sys.executable, "-m", "ganzoo", "compare", "sngan", "--seeds", "1", "--minutes", "0.02", "--limit-data", "128",
            "--eval-every", "4steps", "--eval-n", "100", "--final-n", "100", "--out", str(out)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    run = out / "runs" / "sngan" / "seed-0"
    config = tomllib.loads((run / "config.toml").read_text())["train"]
    assert (config["minutes"], config["epochs"], config["eval_every_steps"]) == (0.02, 0, 4)
    assert records_of(run)[-1]["train_seconds"] >= 1.2
    assert "0.02 minutes of training" in (out / "report.md").read_text()
    assert "every 4steps of training" in (out / "report.md").read_text()
    before = records_of(run)
    again = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)  # finished: nothing retrained
    assert again.returncode == 0, again.stderr
    assert records_of(run) == before
