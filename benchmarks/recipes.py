"""The recipe study of docs/results/recipes: which settings give the lowest FID at fixed wall-clock
budgets (1, 2, 5, 10 minutes of training) on this machine, for PSG N=2 and SNGAN (and rpgan).

Budgets are in the training time of a run that has the whole machine (2 threads) to itself. To
run several configurations side by side, each one's budget is turned into the generator steps a
solo run makes in that time: ``--rates`` times every arm alone (2 threads, nothing else running,
median of 40 steps after 10 warm-up steps) into rates.json. The step counts do not depend on the
load of the machine, so the results do not either; only the rate measurement needs it idle.

An arm at a budget point is one ``ganzoo tune`` trial (``--tune`` prints the commands, ``--tune
--execute`` runs them): the arm's settings fixed, its levers a one-point grid (so the trial's
parameters name them), the budget in steps, scored like ``ganzoo eval`` (LeNet features, 10,000
samples, MNIST test split, sampling seed 0). A search beyond the hand-picked levers is ``ganzoo
tune`` itself (docs/tuning.md). The runs of the recorded study (runs/*.jsonl, also scored with
EMAs this script kept beside training, decays 0.99 and 0.999 warmed up) came from the grid runner
this replaced; ``--report`` still turns them into table.md.

    python benchmarks/recipes.py --rates --arms base-psg base-sngan ...   # idle machine
    python benchmarks/recipes.py --rates --relative-to base-sngan --arms ...   # any time
    python benchmarks/recipes.py --tune --arms ... --seeds 0 --budget 120 [--execute]
    python benchmarks/recipes.py --report                                  # tables from the runs
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
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


def train_flags(settings: dict) -> list[str]:
    """An arm's settings (core fields and part options) as ganzoo train options."""
    flags = []
    for key, value in sorted({**{k: v for k, v in settings.items() if k != "options"}, **settings.get("options", {})}.items()):
        flag = "--" + key.replace("_", "-")
        flags += [flag if value else "--no-" + flag[2:]] if isinstance(value, bool) else [flag, repr(value) if isinstance(value, float) else str(value)]
    return flags


def tune_command(name: str, seed: int, seconds: float, rates: dict[str, float], out: Path, eval_n: int = EVAL_N,
                 limit_data: int = 0) -> list[str]:
    """The ``ganzoo tune`` command that trains and scores arm NAME at one budget point: the arm's
    settings fixed, its levers as a one-point grid (so the trial's parameters name them), the budget
    in the steps a solo run makes in SECONDS (``rates.json``), FID on EVAL_N samples like ganzoo eval."""
    levers, _, _ = name.rpartition("-")
    spec = arm_spec(name)
    settings = {**spec["settings"], **spec["settings"].get("options", {})}
    settings.pop("options", None)
    searched = sorted({key for lever in levers.split("+") for key in {**LEVERS.get(lever, {}), **LEVERS.get(lever, {}).get("options", {})}
                       if key != "options"} & set(settings)) or ["lr"]
    fixed = {k: v for k, v in settings.items() if k not in searched}
    steps = max(1, round(seconds / rate_of(rates, name)))
    search = [a for key in searched for a in ("--search", f"{key.replace('_', '-')}={settings[key]!r}" if isinstance(settings[key], float)
                                                 else f"{key.replace('_', '-')}={settings[key]}")]
    return ["ganzoo", "tune", spec["strategy"], *train_flags(fixed), *search, "--sampler", "grid", "--pruner", "none", "--trials", "1",
            "--budget", f"{steps}steps", "--seed", str(seed), "--final-n", str(eval_n), "--eval-n", str(min(eval_n, 2000)),
            *(["--limit-data", str(limit_data)] if limit_data else []), "--out", str(out / "tune" / f"{name}-{seconds:g}s-s{seed}")]


def cmd_tune(arms: list[str], seeds: list[int], budget: float, out: Path, execute: bool) -> None:
    """Print (or run, one after another) the ganzoo tune command of every arm, seed and budget point."""
    rates = read_rates(out)
    missing = [a for a in arms if rate_of(rates, a) is None]
    if missing:
        raise SystemExit(f"no solo rate for {', '.join(missing)}: run --rates for them first (machine idle)")
    for seed in seeds:
        for name in arms:
            for point in (p for p in POINTS if p <= budget):
                argv = tune_command(name, seed, point, rates, out, EVAL_N, LIMIT_DATA)
                print(shlex.join(argv), flush=True)
                if execute:
                    done = subprocess.run([str(Path(sys.executable).parent / "ganzoo"), *argv[1:]])
                    if done.returncode:
                        raise SystemExit(f"{name} seed {seed}: ganzoo tune exited with {done.returncode}")


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
    parser.add_argument("--tune", action="store_true", help="print the ganzoo tune command of each arm, seed and budget point")
    parser.add_argument("--execute", action="store_true", help="with --tune: run them, one after another")
    parser.add_argument("--report", action="store_true", help="write table.md from the runs")
    parser.add_argument("--arms", nargs="*", default=[])
    parser.add_argument("--seeds", type=int, nargs="*", default=[0])
    parser.add_argument("--budget", type=float, default=120, help="largest budget point, seconds of solo training")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--relative-to", help="with --rates: time against this arm (rated idle before) in one process")
    parser.add_argument("--time-one", help=argparse.SUPPRESS)
    parser.add_argument("--ratio-one", help=argparse.SUPPRESS)
    parser.add_argument("--reference", help=argparse.SUPPRESS)
    parser.add_argument("--eval-n", type=int, default=EVAL_N, help=argparse.SUPPRESS)  # smaller for the suite's smoke run
    parser.add_argument("--limit-data", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    globals().update(EVAL_N=args.eval_n, LIMIT_DATA=args.limit_data)
    if args.time_one:
        print(measure_rate(args.time_one))
    elif args.ratio_one:
        print(measure_ratio(args.ratio_one, args.reference))
    elif args.rates:
        cmd_rates(args.arms, args.out, args.relative_to)
    elif args.tune:
        cmd_tune(args.arms, args.seeds, args.budget, args.out, args.execute)
    elif args.report:
        cmd_report(args.out)
    else:
        parser.print_help()


if __name__ == "__main__":
    main()
