"""The per-job overhead of ``ganzoo compare --launcher slurm`` and ``--launcher ray`` against the
local launcher, measured in one run on this machine (docs/performance.md, "Launchers").

The same comparison (K tiny runs, each trained and evaluated) goes through each launcher in turn,
the order rotating every round; every launcher runs one job at a time with the same threads (2),
so the jobs' own work is the same and the difference in wall time, divided by K, is what each
launcher adds per job: submission, scheduling, the job's start (submitit's or Ray's Python process),
and the polling that notices the end. It starts a single-node Slurm (tests/cluster/slurm.sh, as
root with Debian's slurm packages) and a local Ray head, and stops both.

    python benchmarks/launchers.py               # 4 jobs, 2 rounds: about 5 minutes on 2 cores
    python benchmarks/launchers.py --jobs 8 --rounds 3
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def compare(launcher: str, out: Path, jobs: int, env: dict[str, str], ray_address: str) -> float:
    argv = [str(BIN / "ganzoo"), "compare", "sngan", "--seeds", str(jobs), "--epochs", "1", "--limit-data", "256", "--eval-n", "200",
            "--final-n", "200", "--out", str(out), "--launcher", launcher]
    argv += {"local": ["--jobs", "1"], "slurm": ["--slurm-cpus", "2"], "ray": ["--ray-cpus", "2", "--ray-address", ray_address]}[launcher]
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{launcher} failed ({done.returncode}): {done.stderr.strip()[-800:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=4, help="runs per comparison")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    load = os.getloadavg()[0]
    if load > 0.5:
        print(f"warning: load average {load:.1f}: other work is running; the overheads will be noisy", file=sys.stderr)
    work = Path(tempfile.mkdtemp(prefix="launch", dir="/tmp"))  # short: Ray's socket paths have a length limit
    env = dict(os.environ, SLURM_CONF=str(work / "slurm" / "slurm.conf"))
    slurm = subprocess.run(["bash", str(ROOT / "tests" / "cluster" / "slurm.sh"), "start", str(work / "slurm")], capture_output=True, text=True)
    if slurm.returncode != 0:
        raise SystemExit(f"cannot start Slurm: {slurm.stderr.strip()}")
    ray_dir = work / "ray"
    started = subprocess.run([str(BIN / "ray"), "start", "--head", "--port=0", "--num-cpus=2", "--include-dashboard=false",
                              "--disable-usage-stats", f"--temp-dir={ray_dir}"], capture_output=True, text=True, env=env)
    try:
        if started.returncode != 0:
            raise SystemExit(f"cannot start Ray: {started.stderr.strip()[-500:]}")
        address = re.search(r"ray start --address='?([\w.\-]+:\d+)", started.stdout + started.stderr).group(1)
        times: dict[str, list[float]] = {"local": [], "slurm": [], "ray": []}
        order = list(times)
        for r in range(args.rounds):
            for launcher in order[r % 3:] + order[:r % 3]:
                out = work / f"{launcher}-{r}"
                times[launcher].append(compare(launcher, out, args.jobs, env, address))
                shutil.rmtree(out)
                print(f"round {r + 1}: {launcher} {times[launcher][-1]:.1f} s", file=sys.stderr)
        local = statistics.median(times["local"])
        print(f"\n{args.jobs} jobs per comparison, one at a time with 2 threads, median of {args.rounds} rounds")
        print("| launcher | wall s | per job s | overhead per job s |")
        print("|---|---:|---:|---:|")
        for launcher, values in times.items():
            wall = statistics.median(values)
            print(f"| {launcher} | {wall:.1f} | {wall / args.jobs:.1f} | {(wall - local) / args.jobs:+.1f} |")
    finally:
        subprocess.run([str(BIN / "ray"), "stop", "--force"], capture_output=True)
        subprocess.run(["bash", str(ROOT / "tests" / "cluster" / "slurm.sh"), "stop", str(work / "slurm")], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
