"""``ganzoo compare`` end to end on a tiny budget, through real subprocesses (one comparison,
shared by the tests that read it), and its refusals in-process."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from ganzoo.cli.main import cli
from ganzoo.compare.jobs import parse_spec

TINY = ["--epochs", "2", "--limit-data", "128", "--eval-n", "100", "--final-n", "100"]


def compare(out, *extra: str, specs=("psg --n-gens 2", "sngan"), timeout=600) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "ganzoo", "compare", *specs, "--out", str(out), *extra]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


def test_parse_spec():
    spec = parse_spec("psg --n-gens 2")
    assert (spec.label, spec.strategy, spec.args) == ("psg-n-gens-2", "psg", ("--n-gens", "2"))
    assert parse_spec("wide=psg --n-gens 4").label == "wide"
    assert parse_spec("sngan").args == ()


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    """One comparison (psg with 2 generators and sngan, 2 seeds, 2 jobs) for the module's tests to read."""
    out = tmp_path_factory.mktemp("compare") / "cmp"
    done = compare(out, "--seeds", "2", "--jobs", "2", *TINY)
    assert done.returncode == 0, done.stderr
    return out


def test_compare_trains_evaluates_reports_and_reruns_for_free(compared):
    out = compared
    report = (out / "report.md").read_text()
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["runs"]) == {"psg-n-gens-2", "sngan"}
    for runs in summary["runs"].values():
        assert len(runs) == 2
        for run in runs:
            assert run["epochs"] == [1, 2] and len(run["fid_curve"]) == 2
            assert run["final_fid"] > 0 and run["protocol"]["n_fake"] == 100
            assert 1 <= run["final_classes"] <= 10
    psg_run = summary["runs"]["psg-n-gens-2"][0]
    assert len(psg_run["g_loss"][0]) == 2 and psg_run["chance"] == pytest.approx(1 / 3)
    claims = summary["claims"]
    assert len(claims) == 5  # claim 2 under both convergence definitions
    assert claims[0][-1] == "not judged"  # tuple against hinge: gaps of different losses
    assert all(row[-1] in ("supported", "not supported", "inconclusive") for row in claims[1:])
    for heading in ("## Results", "## The paper's claims", "## Figures", "## Runs", "Welch's t"):
        assert heading in report
    for figure in ("fig3-losses.png", "fig4-d-accuracy.png", "fid-kid-coverage.png", "fig5-samples.png"):
        assert (out / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "command: `ganzoo compare 'psg --n-gens 2' sngan" in report

    stamps = {p: p.stat().st_mtime_ns for p in out.glob("runs/*/*/metrics.jsonl")}
    again = compare(out, "--seeds", "2", "--jobs", "2", *TINY)
    assert again.returncode == 0, again.stderr
    assert {p: p.stat().st_mtime_ns for p in out.glob("runs/*/*/metrics.jsonl")} == stamps  # nothing retrained

    other = compare(out, "--seeds", "3", "--jobs", "2", *TINY)
    assert other.returncode == 2 and "other settings (seeds)" in other.stderr


@pytest.mark.parametrize(("specs", "message"), [
    (("psgg",), "unknown strategy 'psgg'"),
    (("psg --seed 3",), "--seed, which compare sets"),
    (("psg --n-genz 2",), "No such option"),
    (("psg", "psg"), "same label"),
])
def test_bad_configurations_fail_before_anything_runs(tmp_path, specs, message):
    result = CliRunner().invoke(cli, ["compare", *specs, "--out", str(tmp_path / "cmp"), *TINY])
    assert result.exit_code == 2
    assert message in result.stderr and result.stderr.count("\n") == 1
    assert not (tmp_path / "cmp").exists()


def test_a_run_that_compare_s_own_settings_make_impossible_fails_up_front(tmp_path):
    # Alone, "sngan --lr-schedule linear" is fine; with compare's budget in minutes (no steps to
    # decay over) it is not, and that is found before any job starts or anything is written.
    out = tmp_path / "cmp"
    result = CliRunner().invoke(cli, ["compare", "sngan --lr-schedule linear", "--out", str(out), "--minutes", "5", "--limit-data", "128"])
    assert result.exit_code == 2, result.output
    assert "configuration 'sngan --lr-schedule linear': --lr-schedule linear decays over the run's steps" in result.stderr
    assert not out.exists()


def test_a_decaying_schedule_is_refused_where_compare_would_lengthen_its_runs(tmp_path):
    # The schedule's length is fixed when a run starts: --until-converged (chunks) and a rerun with
    # more epochs would both resume past it, and every job would fail after its first run.
    spec, out = "sngan --lr-schedule linear", tmp_path / "cmp"
    chunks = CliRunner().invoke(cli, ["compare", spec, "--out", str(out), "--until-converged", *TINY])
    assert chunks.exit_code == 2, chunks.output
    assert "configuration 'sngan --lr-schedule linear': --lr-schedule linear decays over the steps a run starts with" in chunks.stderr
    assert not out.exists()

    from ganzoo.compare.jobs import STATE, state_document

    settings = {"specs": [spec], "seeds": 1, "epochs": 2, "minutes": None, "dataset": "mnist", "limit_data": 128, "eval_every": "1",
                "eval_n": 100, "final_n": 100, "features": "lenet", "until_converged": False}
    out.mkdir()
    (out / STATE).write_bytes(state_document(settings, ["ganzoo", "compare"]))  # a comparison that trained 2 epochs
    longer = CliRunner().invoke(cli, ["compare", spec, "--out", str(out), "--seeds", "1", *TINY[2:], "--epochs", "3"])
    assert longer.exit_code == 2, longer.output
    assert "decays its learning rate over the 2 epochs its runs started with; they cannot train to 3" in longer.stderr


@pytest.mark.slow  # a second comparison, killed and run again
def test_a_killed_compare_resumes_with_finished_work_kept(tmp_path):
    """SIGKILL compare mid-run: its training gets SIGTERM from the kernel, checkpoints and stops;
    the same command then finishes every run and keeps what was done."""
    out = tmp_path / "cmp"
    argv = [sys.executable, "-m", "ganzoo", "compare", "sngan", "--out", str(out), "--seeds", "2", "--jobs", "1",
            "--epochs", "3", "--limit-data", "320", "--eval-n", "100", "--final-n", "100"]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = out / "runs" / "sngan" / "seed-0" / "metrics.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and not (first.exists() and first.read_text().count("\n") >= 1):
        time.sleep(0.2)
    assert first.exists(), "the first epoch never finished"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    kept = first.read_text().splitlines()[0]
    deadline = time.time() + 60  # the orphaned trainer checkpoints and exits on its SIGTERM
    while time.time() < deadline and subprocess.run(["pgrep", "-f", str(out)], capture_output=True, check=False).returncode == 0:
        time.sleep(0.2)
    log = (out / "logs" / "sngan-seed-0.log").read_text()
    assert "stopped by signal 15" in log  # SIGTERM from the kernel when compare died
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    lines = first.read_text().splitlines()
    assert lines[0] == kept and [json.loads(line)["epoch"] for line in lines] == [1, 2, 3]
    assert (out / "runs" / "sngan" / "seed-1" / "eval-lenet.json").exists()


def test_the_report_keeps_its_tables_without_matplotlib(compared, tmp_path, monkeypatch):
    """Plots are an optional extra: without matplotlib the report says how to get them."""
    out = tmp_path / "cmp"
    shutil.copytree(compared, out)
    for figure in out.glob("*.png"):
        figure.unlink()
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    from ganzoo.evaluation.compare_report import write_report

    settings = json.loads((out / "compare.json").read_text())["settings"]
    report = write_report(out, [parse_spec(s) for s in settings["specs"]], settings["seeds"], settings).read_text()
    assert "No figures: install matplotlib" in report and "## Results" in report and "final FID" in report
    assert not list(out.glob("*.png"))


def write_run(run_dir, train, fids, gaps, accuracies, chance):
    """A finished run's config.toml and metrics.jsonl, as ganzoo train writes them: one record per epoch."""
    from ganzoo.runs import rundir

    run_dir.mkdir(parents=True)
    rundir.write_config(run_dir, {"options": {}, "aggregation": "mean", **train}, {})
    for epoch, (fid, gap, accuracy) in enumerate(zip(fids, gaps, accuracies), 1):
        rundir.append_metrics(run_dir, {"epoch": epoch, "step": 100 * epoch, "partial": False, "d_loss": 1.0, "g_loss": [1.0 + gap],
                                        "loss_gap": gap, "d_accuracy": accuracy, "chance": chance, "fid": fid, "kid": 0.1,
                                        "classes": 10, "seconds": 60.0, "train_seconds": 60.0 * epoch})


def test_claims_at_convergence_pair_losses_of_one_scale_and_order_censored_runs(tmp_path):
    """Five configurations with known curves: claim 1 compares the tuple loss with its N=1 case and
    binary PSG with SNGAN on BCE; claim 2 orders runs that converged against runs that did not."""
    from ganzoo.evaluation.compare_report import write_report

    tuple2 = {"strategy": "psg", "policy": "tuple", "n_gens": 2}
    configs = {  # label: (train, FIDs per epoch, loss gap, D accuracy, chance)
        "psg2": (tuple2, [200, 120, 80, 79, 78, 78], 0.6, 0.45, 1 / 3),
        "psg1": ({**tuple2, "n_gens": 1}, [200, 120, 80, 79, 78, 78], 1.0, 0.50, 1 / 2),
        "psg2-binary": ({**tuple2, "policy": "binary"}, [200, 120, 80, 79, 78, 78], 0.9, 0.49, 1 / 2),
        "sngan": ({"strategy": "sngan", "policy": "binary", "n_gens": 1, "options": {"loss": "hinge"}}, [300, 250, 200, 150, 100, 60], 0.2, 0.6, 1 / 2),
        "sngan-bce": ({"strategy": "sngan", "policy": "binary", "n_gens": 1, "options": {"loss": "bce"}}, [300, 250, 200, 150, 100, 60], 0.9, 0.6, 1 / 2),
    }
    out = tmp_path / "cmp"
    for label, (train, fids, gap, accuracy, chance) in configs.items():
        for seed in range(3):
            noise = 0.01 * (seed - 1)
            # a 20% spike in epoch 2 of psg2's gap: claims read only the epochs from convergence (epoch 3) on
            gaps = [gap + noise + (0.2 if label == "psg2" and epoch == 1 else 0.0) for epoch in range(6)]
            write_run(out / "runs" / label / f"seed-{seed}", train, fids, gaps, [accuracy + noise] * 6, chance)
    settings = {"features": "lenet", "epochs": 6, "minutes": None, "dataset": "mnist", "limit_data": 0, "eval_every": "1",
                "eval_n": 100, "final_n": 100}
    specs = [parse_spec(f"{label}={train['strategy']}") for label, (train, *_) in configs.items()]
    (out / "compare.json").write_text(json.dumps({"settings": {**settings, "specs": [s.text for s in specs], "seeds": 3}}))
    write_report(out, specs, 3, settings, baseline="sngan")
    summary = json.loads((out / "summary.json").read_text())
    psg2 = summary["runs"]["psg2"][0]
    assert (psg2["fid_plateau_epoch"], psg2["loss_band_epoch"], psg2["after_from"]) == (3, 3, 3)  # G loss spikes in epoch 2
    assert summary["runs"]["psg2-binary"][0]["loss_band_epoch"] == 1
    assert psg2["loss_gap"] == pytest.approx(0.59) and psg2["fid_plateau_minutes"] == pytest.approx(3.0)
    sngan = summary["runs"]["sngan"][0]
    assert sngan["fid_plateau_epoch"] is None and sngan["unconfirmed_from"]["fid"] == 5
    claims = {row[0]: row for row in summary["claims"]}
    assert len(claims) == 10  # psg2 and psg2-binary; psg1 has one generator
    gap = claims["psg2 vs psg1: 1. the G-D loss gap shrinks by about 40% (the same loss, one generator)"]
    assert "shrinks by 40%" in gap[1] and gap[-1] == "supported"
    binary = claims["psg2-binary vs sngan-bce: 1. the G-D loss gap shrinks by about 40% (the same loss, one generator)"]
    assert binary[-1] == "inconclusive"  # 0.9 against 0.9
    earlier = claims["psg2 vs sngan: 2. convergence comes earlier (FID plateau)"]
    assert earlier[-1] == "supported" and "every run converged by epoch 3" in earlier[2]
    assert earlier[1] == "epoch 3.00 ± 0.00 [3.00, 3.00] vs none of 3 runs; at FID 80.0, after 3.0 training minutes"
    assert claims["psg2 vs sngan: 3. D accuracy settles near chance (0.333 for this policy)"][-1] == "not supported"
    assert claims["psg2-binary vs sngan: 3. D accuracy settles near chance (0.500 for this policy)"][-1] == "supported"
    report = (out / "report.md").read_text()
    assert "| psg2-binary | 0 | 6 | - | 78.00 | epoch 3 | epoch 1 |" in report and "not by epoch 6" in report
    from ganzoo.evaluation.html_report import write_html_report

    page = write_html_report(out).path.read_text()
    assert "converged (FID plateau)" in page and "psg2-binary vs sngan-bce" in page


@pytest.mark.slow  # three resumed trainings: about 30 s on 2 cores
def test_until_converged_stops_a_run_at_its_confirmed_fid_plateau(tmp_path):
    """A generator that cannot move (lr 1e-12) has about the same FID at every evaluation: its plateau is
    epoch 1, confirmed by epochs 2 and 3, so the run stops there instead of at the cap of 6."""
    out = tmp_path / "cmp"
    done = compare(out, "--seeds", "1", "--epochs", "6", "--until-converged", "--limit-data", "128", "--eval-n", "100",
                   "--final-n", "100", specs=("frozen=sngan --lr 1e-12",))
    assert done.returncode == 0, done.stderr
    run = out / "runs" / "frozen" / "seed-0"
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    fids = [r["fid"] for r in records]
    assert [r["epoch"] for r in records] == [1, 2, 3] and max(fids) < 1.05 * min(fids)  # only BatchNorm's statistics move
    log = (out / "logs" / "frozen-seed-0.log").read_text()
    assert log.count(" train sngan ") == 3 and log.count("--resume") == 2  # one epoch per call, then the plateau
    summary = json.loads((out / "summary.json").read_text())["runs"]["frozen"][0]
    assert summary["fid_plateau_epoch"] == 1 and summary["final_fid"] > 0
    assert "until the FID plateau, at most 6 epochs" in (out / "report.md").read_text()
    bad = compare(out.with_name("other"), "--until-converged", "--eval-every", "500steps", specs=("sngan",))
    assert bad.returncode == 2 and "--eval-every 500steps is not K epochs" in bad.stderr
