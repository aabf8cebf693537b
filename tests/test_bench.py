"""A seconds-long smoke run of the benchmark suite (benchmarks are not tests: no speed is asserted)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # every section of the benchmark, shortened: about 2 minutes on 2 cores
def test_the_benchmark_script_runs_every_section_and_writes_its_table(tmp_path):
    table = tmp_path / "table.md"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench.py"), "--quick", "--markdown", str(table)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    every = {"startup", "overhead", "data", "generators", "switches", "throughput", "memory", "reference", "folders", "conditional",
             "penalties"}
    for section in every:
        assert f"[{section}]" in done.stdout
    rows = [line for line in table.read_text().splitlines() if line.startswith("| ") and not line.startswith("| section")]
    sections = {row.split(" | ")[0].strip("| ") for row in rows}
    assert sections == every

    # The numbers are measurements, not placeholders: positive, and in sane ranges.
    ratios = [float(m) for m in re.findall(r"step, ganzoo / bare loop, amp \w+ .*?\| ([\d.]+) \(target", table.read_text())]
    assert len(ratios) == 2 and all(0.3 < r < 3 for r in ratios)
    share = float(re.search(r"as a share of its step .*?\| ([\d.]+)%", table.read_text()).group(1))
    assert 0 < share < 100
    flops = [float(m) for m in re.findall(r"PSG N=\d: ([\d.]+) GFLOP/step", table.read_text())]
    assert len(flops) == 2 and flops[1] > flops[0] > 0  # a second generator is more work
    assert re.search(r"public script / ganzoo psg n_gens=2 \| \d+ s vs \d+ s \| [\d.]+x", table.read_text())
    startup = [float(m) for m in re.findall(r"--help, a fresh process \| [\d.]+ ms vs [\d.]+ ms \(python -c pass\) \| ([\d.]+)x", table.read_text())]
    assert len(startup) == 2 and all(1 < r < 100 for r in startup)
    assert re.search(r"EMA update alone: .* \| [\d.]+ us vs [\d.]+ us \| [\d.]+x", table.read_text())
    assert re.search(r"ganzoo / ImageFolder\+DataLoader \| \d+ vs \d+ images/s \| [\d.]+x", table.read_text())
    shares = [float(m) for m in re.findall(r"input pipeline at 64 px \((?:dcgan64|resnet64), batch 64\).*?\| ([\d.]+)% \(goal", table.read_text())]
    assert len(shares) == 2 and all(0 <= s < 100 for s in shares)
    assert re.search(r"peak RSS, training on 3,000 images .* \| \d+ MiB vs \d+ MiB \| \+-?[\d.]+ GiB", table.read_text())
    conditional = [float(m) for m in re.findall(r"(?:sngan|psg N=2): conditional / unconditional step \| [\d.]+ ms vs [\d.]+ ms \| ([\d.]+) \(target", table.read_text())]
    assert len(conditional) == 2 and all(0.3 < r < 3 for r in conditional)
    penalties = [float(m) for m in re.findall(r"0\.6's penalty / 0\.7's \| [\d.]+ ms vs [\d.]+ ms \| ([\d.]+)x faster", table.read_text())]
    assert len(penalties) == 4 and all(0.3 < r < 3 for r in penalties)  # psg R1, psg R2, sngan R1, rpgan R1
    assert re.search(r"psg N=2: its defaults \(R1, R2 30\) / --r1 0 --r2 0 \| [\d.]+ ms vs [\d.]+ ms \| [\d.]+x", table.read_text())


@pytest.mark.slow  # three short trainings with evaluations: about two minutes on 2 cores
def test_the_recipe_study_and_time_to_quality_runners_score_their_arms(tmp_path):
    """The study's arms run as ganzoo tune trials, and the benchmark's workers, shortened (few steps,
    256 images, 200 samples per FID), print one scored record per step point; the report turns the
    study's records into the table."""
    import json

    import optuna

    # An arm at one budget point is one trial of a ganzoo tune: its levers a one-point grid.
    out = tmp_path / "recipes"
    out.mkdir()
    (out / "rates.json").write_text(json.dumps({"lean-sngan": 20.0}))  # 20 s a step: 3 steps in a minute
    argv = [sys.executable, str(ROOT / "benchmarks" / "recipes.py"), "--tune", "--execute", "--arms", "lr4e-4+lean-sngan",
            "--budget", "60", "--eval-n", "200", "--limit-data", "256", "--out", str(out)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ganzoo tune sngan" in done.stdout and "--search lr=0.0004" in done.stdout and "--budget 3steps" in done.stdout
    tune = out / "tune" / "lr4e-4+lean-sngan-60s-s0"
    trial, = optuna.load_study(study_name="ganzoo-tune", storage=f"sqlite:///{tune / 'study.db'}").trials
    assert trial.state.name == "COMPLETE" and trial.value > 0 and trial.params == {"arch": "dcgan28-lean", "lr": 0.0004}

    def worker(script, arm, points):
        argv = [sys.executable, str(ROOT / "benchmarks" / script), "--train-one", arm, "--step-points", points,
                "--eval-n", "200", "--limit-data", "256"]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]

    shown = worker("time_to_quality.py", "defaults-psg", "3")
    assert shown[0]["step"] == 3 and shown[0]["fid"] > 0
    reference = worker("time_to_quality.py", "reference", "3")
    assert reference[0]["arm"] == "reference" and reference[0]["fid"] > 0

    # the report: rates and runs in, a table of means over seeds out
    out = tmp_path / "recipes-report"
    (out / "runs").mkdir(parents=True)
    (out / "rates.json").write_text(json.dumps({"base-sngan": 0.5}))
    for seed, fid in ((0, 100.0), (1, 120.0)):
        records = [{"arm": "base-sngan", "seed": seed, "step": 120, "raw": fid, "ema0.99": fid - 10, "ema0.999w": fid - 20}]
        (out / "runs" / f"base-sngan-s{seed}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "recipes.py"), "--report", "--out", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| base-sngan | 500.0 | 1 min | 120 | 2 | 110.0 ± 14.1 | 100.0 ± 14.1 | 90.0 ± 14.1 |" in (out / "table.md").read_text()


def script(name: str, *args: str) -> subprocess.CompletedProcess:
    """bash benchmarks/NAME ARGS, with this interpreter as its Python."""
    return subprocess.run(["bash", str(ROOT / "benchmarks" / name), *args], env={**os.environ, "PYTHON": sys.executable},
                          capture_output=True, text=True, timeout=600)


def paper_schedule(*args: str) -> subprocess.CompletedProcess:
    return script("paper_schedule.sh", *args)


@pytest.mark.slow  # six tiny trainings and evaluations through ganzoo compare: about 90 s on 2 cores
def test_the_paper_schedule_dry_run_trains_the_three_configurations_and_judges_the_claims(tmp_path):
    out = tmp_path / "ps"
    done = paper_schedule("--dry-run", "--out", str(out))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "3 configurations x 2 seeds, 2 epochs, 2 runs at a time on cpu" in done.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert {label: len(runs) for label, runs in summary["runs"].items()} == {"psg2": 2, "psg2-binary": 2, "sngan": 2}
    assert all(run["epochs"] == [1, 2] and run["final_fid"] > 0 for runs in summary["runs"].values() for run in runs)
    claims = [row[0] for row in summary["claims"]]
    assert len(claims) == 10 and sum(c.startswith("psg2-binary vs sngan") for c in claims) == 5
    assert "## The paper's claims" in (out / "report.md").read_text()


@pytest.mark.parametrize("name", ["paper_schedule.sh", "cifar10.sh"])
def test_the_gpu_scripts_refuse_a_machine_without_cuda_and_bad_options(tmp_path, name):
    if __import__("torch").cuda.is_available():
        pytest.skip("this machine has CUDA: the script would run for hours")
    done = script(name, "--out", str(tmp_path / "out"))
    assert done.returncode == 2 and done.stderr.strip().endswith("no CUDA device here (--dry-run runs the CPU check)")
    assert not (tmp_path / "out").exists()
    bad = script(name, "--epochz", "3")
    assert bad.returncode == 2 and bad.stderr.startswith(f"usage: bash benchmarks/{name}")


@pytest.mark.slow  # 3 resnet32 steps on a made-up folder and two tiny Inception evaluations: about 40 s on 2 cores
def test_the_cifar10_dry_run_trains_the_resnet_and_scores_both_protocols(tmp_path):
    done = script("cifar10.sh", "--dry-run", "--out", str(tmp_path / "c"))
    assert done.returncode == 0, done.stderr[-2000:]
    config = (tmp_path / "c" / "run" / "config.toml").read_text()
    for setting in ('arch = "resnet32"', "z_dim = 128", "n_dis = 5", "beta2 = 0.9", 'lr_schedule = "linear"', "steps = 3"):
        assert setting in config
    fids = re.findall(r"cifar10: FID ([\d.]+) \((\d+) samples vs (\d+) (\w+) images\)", done.stdout)
    assert [(n, real, split) for _, n, real, split in fids] == [("8", "40", "train"), ("8", "6", "test")]
    assert all(float(fid) > 0 for fid, *_ in fids)
