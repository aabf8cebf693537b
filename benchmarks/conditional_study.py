"""Conditional against unconditional SNGAN and PSG N=2 on MNIST and Fashion-MNIST, 3 seeds, the same
budget (docs/results/conditional): every arm trains one epoch (937 steps of batch 64) with the
strategy's defaults, then ``ganzoo eval`` scores it (LeNet features of the dataset, 10,000 samples
against the test split; a conditional run asks every generator for every class in turn).

    python benchmarks/conditional_study.py --run --jobs 2     # train every arm (resumable: trained runs are kept)
    python benchmarks/conditional_study.py --eval --jobs 2    # evaluate every arm (eval-lenet.json in each run)
    python benchmarks/conditional_study.py --report           # table.md, summary.json and the sample grids

Budgets are in steps, so the numbers do not depend on what else ran on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "docs" / "results" / "conditional"
DATASETS = ("mnist", "fashion-mnist")
ARMS = {  # label -> ganzoo train arguments
    "sngan": ["sngan"],
    "sngan --conditional": ["sngan", "--conditional"],
    "psg N=2": ["psg", "--n-gens", "2"],
    "psg N=2 --conditional": ["psg", "--n-gens", "2", "--conditional"],
}
SEEDS = (0, 1, 2)
GANZOO = [sys.executable, "-m", "ganzoo"]


def run_dir(runs: Path, dataset: str, label: str, seed: int) -> Path:
    return runs / dataset / f"{label.replace(' ', '').replace('--', '-').replace('=', '')}-s{seed}"


def one(runs: Path, dataset: str, label: str, seed: int, threads: int, epochs: int, evaluate: bool) -> str:
    folder = run_dir(runs, dataset, label, seed)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}  # as ganzoo compare splits the cores
    if not evaluate and not (folder / "config.toml").exists():
        folder.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([*GANZOO, "train", *ARMS[label], "--dataset", dataset, "--epochs", str(epochs), "--seed", str(seed),
                        "--out", str(folder), "--quiet"], check=True, env=env)
    if evaluate and not (folder / "eval-lenet.json").exists():
        subprocess.run([*GANZOO, "eval", str(folder), "--json"], check=True, env=env, stdout=subprocess.DEVNULL)
    return str(folder)


def run(args: argparse.Namespace, evaluate: bool) -> None:
    jobs = [(d, label, s) for d in args.datasets for label in ARMS for s in SEEDS]
    threads = args.threads or max(1, (os.cpu_count() or 2) // args.jobs)
    with ThreadPoolExecutor(args.jobs) as pool:
        for done in pool.map(lambda job: one(args.runs, *job, threads, args.epochs, evaluate), jobs):
            print("evaluated" if evaluate else "trained", done, flush=True)


def mean_sd(values: list[float]) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.1f} ± {sd:.1f}" if max(values) > 2 else f"{statistics.mean(values):.3f} ± {sd:.3f}"


def report(args: argparse.Namespace) -> None:
    summary: dict = {}
    lines = ["| dataset | arm | FID | intra-class FID (mean) | intra-class FID (worst) | class consistency | classes covered |",
             "|---|---|---|---|---|---|---|"]
    for dataset in DATASETS:
        for label in ARMS:
            results = []
            for seed in SEEDS:
                path = run_dir(args.runs, dataset, label, seed) / "eval-lenet.json"
                if path.exists():
                    results.append(json.loads(path.read_text()))
            if not results:
                continue
            cell = {key: [r.get(key) for r in results] for key in ("fid", "intra_fid_mean", "intra_fid_worst", "class_consistency", "classes")}
            per_gen = [[g.get("class_consistency") for g in r.get("generators", [])] for r in results]
            summary.setdefault(dataset, {})[label] = {**cell, "seeds": len(results), "generators_class_consistency": per_gen,
                                                      "generators_classes": [[g.get("classes") for g in r.get("generators", [])]
                                                                             for r in results]}
            lines.append(f"| {dataset} | {label} | " + " | ".join(mean_sd(cell[k]) for k in cell) + " |")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "table.md").write_text("\n".join(lines) + "\n")
    (OUT / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print("\n".join(lines))
    for dataset in DATASETS:  # a picture of each conditional arm, seed 0: a row per class, a block per generator
        for label in ("sngan --conditional", "psg N=2 --conditional"):
            folder = run_dir(args.runs, dataset, label, 0)
            if folder.exists():
                name = f"{dataset}-{label.split()[0]}-classes.png"
                subprocess.run([*GANZOO, "sample", str(folder), "--class", "all", "--n", "8", "--out", str(OUT / name), "--quiet"],
                               check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", action="store_true")
    parser.add_argument("--eval", action="store_true")
    parser.add_argument("--report", action="store_true")
    parser.add_argument("--threads", type=int, default=0, help="torch threads per job (default: the cores / --jobs)")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--runs", type=Path, default=Path("runs/conditional-study"))
    args = parser.parse_args()
    if args.run:
        run(args, evaluate=False)
    if args.eval:
        run(args, evaluate=True)
    if args.report:
        report(args)


if __name__ == "__main__":
    main()
