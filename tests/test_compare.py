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

from ganzoo.cli.compare import parse_spec
from ganzoo.cli.main import cli

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
    assert len(claims) == 4
    assert all(row[-1] in ("supported", "not supported", "inconclusive") for row in claims)
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
