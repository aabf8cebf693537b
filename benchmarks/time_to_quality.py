"""Time to quality on MNIST: FID against training time, up to 10 minutes per arm, for ganzoo's
defaults (PSG N=2 and SNGAN), its defaults before the recipe study (0.3), and the typical public
script (benchmarks/reference_dcgan.py, untuned, as it would run).

Budgets are training time of a run that has the machine (2 threads) to itself, as in
benchmarks/recipes.py, whose rates.json this shares: the 0.3 defaults are timed alone there
(machine idle), and ``--rates`` times the other arms against them in alternation in one process.
``--run`` then trains the arms side by side, one thread each, for the steps a solo run makes in
each budget, and scores
them at 0.5, 1, 1.5, 2, 3, 5, 7.5 and 10 minutes like ``ganzoo eval``: LeNet features, 10,000
samples, the MNIST test split, sampling seed 0, the weights ``ganzoo eval`` would use (the EMA
when the arm has one). The reference's 32x32 images are resized to 28x28 with antialiasing.

    python benchmarks/recipes.py --rates --arms base-psg base-sngan   # once, machine idle
    python benchmarks/time_to_quality.py --rates
    python benchmarks/time_to_quality.py --run --jobs 2   # about 45 minutes on 2 cores
    python benchmarks/time_to_quality.py --report         # table.md, curves.json, time-to-quality.png
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import recipes  # noqa: E402  (benchmarks/ is not a package)

OUT = HERE.parent / "docs" / "results" / "time-to-quality"
POINTS = (30, 60, 90, 120, 180, 300, 450, 600)  # seconds of solo training
REPORTED = (60, 120, 300, 600)  # the table's columns
TARGETS = (100, 50)
# arm label -> a recipes.py arm name, or "reference"
ARMS = {
    "ganzoo psg --n-gens 2 (defaults)": "defaults-psg",
    "ganzoo sngan (defaults)": "defaults-sngan",
    "ganzoo psg --n-gens 2 (0.3 defaults)": "base-psg",
    "ganzoo sngan (0.3 defaults)": "base-sngan",
    "public script (reference_dcgan.py)": "reference",
}


def reference_parts(limit: int = 0):
    """(step function, generators as 28x28, z_dim) of the public script."""
    from torch import nn
    from torch.nn import functional as F

    from reference_dcgan import Reference, mnist_loader

    ref = Reference()
    loader = mnist_loader(64, limit=limit)

    def batches():
        while True:
            yield from (imgs for imgs, _ in loader)

    stream = batches()

    class Resized(nn.Module):
        def __init__(self, g):
            super().__init__()
            self.g = g

        def forward(self, z):
            return F.interpolate(self.g(z), size=(28, 28), mode="bilinear", antialias=True, align_corners=False)

    return (lambda: ref.iteration(next(stream))), nn.ModuleList([Resized(ref.generator)]), [ref.generator, ref.discriminator], 100


def reference_ratio(against: str = "base-sngan") -> float:
    """Seconds per step of the public script over ``against``'s, timed in alternation in one process."""
    reference, _, _, _ = reference_parts()
    _, trainer = recipes.build(recipes.arm_spec(against), 0)
    return recipes.alternating_ratio(reference, trainer.advance)


def train_reference(seed: int, step_points: list[int]) -> None:
    import torch

    from ganzoo.core.host import load_host
    from ganzoo.evaluation.evaluator import build_evaluator

    torch.manual_seed(seed)
    evaluator = build_evaluator(load_host(), "mnist", features="lenet")
    step, generators, modules, z_dim = reference_parts(recipes.LIMIT_DATA)
    done = 0
    for point in step_points:
        for m in modules:
            m.train()
        while done < point:
            step()
            done += 1
        with torch.no_grad():
            fid = evaluator(generators, n=recipes.EVAL_N, seed=0, z_dim=z_dim)["fid"]
        print(json.dumps({"arm": "reference", "seed": seed, "step": point, "fid": fid}), flush=True)


def train_ganzoo(name: str, seed: int, step_points: list[int]) -> None:
    """A ganzoo arm: the FID of the weights ganzoo eval would score (its EMA when it has one)."""
    import torch

    from ganzoo.evaluation.evaluator import build_evaluator

    host, trainer = recipes.build(recipes.arm_spec(name), seed)
    evaluator = build_evaluator(host, "mnist", features="lenet")
    # an arm without an EMA of its own also gets the study's warm-up EMA scored, as evidence for long budgets
    average = recipes.Averages(trainer.generators, 0.999, True) if trainer.shown(trainer)[0] == "raw" else None
    for point in step_points:
        trainer.generators.train()
        trainer.discriminator.train()
        while trainer.step < point:
            trainer.advance()
            if average is not None:
                average.update(trainer.generators)
        with torch.no_grad():
            weights, generators = trainer.shown(trainer)
            record = {"arm": name, "seed": seed, "step": point, "weights": weights,
                      "fid": evaluator(generators, n=recipes.EVAL_N, seed=0, z_dim=trainer.config.z_dim)["fid"]}
            if average is not None:
                record["ema0.999w"] = evaluator(average.shadow, n=recipes.EVAL_N, seed=0, z_dim=trainer.config.z_dim)["fid"]
            else:  # the arm's own EMA is what counts; its raw weights are evidence for (or against) it
                record["raw"] = evaluator(trainer.generators, n=recipes.EVAL_N, seed=0, z_dim=trainer.config.z_dim)["fid"]
        print(json.dumps(record), flush=True)


RATES = recipes.OUT  # one rates.json for the study and this benchmark


def read_rates() -> dict[str, float]:
    rates = recipes.read_rates(RATES)
    return {name: recipes.rate_of(rates, name) for name in ARMS.values() if recipes.rate_of(rates, name) is not None}


def cmd_rates(out: Path) -> None:
    """The old-default arms are timed alone by ``recipes.py --rates`` (machine idle); the others
    against base-sngan in alternation (so any load affects both alike)."""
    if recipes.rate_of(recipes.read_rates(RATES), "base-sngan") is None:
        raise SystemExit("time the old defaults first, machine idle: python benchmarks/recipes.py --rates --arms base-psg base-sngan")
    recipes.cmd_rates([a for a in ARMS.values() if a not in ("reference", "base-psg", "base-sngan")], RATES, relative_to="base-sngan")
    done = subprocess.run([sys.executable, __file__, "--time-reference"], capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "2"})
    if done.returncode:
        raise SystemExit(f"reference: {done.stderr.strip().splitlines()[-1:]}")
    rates = recipes.read_rates(RATES)
    rates["reference"] = rates["base-sngan"] * float(done.stdout.strip().splitlines()[-1])
    print(f"reference: {rates['reference'] * 1000:.1f} ms/step", flush=True)
    (RATES / "rates.json").write_text(json.dumps(rates, indent=1, sort_keys=True) + "\n")


def cmd_run(out: Path, budget: float, seeds: list[int], jobs: int, arms: list[str]) -> None:
    rates = read_rates()
    arms = arms or list(ARMS.values())
    if set(arms) - set(rates):
        raise SystemExit(f"no rate for {', '.join(sorted(set(arms) - set(rates)))}: run --rates first")
    (out / "runs").mkdir(parents=True, exist_ok=True)
    points = [p for p in POINTS if p <= budget]
    todo = []
    for seed in seeds:
        for name in arms:
            path = out / "runs" / f"{name}-s{seed}.jsonl"
            have = path.read_text().splitlines() if path.exists() else []
            if len(have) < len(points):
                todo.append((name, seed, [max(1, round(p / rates[name])) for p in points], path))

    def one(job):
        name, seed, step_points, path = job
        started = time.time()
        done = subprocess.run([sys.executable, __file__, "--train-one", name, "--seed", str(seed), "--step-points", ",".join(map(str, step_points))],
                              capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if done.returncode:
            print(f"{name} seed {seed} FAILED: {done.stderr.strip().splitlines()[-1:]}", flush=True)
        path.write_text("".join(line + "\n" for line in lines))
        print(f"{name} seed {seed} ({time.time() - started:.0f} s): " + ", ".join(f"{json.loads(x)['fid']:.0f}" for x in lines), flush=True)

    with ThreadPoolExecutor(jobs) as pool:
        list(pool.map(one, todo))


def curves(out: Path) -> dict[str, list[dict]]:
    """arm label -> [{"seconds", "fid" (mean over seeds), "fids"}] at each budget point measured."""
    rates = read_rates()
    result = {}
    for label, name in ARMS.items():
        by_step: dict[int, list[float]] = {}
        for path in sorted((out / "runs").glob(f"{name}-s*.jsonl")):
            for line in path.read_text().splitlines():
                record = json.loads(line)
                by_step.setdefault(record["step"], []).append(record["fid"])
        result[label] = [{"seconds": round(step * rates[name]), "fid": statistics.mean(fids), "fids": fids}
                         for step, fids in sorted(by_step.items())]
    return result


def time_to(points: list[dict], target: float) -> str:
    """When a curve first reaches the target: between its last point above and its first at or under it."""
    before = 0
    for point in points:
        if point["fid"] <= target:
            return f"{before / 60:g}-{point['seconds'] / 60:g} min"
        before = point["seconds"]
    return f"not within {before / 60:g} min"


def cmd_report(out: Path) -> None:
    data = curves(out)
    header = " | ".join(f"FID at {p // 60} min" for p in REPORTED)
    lines = ["FID: LeNet features, 10,000 samples against the MNIST test split, the weights ganzoo eval uses; mean "
             "over seeds (seeds in brackets). Minutes: training time of a solo run on 2 cores (benchmarks/time_to_quality.py).", "",
             f"| arm | {header} | time to FID 100 | time to FID 50 |", "|---|" + "---|" * (len(REPORTED) + 2)]
    for label, points in data.items():
        if not points:
            lines.append(f"| {label} | " + " | ".join(["not run"] * (len(REPORTED) + 2)) + " |")
            continue
        cells = []
        for seconds in REPORTED:
            point = min(points, key=lambda p: abs(p["seconds"] - seconds), default=None)
            if point is None or abs(point["seconds"] - seconds) > 2:
                cells.append("-")
            else:
                cells.append(f"{point['fid']:.0f} ({len(point['fids'])})")
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {time_to(points, 100)} | {time_to(points, 50)} |")
    text = "\n".join(lines) + "\n"
    print(text)
    (out / "table.md").write_text(text)
    (out / "curves.json").write_text(json.dumps(data, indent=1) + "\n")
    plot(out, data)


def plot(out: Path, data: dict[str, list[dict]]) -> None:
    """time-to-quality.svg, drawn with ganzoo's own SVG charts (no matplotlib)."""
    from ganzoo.evaluation.svg_plot import Chart, RefLine, Series, line_chart

    series = [Series(label, [p["seconds"] / 60 for p in points], [p["fid"] for p in points]) for label, points in data.items() if points]
    chart = Chart("Time to quality on MNIST (2 CPU cores)", series, xlabel="training minutes (solo, 2 cores)", ylabel="FID (LeNet)",
                  refs=[RefLine(t, f"FID {t}") for t in TARGETS], y_range=(0, 400), width=640, height=360)
    (out / "time-to-quality.svg").write_text(line_chart(chart).replace("<svg ", '<svg xmlns="http://www.w3.org/2000/svg" ', 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", action="store_true")
    parser.add_argument("--run", action="store_true")
    parser.add_argument("--report", action="store_true")
    parser.add_argument("--budget", type=float, default=600, help="largest budget point, seconds of solo training")
    parser.add_argument("--seeds", type=int, nargs="*", default=[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--arms", nargs="*", default=[], help=f"some of {', '.join(ARMS.values())} [default: all]")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--time-reference", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--train-one", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--step-points", help=argparse.SUPPRESS)
    parser.add_argument("--eval-n", type=int, default=recipes.EVAL_N, help=argparse.SUPPRESS)  # smaller for the suite's smoke run
    parser.add_argument("--limit-data", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    recipes.EVAL_N, recipes.LIMIT_DATA = args.eval_n, args.limit_data
    if args.time_reference:
        print(reference_ratio())
    elif args.train_one:
        import torch

        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
        points = [int(s) for s in args.step_points.split(",")]
        train_reference(args.seed, points) if args.train_one == "reference" else train_ganzoo(args.train_one, args.seed, points)
    elif args.rates:
        cmd_rates(args.out)
    elif args.run:
        cmd_run(args.out, args.budget, args.seeds, args.jobs, args.arms)
    elif args.report:
        cmd_report(args.out)
    else:
        parser.print_help()


if __name__ == "__main__":
    main()
