"""Time to quality on MNIST: wall time of training to reach a classifier-FID, ganzoo against the
typical public script (benchmarks/reference_dcgan.py).

Each arm trains in its own process, one after another, with the machine to itself: the public
script untuned (as it would run), ganzoo with its defaults (``ganzoo train`` would run the same).
Training pauses at fixed points of its own training time (evaluation time is not counted) to
compute FID against the MNIST test split in the LeNet features ganzoo eval uses (2,000 samples;
the reference's 32x32 images are resized to 28x28 with antialiasing).

The quality target is the best FID the public script reaches within the budget. An arm first
reaches it between its last evaluation point above the target and its first at or under it. The
speed-up printed is a lower bound: the public script's earlier point over ganzoo's later one.

    python benchmarks/time_to_quality.py --budget 300 --out docs/results/time-to-quality
    python benchmarks/time_to_quality.py --tables-from docs/results/time-to-quality   # redo the table
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

ARMS = {
    "public script (reference_dcgan.py)": {"kind": "reference"},
    "ganzoo psg --n-gens 2": {"kind": "ganzoo", "strategy": "psg", "settings": {"n_gens": 2}},
    "ganzoo sngan": {"kind": "ganzoo", "strategy": "sngan", "settings": {}},
}
EVAL_N = 2000


def checkpoints(budget: float) -> list[float]:
    points = [15, 30, 60, 90, 120, 180, 240, 300, 420, 600, 900]
    return [p for p in points if p < budget] + [budget]


def run_arm(arm: dict, budget: float, data_limit: int) -> list[dict]:
    """Train one arm for ``budget`` seconds of training time; FID at each checkpoint."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    from ganzoo.evaluation.evaluator import build_evaluator
    from ganzoo.core.host import load_host

    host = load_host()
    evaluator = build_evaluator(host, "mnist", features="lenet")
    if arm["kind"] == "reference":
        from reference_dcgan import Reference, mnist_loader

        ref = Reference()
        loader = mnist_loader(64, limit=data_limit)

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

        generators, z_dim = nn.ModuleList([Resized(ref.generator)]), 100
        modules = [ref.generator, ref.discriminator]

        def step():
            ref.iteration(next(stream))
    else:
        from ganzoo.core.compose import new_config
        from ganzoo.training.runtime import tune_malloc
        from ganzoo.training.trainer import Trainer

        tune_malloc()
        settings = dict(arm["settings"])
        options = settings.pop("options", None)
        config = new_config(host.registry, arm["strategy"], None, {"steps": 10**9, "limit_data": data_limit, "device": "cpu", **settings}, options)
        trainer = Trainer(config, host, Path(tempfile.mkdtemp()) / "run")
        generators, z_dim = trainer.generators, config.z_dim
        modules = [trainer.generators, trainer.discriminator]
        step = trainer.advance

    records, trained, steps = [], 0.0, 0
    for point in checkpoints(budget):
        for m in modules:
            m.train()
        started = time.perf_counter()
        while trained + (time.perf_counter() - started) < point:
            step()
            steps += 1
        trained += time.perf_counter() - started
        with torch.no_grad():
            fid = evaluator(generators, n=EVAL_N, seed=0, z_dim=z_dim)["fid"]
        records.append({"seconds": round(trained, 1), "steps": steps, "fid": fid})
        print(json.dumps(records[-1]), flush=True)
    return records


def time_to(records: list[dict], target: float) -> tuple[float, float] | None:
    """(last point before, first point at or under the target) in training seconds; None if never reached."""
    before = 0.0
    for r in records:
        if r["fid"] <= target:
            return before, r["seconds"]
        before = r["seconds"]
    return None


def write_outputs(out: Path, curves: dict[str, list[dict]], budget: float) -> None:
    reference = next(iter(curves))
    target = min(r["fid"] for r in curves[reference])
    ref_before, _ = time_to(curves[reference], target)
    lines = [f"Quality target: FID {target:.1f}, the best the public script reached in {budget:.0f} s of training "
             f"(LeNet features, {EVAL_N} samples, MNIST test split).", "",
             "| arm | FID at each point (training seconds) | first reached the target | speed-up (lower bound) |",
             "|---|---|---|---|"]
    for name, records in curves.items():
        reached = time_to(records, target)
        curve = ", ".join(f"{r['seconds']:.0f}s {r['fid']:.0f}" for r in records)
        when = f"after {reached[0]:.0f} s, by {reached[1]:.0f} s" if reached else "not within the budget"
        if name == reference:
            speedup = "1x"
        else:
            speedup = f"{ref_before / reached[1]:.1f}x" if reached else "-"
        lines.append(f"| {name} | {curve} | {when} | {speedup} |")
    out.mkdir(parents=True, exist_ok=True)
    (out / "curves.json").write_text(json.dumps({"budget": budget, "target": target, "curves": curves}, indent=1))
    (out / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, records in curves.items():
        ax.plot([r["seconds"] for r in records], [r["fid"] for r in records], marker="o", label=name)
    ax.axhline(target, color="grey", linestyle="--", linewidth=1, label="target")
    ax.set(xlabel="training time (s), 2 cores", ylabel="FID (LeNet features)", yscale="log", title="Time to quality on MNIST")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "time-to-quality.png", dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=300, help="training seconds per arm")
    parser.add_argument("--limit-data", type=int, default=0, help="MNIST images (0: all 60,000)")
    parser.add_argument("--out", type=Path, default=HERE.parent / "docs" / "results" / "time-to-quality")
    parser.add_argument("--tables-from", type=Path, help="rewrite the table and figure from this folder's curves.json")
    parser.add_argument("--arm", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.tables_from:
        saved = json.loads((args.tables_from / "curves.json").read_text())
        write_outputs(args.tables_from, saved["curves"], saved["budget"])
        return
    if args.arm:
        run_arm(ARMS[args.arm], args.budget, args.limit_data)
        return

    curves = {}
    for name, arm in ARMS.items():
        env = {**os.environ, "GANZOO_MALLOC_TUNING": "0" if arm["kind"] == "reference" else "1"}
        print(f"{name}: training {args.budget:.0f} s", flush=True)
        done = subprocess.run([sys.executable, __file__, "--arm", name, "--budget", str(args.budget), "--limit-data", str(args.limit_data)],
                              capture_output=True, text=True, env=env)
        if done.returncode != 0:
            raise SystemExit(f"{name} failed: {done.stderr.strip().splitlines()[-1:]}")
        curves[name] = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
        print("  " + ", ".join(f"{r['seconds']:.0f} s: FID {r['fid']:.1f}" for r in curves[name]), flush=True)

    write_outputs(args.out, curves, args.budget)

if __name__ == "__main__":
    main()
