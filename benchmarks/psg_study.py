"""The PSG tuple-reading study of docs/results/psg-study: which levers make ``ganzoo train psg``
(N = 2, D picks the real image out of N + 1, averaged generator loss) train as well as SNGAN.

Arms are recipes.py's: ``<lever>[+<lever>...]-psg`` on psg's current defaults, with this study's
levers added to recipes.LEVERS below. The study started from 0.6's defaults, which the lever
``v06`` restores (no R1, no R2), so "defaults+v06+r12g30-psg" is 0.6's recipe with R1 and R2 of
gamma 30: the defaults since 0.7 ("defaults-psg"). Budgets:

- ``--budget 120``: the steps a solo run of the arm makes in 1 and 2 minutes on the idle machine
  (2 threads). ``--rates`` times each arm in alternation with ``base-sngan`` (timed alone, idle, by
  recipes.py) in one process, so any load affects both alike; rates.json keeps them.
- ``--epochs 6``: 6 epochs of MNIST (937 steps each), scored after every epoch.

``--run`` trains the arms side by side (``--jobs``, one thread each) on those step budgets, so
the machine's load changes their wall time but not their results, and scores each point like
``ganzoo eval``: LeNet features, 10,000 samples, the MNIST test split, sampling seed 0, the
weights ganzoo eval would use (psg's EMA). Each record also keeps D's accuracy, the loss gap
|D loss - mean G loss| and the penalties, as means from step 1 (the trainer's meter, which only
an epoch end of ``ganzoo train`` resets).

    python benchmarks/psg_study.py --rates --arms defaults+v06+r1g1-psg ...
    python benchmarks/psg_study.py --run --arms ... --seeds 0 1 2 --budget 120 --jobs 2
    python benchmarks/psg_study.py --run --arms ... --seeds 0 1 2 --epochs 6 --jobs 2
    python benchmarks/psg_study.py --report      # table.md
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

OUT = HERE.parent / "docs" / "results" / "psg-study"
POINTS = (60, 120)  # seconds of solo training
EPOCH_STEPS = 937  # MNIST's 60,000 images in batches of 64

# The study's levers (psg's options; see ganzoo train psg --help).
STUDY_LEVERS = {
    "v06": {"options": {"r1": 0.0, "r2": 0.0}},  # psg's defaults of 0.6 (no penalties), where the study started
    "r1g0": {"options": {"r1": 0.0}},  # for --policy binary, which takes R1 but not R2
    "r1g30": {"options": {"r1": 30.0}},
    **{f"r1g{g:g}": {"options": {"r1": float(g)}} for g in (0.1, 1, 10)},
    **{f"r2g{g:g}": {"options": {"r2": float(g)}} for g in (0.1, 1, 10)},
    **{f"r12g{g:g}": {"options": {"r1": float(g), "r2": float(g)}} for g in (0.01, 0.1, 1, 10, 30, 100)},
    "lrd5e-4": {"lr_d": 5e-4},  # TTUR: D at half G's learning rate
    "lrd2e-3": {"lr_d": 2e-3},  # TTUR: D at twice G's
    "lrg5e-4": {"lr": 5e-4, "lr_d": 1e-3},  # TTUR: G at half D's
    "ndis2": {"n_dis": 2},
    "wide-d": {"arch": "dcgan28-wide-d"},
    "t0.5": {"options": {"temperature": 0.5}},
    "t2": {"options": {"temperature": 2.0}},
    "sn": {"spectral_norm": True},
    "n1": {"n_gens": 1},
    "binary": {"policy": "binary"},
    "noema": {"options": {"ema": 0.0}},
}
SAME_COST = {"lrd5e-4", "lrd2e-3", "lrg5e-4", "t0.5", "t2", "noema"}
recipes.LEVERS.update(STUDY_LEVERS)
recipes.SAME_COST |= SAME_COST


def read_rates(out: Path) -> dict[str, float]:
    """This study's rates, starting from recipes.py's idle rate of base-sngan (the reference)."""
    rates = recipes.read_rates(out)
    rates.setdefault("base-sngan", recipes.read_rates(recipes.OUT)["base-sngan"])
    return rates


def cmd_rates(arms: list[str], out: Path) -> None:
    """Each arm's (by its rate key) seconds per step: base-sngan's idle rate times the ratio timed in
    alternation with it in one process (2 threads)."""
    rates = read_rates(out)
    out.mkdir(parents=True, exist_ok=True)
    for name in dict.fromkeys(recipes.rate_key(a) for a in arms):
        done = subprocess.run([sys.executable, __file__, "--ratio-one", name], capture_output=True, text=True,
                              env={**os.environ, "OMP_NUM_THREADS": "2"})
        if done.returncode:
            raise SystemExit(f"{name}: {done.stderr.strip().splitlines()[-1:]}")
        ratio = float(done.stdout.strip().splitlines()[-1])
        rates[name] = rates["base-sngan"] * ratio
        print(f"{name}: {ratio:.3f} x base-sngan = {rates[name] * 1000:.1f} ms/step", flush=True)
        (out / "rates.json").write_text(json.dumps(rates, indent=1, sort_keys=True) + "\n")


def train_one(name: str, seed: int, step_points: list[int]) -> None:
    """Train arm NAME to each step point and print one JSON record per point."""
    import torch

    from ganzoo.evaluation.evaluator import build_evaluator

    host, trainer = recipes.build(recipes.arm_spec(name), seed)
    evaluator = build_evaluator(host, "mnist", features="lenet")
    for point in step_points:
        trainer.generators.train()
        trainer.discriminator.train()
        while trainer.step < point:
            if not trainer.advance():
                raise SystemExit(f"{name} seed {seed}: non-finite metrics at step {trainer.step}")
        meter = trainer.state.meter.read(trainer.world)
        with torch.no_grad():
            weights, generators = trainer.shown(trainer)
            fid = evaluator(generators, n=recipes.EVAL_N, seed=0, z_dim=trainer.config.z_dim)["fid"]
        print(json.dumps({"arm": name, "seed": seed, "step": point, "weights": weights, "fid": fid,
                          "d_accuracy": meter["d_accuracy"], "chance": meter["chance"], "loss_gap": meter["loss_gap"],
                          "d_loss": meter["d_loss"], "g_loss": meter["g_loss_mean"], **meter.get("extras", {})}), flush=True)


def step_points(name: str, budget: float, epochs: int, rates: dict[str, float]) -> list[int]:
    if epochs:
        return [EPOCH_STEPS * e for e in range(1, epochs + 1)]
    return [max(1, round(p / recipes.rate_of(rates, name))) for p in POINTS if p <= budget]


def cmd_run(arms: list[str], seeds: list[int], budget: float, epochs: int, jobs: int, out: Path) -> None:
    rates = read_rates(out)
    missing = [a for a in arms if not epochs and recipes.rate_of(rates, a) is None]
    if missing:
        raise SystemExit(f"no rate for {', '.join(missing)}: run --rates for them first")
    tag = f"{epochs}ep" if epochs else f"{budget:g}s"
    (out / "runs").mkdir(parents=True, exist_ok=True)
    todo = [(name, seed) for seed in seeds for name in arms if not (out / "runs" / f"{name}-{tag}-s{seed}.jsonl").exists()]

    def one(job):
        name, seed = job
        points = step_points(name, budget, epochs, rates)
        started = time.time()
        done = subprocess.run([sys.executable, __file__, "--train-one", name, "--seed", str(seed),
                               "--step-points", ",".join(map(str, points))],
                              capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if done.returncode or len(lines) < len(points):
            print(f"{name} seed {seed} FAILED: {done.stderr.strip().splitlines()[-1:]}", flush=True)
            return
        path = out / "runs" / f"{name}-{tag}-s{seed}.jsonl"
        path.with_suffix(".tmp").write_text("".join(line + "\n" for line in lines))
        path.with_suffix(".tmp").replace(path)
        print(f"{name} seed {seed} ({time.time() - started:.0f} s): FID " + ", ".join(f"{json.loads(x)['fid']:.0f}" for x in lines),
              flush=True)

    with ThreadPoolExecutor(jobs) as pool:
        list(pool.map(one, todo))


def mean_sd(values: list[float], digits: int = 1) -> str:
    spread = f" ± {statistics.stdev(values):.{digits}f}" if len(values) > 1 else ""
    return f"{statistics.mean(values):.{digits}f}{spread}"


def cmd_report(out: Path) -> None:
    """table.md: per arm and budget point, FID, D accuracy and loss gap (mean ± sd over seeds)."""
    rates = read_rates(out)
    groups: dict[tuple[str, str, int], list[dict]] = {}
    for path in sorted((out / "runs").glob("*.jsonl")):
        tag = path.stem.rsplit("-", 2)[-2]
        for line in path.read_text().splitlines():
            record = json.loads(line)
            groups.setdefault((tag, record["arm"], record["step"]), []).append(record)
    lines = ["| budget | arm | ms/step (solo) | steps | seeds | FID | D accuracy | loss gap | r1 | r2 |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    def order(item):  # by budget, then by FID
        (tag, arm, step), records = item
        rate = recipes.rate_of(rates, arm) or 0.0
        return tag, step if tag.endswith("ep") else round(step * rate / 60), statistics.mean(r["fid"] for r in records)

    for (tag, arm, step), records in sorted(groups.items(), key=order):
        rate = recipes.rate_of(rates, arm)
        budget = f"{step // EPOCH_STEPS} epochs" if tag.endswith("ep") else f"{round(step * rate / 60):g} min"
        cells = [mean_sd([r[k] for r in records], 3 if k != "fid" else 1) if all(k in r for r in records) else "-"
                 for k in ("fid", "d_accuracy", "loss_gap", "r1", "r2")]
        lines.append(f"| {budget} | {arm} | {rate * 1000:.1f} | {step} | {len(records)} | " + " | ".join(cells) + " |"
                     if rate else f"| {budget} | {arm} | - | {step} | {len(records)} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    print(text)
    (out / "table.md").write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", action="store_true", help="time the arms against base-sngan in alternation")
    parser.add_argument("--run", action="store_true", help="train and score the arms")
    parser.add_argument("--report", action="store_true", help="write table.md")
    parser.add_argument("--arms", nargs="*", default=["defaults-psg"])
    parser.add_argument("--seeds", type=int, nargs="*", default=[0])
    parser.add_argument("--budget", type=float, default=120, help="largest budget point, seconds of solo training")
    parser.add_argument("--epochs", type=int, default=0, help="an epoch budget instead (scored every epoch)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--train-one", help=argparse.SUPPRESS)
    parser.add_argument("--ratio-one", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--step-points", help=argparse.SUPPRESS)
    parser.add_argument("--eval-n", type=int, default=recipes.EVAL_N, help=argparse.SUPPRESS)  # smaller for a smoke run
    parser.add_argument("--limit-data", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    recipes.EVAL_N, recipes.LIMIT_DATA = args.eval_n, args.limit_data
    if args.ratio_one:
        import torch

        torch.set_num_threads(2)
        print(recipes.measure_ratio(args.ratio_one, "base-sngan"))
    elif args.train_one:
        import torch

        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
        train_one(args.train_one, args.seed, [int(s) for s in args.step_points.split(",")])
    elif args.rates:
        cmd_rates(args.arms, args.out)
    elif args.run:
        cmd_run(args.arms, args.seeds, args.budget, args.epochs, args.jobs, args.out)
    elif args.report:
        cmd_report(args.out)
    else:
        parser.print_help()


if __name__ == "__main__":
    main()
