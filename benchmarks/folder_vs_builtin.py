"""A check of the folder path (docs/results/own-images-stacked): Stacked MNIST trained from ganzoo's
built-in loader and from a folder of the same images as PNG files, SNGAN and PSG N=2, the same seeds
and step budget, each scored with Inception FID (clean-fid protocol) against a held-apart folder of
Stacked MNIST test images. The folder's PNGs hold the very pixels, in the same order (zero-padded
names sort as the loader's order), so the two loaders should give the same numbers within seed noise.

    python benchmarks/folder_vs_builtin.py --out docs/results/own-images-stacked       # ~30 min on 2 cores
    python benchmarks/folder_vs_builtin.py --quick --out /tmp/check                    # a smoke run
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
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

STRATEGIES = {"sngan": [], "psg N=2": ["--n-gens", "2"]}


def ganzoo(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "ganzoo", *args], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"ganzoo {' '.join(args[:2])} failed: {done.stderr.strip()[-800:]}")
    return done.stdout


def write_folders(work: Path, n_train: int, n_test: int) -> tuple[Path, Path]:
    from tests.folders import stacked_folder

    train, test = work / "stacked-train", work / "stacked-test"
    for folder, count, split in ((train, n_train, "train"), (test, n_test, "test")):
        if not folder.exists() or sum(1 for _ in folder.iterdir()) != count:
            stacked_folder(folder, count, split)
    return train, test


def generator_digest(run: Path) -> str:
    """The sha256 of every generator tensor of a run's checkpoint."""
    import hashlib

    from ganzoo.core.tensorfile import read_tensor_file

    tensors, _ = read_tensor_file(run / "checkpoint.safetensors")
    digest = hashlib.sha256()
    for name in sorted(k for k in tensors if k.startswith("generator.")):
        digest.update(name.encode() + tensors[name].contiguous().numpy().tobytes())
    return digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--n", type=int, default=1000, help="samples per FID (Inception: ~0.25 s an image on 2 CPU cores)")
    parser.add_argument("--n-test", type=int, default=1000, help="held-apart test images (the FID reference)")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.steps, args.n, args.n_test = 1, 20, 12, 12
    work = Path(os.environ.get("GANZOO_BENCH_FOLDERS") or Path(tempfile.gettempdir()) / "ganzoo-bench-folders")
    n_train = 25_600 if not args.quick else 512
    train, test = write_folders(work, n_train, args.n_test)
    loaders = {"built-in stacked-mnist": ["--dataset", "stacked-mnist"] + (["--limit-data", str(n_train)] if args.quick else []),
               "folder of PNGs": ["--dataset", f"folder:{train}", "--data-root", str(work / "root")]}
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    for strategy, options in STRATEGIES.items():
        for seed in range(args.seeds):
            for loader, data in loaders.items():
                run = work / "runs" / f"{strategy.replace(' ', '-')}-{loader.split()[0]}-seed{seed}"
                started = time.perf_counter()
                if not (run / "checkpoint.safetensors").exists():
                    ganzoo("train", strategy.split()[0], *options, *data, "--seed", str(seed), "--steps", str(args.steps),
                           "--deterministic", "--out", str(run), "--quiet")
                trained = time.perf_counter() - started
                scored = json.loads(ganzoo("eval", str(run), "--reference", f"folder:{test}", "--features", "inception",
                                           "--n", str(args.n), "--data-root", str(work / "root"), "--json"))
                results.append({"strategy": strategy, "loader": loader, "seed": seed, "run": str(run), "fid": scored["fid"], "kid": scored["kid"],
                                "train_seconds": round(trained, 1), "protocol": scored["protocol"]})
                print(f"{strategy:8} {loader:24} seed {seed}: FID {scored['fid']:.2f}", flush=True)
    for strategy in STRATEGIES:  # the same weights, bit for bit, from the two loaders?
        for seed in range(args.seeds):
            pair = [r for r in results if r["strategy"] == strategy and r["seed"] == seed]
            digests = {generator_digest(Path(r["run"])) for r in pair}
            for r in pair:
                r["same_weights_as_other_loader"] = len(digests) == 1
    (args.out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    same = all(r["same_weights_as_other_loader"] for r in results)
    lines = [f"Generators bit-identical between the two loaders in every (strategy, seed): {'yes' if same else 'no'}", "",
             "| strategy | loader | FID per seed | mean |", "|---|---|---|---|"]
    for strategy in STRATEGIES:
        for loader in loaders:
            fids = [r["fid"] for r in results if r["strategy"] == strategy and r["loader"] == loader]
            lines.append(f"| {strategy} | {loader} | {', '.join(f'{f:.2f}' for f in fids)} | {statistics.mean(fids):.2f} |")
    (args.out / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
