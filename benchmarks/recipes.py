"""The recipe study of docs/results/recipes: which settings give the lowest FID at fixed wall-clock
budgets (1, 2, 5, 10 minutes of training) on this machine, for PSG N=2 and SNGAN (and rpgan).

Budgets are in the training time of a run that has the whole machine (2 threads) to itself. To
run several configurations side by side, each one's budget is turned into the generator steps a
solo run makes in that time: ``--rates`` times every arm alone (2 threads, nothing else running,
median of 40 steps after 10 warm-up steps) into rates.json; ``--run`` then trains the arms with
``--jobs`` processes of one thread each, for those step counts. The step counts do not depend on
the load of the machine, so the curves do not either; only the rate measurement needs it idle.

At each budget point a run is scored like ``ganzoo eval`` (LeNet features, 10,000 samples, MNIST
test split, sampling seed 0) with its raw weights and with exponential moving averages of its
generators' weights kept by this script (decay 0.99 from the initial weights, and 0.999 with the
warm-up decay min(d, (1 + t) / (10 + t))), so every arm also measures EMA; an arm with an EMA of
its own (the ema plugin, as in the current defaults) is scored with it too ("shown").

    python benchmarks/recipes.py --rates --arms base-psg base-sngan ...   # idle machine
    python benchmarks/recipes.py --rates --relative-to base-sngan --arms ...   # any time
    python benchmarks/recipes.py --run --arms ... --seeds 0 --budget 120 --jobs 2
    python benchmarks/recipes.py --report                                  # tables from the runs
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE.parent / "docs" / "results" / "recipes"
POINTS = (60, 120, 300, 600)  # budget points, seconds of solo training
EVAL_N = 10_000
LIMIT_DATA = 0  # all 60,000 images; the test suite's smoke run uses fewer (--limit-data)
EMAS = {"ema0.99": (0.99, False), "ema0.999w": (0.999, True)}

# The defaults of ganzoo 0.3 (before this study), spelled out, so that "base" keeps meaning them
# after the defaults change; the lever "defaults" is whatever the strategy's defaults are now.
OLD = {"lr": 2e-4, "lr_d": 0.0, "beta1": 0.5, "beta2": 0.999, "batch_size": 64, "n_dis": 1, "arch": "dcgan28", "amp": "auto"}
STRATEGIES = {
    "psg": {"strategy": "psg", "settings": {"n_gens": 2}, "old": {**OLD, "options": {"ema": 0.0}}},
    "sngan": {"strategy": "sngan", "settings": {}, "old": {**OLD, "options": {"loss": "hinge", "ema": 0.0}}},
    "rpgan": {"strategy": "rpgan", "settings": {}, "old": {}},
}

# One lever at a time against each strategy's old defaults; "options" are the parts' options.
LEVERS = {
    "defaults": {},
    "base": {},
    "lr4e-4": {"lr": 4e-4},
    "lr1e-3": {"lr": 1e-3},
    "ttur": {"lr": 1e-4, "lr_d": 4e-4},
    "betas0-0.99": {"beta1": 0.0, "beta2": 0.99},
    "betas0.5-0.9": {"beta1": 0.5, "beta2": 0.9},
    "b32": {"batch_size": 32, "lr": 1e-4},
    "b128": {"batch_size": 128, "lr": 4e-4},
    "ndis2": {"n_dis": 2},
    "bce": {"options": {"loss": "bce"}},
    "fp32": {"amp": "off"},
    "lean": {"arch": "dcgan28-lean"},
    "wide": {"arch": "dcgan28-wide"},
    "r1": {"options": {"r1": 0.1}},
}


# Levers that change no work per step share the rate of the arm without them (one measurement, less noise).
SAME_COST = {"lr4e-4", "lr1e-3", "ttur", "betas0-0.99", "betas0.5-0.9", "bce"}


def rate_key(name: str) -> str:
    levers, _, strategy = name.rpartition("-")
    kept = [lever for lever in levers.split("+") if lever not in SAME_COST]
    return f"{'+'.join(kept) or 'base'}-{strategy}"


def arm_spec(name: str) -> dict:
    """'<lever>[+<lever>...]-<psg|sngan|rpgan>' -> {"strategy", "settings"}: the strategy's old
    defaults (its current ones for the lever "defaults"), then the levers, left to right."""
    levers, _, strategy = name.rpartition("-")
    base = STRATEGIES[strategy]
    settings = dict(base["settings"])
    options: dict = {}
    for lever in ([] if levers.startswith("defaults") else ["old"]) + levers.split("+"):
        extra = dict(base["old"] if lever == "old" else LEVERS[lever])
        options.update(extra.pop("options", {}))
        settings.update(extra)
    if options:
        settings["options"] = options
    return {"strategy": base["strategy"], "settings": settings}


def build(arm: dict, seed: int):
    from ganzoo.core.compose import new_config
    from ganzoo.core.host import load_host
    from ganzoo.training.runtime import tune_malloc
    from ganzoo.training.trainer import Trainer

    tune_malloc()
    host = load_host()
    settings = dict(arm["settings"])
    options = settings.pop("options", None)
    given = {"steps": 10**9, "device": "cpu", "seed": seed, "limit_data": LIMIT_DATA, **settings}
    config = new_config(host.registry, arm["strategy"], None, given, options)
    trainer = Trainer(config, host, Path(tempfile.mkdtemp(prefix="recipes-")) / "run")
    trainer.notify("ganzoo_on_train_start")  # observers start here
    return host, trainer


def measure_rate(name: str, steps: int = 40, warmup: int = 10) -> float:
    """Median seconds per generator step of this arm, in this process (call it with the machine idle)."""
    _, trainer = build(arm_spec(name), 0)
    trainer.generators.train()
    trainer.discriminator.train()
    for _ in range(warmup):
        trainer.advance()
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        trainer.advance()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def alternating_ratio(step_a, step_b, rounds: int = 8, steps: int = 6) -> float:
    """Seconds per call of ``step_a`` over ``step_b``'s, timed in alternation (A B, B A, ...) in one
    process after 5 warm-up calls each, so that the machine's load affects both alike."""
    calls = (step_a, step_b)
    for call in calls:
        for _ in range(5):
            call()
    times: list[list[float]] = [[], []]
    for r in range(rounds):
        for i in (0, 1) if r % 2 == 0 else (1, 0):
            started = time.perf_counter()
            for _ in range(steps):
                calls[i]()
            times[i].append((time.perf_counter() - started) / steps)
    return statistics.median(times[0]) / statistics.median(times[1])


def measure_ratio(name: str, reference: str) -> float:
    """Seconds per step of ``name`` over ``reference``'s (for arms added while other work runs)."""
    trainers = [build(arm_spec(n), 0)[1] for n in (name, reference)]
    return alternating_ratio(trainers[0].advance, trainers[1].advance)


class Averages:
    """EMAs of the generators' state dicts (floats averaged, integer buffers copied)."""

    def __init__(self, generators, decay: float, warmup: bool):
        import copy

        self.decay, self.warmup, self.updates = decay, warmup, 0
        self.shadow = copy.deepcopy(generators)

    def update(self, generators) -> None:
        import torch

        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates)) if self.warmup else self.decay
        with torch.no_grad():
            for average, live in zip(self.shadow.state_dict().values(), generators.state_dict().values()):
                if live.is_floating_point():
                    average.lerp_(live, 1.0 - decay)
                else:
                    average.copy_(live)


def run_one(name: str, seed: int, step_points: list[int]) -> list[dict]:
    """Train one arm to each step point; score raw and EMA weights there. Prints one JSON line per point."""
    import torch

    from ganzoo.evaluation.evaluator import build_evaluator

    host, trainer = build(arm_spec(name), seed)
    evaluator = build_evaluator(host, "mnist", features="lenet")
    averages = {key: Averages(trainer.generators, d, w) for key, (d, w) in EMAS.items()}
    z_dim = trainer.config.z_dim
    records = []
    for point in step_points:
        trainer.generators.train()
        trainer.discriminator.train()
        started = time.perf_counter()
        while trainer.step < point:
            trainer.advance()
            for average in averages.values():
                average.update(trainer.generators)
        record = {"arm": name, "seed": seed, "step": point, "train_seconds_here": time.perf_counter() - started,
                  "d_accuracy": trainer.latest.get("d_accuracy")}
        with torch.no_grad():
            record["raw"] = evaluator(trainer.generators, n=EVAL_N, seed=0, z_dim=z_dim)["fid"]
            shown, generators = trainer.shown(trainer)
            if shown != "raw":  # what ganzoo eval would score: the run's own EMA (--ema)
                record["shown"] = evaluator(generators, n=EVAL_N, seed=0, z_dim=z_dim)["fid"]
            for key, average in averages.items():
                record[key] = evaluator(average.shadow, n=EVAL_N, seed=0, z_dim=z_dim)["fid"]
        records.append(record)
        print(json.dumps(record), flush=True)
    return records


def read_rates(out: Path) -> dict[str, float]:
    """Seconds per step of every arm measured so far, by arm and by rate_key."""
    path = out / "rates.json"
    return json.loads(path.read_text()) if path.exists() else {}


def rate_of(rates: dict[str, float], name: str) -> float | None:
    return rates.get(name, rates.get(rate_key(name)))


def cmd_rates(arms: list[str], out: Path, relative_to: str | None = None) -> None:
    """Solo rates of the arms; with ``relative_to`` (an arm timed idle before), its rate times the
    ratio measured in alternation with it (for arms added while the machine is busy)."""
    rates = read_rates(out)
    if relative_to:
        for name in dict.fromkeys(rate_key(a) for a in arms):
            done = subprocess.run([sys.executable, __file__, "--ratio-one", name, "--reference", relative_to], capture_output=True,
                                  text=True, env={**os.environ, "OMP_NUM_THREADS": "2"})
            if done.returncode:
                raise SystemExit(f"{name}: {done.stderr.strip().splitlines()[-1:]}")
            ratio = float(done.stdout.strip().splitlines()[-1])
            rates[name] = rates[relative_to] * ratio
            print(f"{name}: {ratio:.3f} x {relative_to} = {rates[name] * 1000:.1f} ms/step", flush=True)
            (out / "rates.json").write_text(json.dumps(rates, indent=1, sort_keys=True) + "\n")
        return
    for name in dict.fromkeys(rate_key(a) for a in arms):
        done = subprocess.run([sys.executable, __file__, "--time-one", name], capture_output=True, text=True,
                              env={**os.environ, "OMP_NUM_THREADS": "2"})
        if done.returncode:
            raise SystemExit(f"{name}: {done.stderr.strip().splitlines()[-1:]}")
        rates[name] = float(done.stdout.strip().splitlines()[-1])
        print(f"{name}: {rates[name] * 1000:.1f} ms/step", flush=True)
        out.mkdir(parents=True, exist_ok=True)
        (out / "rates.json").write_text(json.dumps(rates, indent=1, sort_keys=True) + "\n")


def cmd_run(arms: list[str], seeds: list[int], budget: float, jobs: int, out: Path) -> None:
    rates = read_rates(out)
    missing = [a for a in arms if rate_of(rates, a) is None]
    if missing:
        raise SystemExit(f"no solo rate for {', '.join(missing)}: run --rates for them first (machine idle)")
    runs = out / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    todo = []
    for seed in seeds:
        for name in arms:
            path = runs / f"{name}-s{seed}.jsonl"
            points = [p for p in POINTS if p <= budget]
            step_points = [max(1, round(p / rate_of(rates, name))) for p in points]
            have = path.read_text().splitlines() if path.exists() else []
            if len(have) < len(step_points):
                todo.append((name, seed, step_points, path))

    def one(job):
        name, seed, step_points, path = job
        started = time.time()
        done = subprocess.run([sys.executable, __file__, "--train-one", name, "--seed", str(seed),
                               "--step-points", ",".join(map(str, step_points))],
                              capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if done.returncode:
            print(f"{name} seed {seed} FAILED: {done.stderr.strip().splitlines()[-1:]}", flush=True)
        path.write_text("".join(line + "\n" for line in lines))
        summary = ", ".join(f"{json.loads(x)['step']}: {json.loads(x)['raw']:.0f}/{json.loads(x)['ema0.999w']:.0f}" for x in lines)
        print(f"{name} seed {seed} ({time.time() - started:.0f} s): {summary}", flush=True)

    with ThreadPoolExecutor(jobs) as pool:
        list(pool.map(one, todo))


def cmd_report(out: Path) -> None:
    rates = read_rates(out)
    rows: dict[str, list[dict]] = {}
    for path in sorted((out / "runs").glob("*.jsonl")):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            rows.setdefault(record["arm"], []).append(record)
    keys = ["raw", *EMAS]
    lines = ["| arm | ms/step (solo) | budget | steps | seeds | " + " | ".join(f"FID {k}" for k in keys) + " |",
             "|---|---|---|---|---|" + "---|" * len(keys)]
    for arm, records in rows.items():
        for point in POINTS:
            steps = max(1, round(point / rate_of(rates, arm)))
            here = [r for r in records if r["step"] == steps]
            if not here:
                continue
            cells = []
            for key in keys:
                values = [r[key] for r in here]
                spread = f" ± {statistics.stdev(values):.1f}" if len(values) > 1 else ""
                cells.append(f"{statistics.mean(values):.1f}{spread}")
            lines.append(f"| {arm} | {rate_of(rates, arm) * 1000:.1f} | {point // 60} min | {steps} | {len(here)} | " + " | ".join(cells) + " |")
    print("\n".join(lines))
    (out / "table.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", action="store_true", help="time each arm alone (machine idle)")
    parser.add_argument("--run", action="store_true", help="train the arms for the budget, side by side")
    parser.add_argument("--report", action="store_true", help="write table.md from the runs")
    parser.add_argument("--arms", nargs="*", default=[])
    parser.add_argument("--seeds", type=int, nargs="*", default=[0])
    parser.add_argument("--budget", type=float, default=120, help="largest budget point, seconds of solo training")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--relative-to", help="with --rates: time against this arm (rated idle before) in one process")
    parser.add_argument("--time-one", help=argparse.SUPPRESS)
    parser.add_argument("--ratio-one", help=argparse.SUPPRESS)
    parser.add_argument("--reference", help=argparse.SUPPRESS)
    parser.add_argument("--train-one", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--step-points", help=argparse.SUPPRESS)
    parser.add_argument("--eval-n", type=int, default=EVAL_N, help=argparse.SUPPRESS)  # smaller for the suite's smoke run
    parser.add_argument("--limit-data", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    globals().update(EVAL_N=args.eval_n, LIMIT_DATA=args.limit_data)
    if args.time_one:
        print(measure_rate(args.time_one))
    elif args.ratio_one:
        print(measure_ratio(args.ratio_one, args.reference))
    elif args.train_one:
        import torch


        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
        run_one(args.train_one, args.seed, [int(s) for s in args.step_points.split(",")])
    elif args.rates:
        cmd_rates(args.arms, args.out, args.relative_to)
    elif args.run:
        cmd_run(args.arms, args.seeds, args.budget, args.jobs, args.out)
    elif args.report:
        cmd_report(args.out)
    else:
        parser.print_help()


if __name__ == "__main__":
    main()
