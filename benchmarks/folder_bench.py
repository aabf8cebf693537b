"""The folder:PATH rows of ``make bench`` (docs/performance.md, "Your own images"):

- preparing a folder: images per second of ``ganzoo data prepare`` against torchvision's
  ImageFolder + DataLoader doing the same decode, centre crop and Lanczos resize with the same
  number of worker processes (goal >= 1.0x);
- the input pipeline's share of a training step at 64 px, for resnet64 and dcgan64 (goal <= 2%);
- peak RSS of a process that trains on a folder whose cache is larger than 2 GB and reads all of it,
  against the same on a 1,000-image folder (goal: at most 1 GB more), and without ``release``.

The folders are made here: photos as a user would bring them (256 x 256 JPEGs, an MNIST digit
tinted on a smooth background, quality 90) and, for the memory row, 175,000 small PNGs at 64 px.

    python benchmarks/folder_bench.py                # the rows alone
    python benchmarks/folder_bench.py --quick        # seconds-long smoke
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

import numpy as np
from PIL import Image

PHOTO, SMALL = 256, 64


def photos(folder: Path, count: int, size: int = PHOTO, fmt: str = "jpg") -> Path:
    """count images of size x size: a tinted MNIST digit on a smooth background, in 10 class folders."""
    from ganzoo.core.data import default_root, load_data
    from ganzoo.core.host import load_host

    if folder.exists() and sum(1 for _ in folder.rglob(f"*.{fmt}")) == count:
        return folder
    data = load_data(load_host().registry, "mnist", default_root())
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 1, size, dtype=np.float32)
    for i in range(count):
        digit = np.asarray(Image.fromarray(data.images[i % 60_000, 0].numpy()).resize((size, size), Image.BILINEAR), dtype=np.float32)
        colour = rng.uniform(60, 255, 3).astype(np.float32)
        background = (ramp[None, :, None] * rng.uniform(0, 90, 3) + ramp[:, None, None] * rng.uniform(0, 90, 3)).astype(np.float32)
        pixels = np.clip(background + digit[..., None] / 255 * colour, 0, 255).astype(np.uint8)
        label = int(data.labels[i % 60_000])
        path = folder / str(label) / f"{i:06d}.{fmt}"
        path.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "jpg":
            Image.fromarray(pixels).save(path, quality=90)
        else:
            Image.fromarray(pixels).save(path, compress_level=1)
    return folder


def prepare_seconds(folder: Path, root: Path, workers: int, resolution: int) -> float:
    """ganzoo's prepare from nothing, in a fresh process as ``ganzoo data prepare`` runs."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "ganzoo", "data", "prepare", f"folder:{folder}", "--resolution", str(resolution),
                           "--workers", str(workers), "--data-root", str(root), "--rebuild", "--quiet"], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"ganzoo data prepare failed: {done.stderr.strip()}")
    return time.perf_counter() - started


TORCHVISION = """
import sys, time
import torch, torchvision.transforms as T
from torchvision.datasets import ImageFolder
folder, workers, resolution = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
started = time.perf_counter()
crop = T.Lambda(lambda image: T.functional.center_crop(image, min(image.size)))
transform = T.Compose([crop, T.Resize(resolution, interpolation=T.InterpolationMode.LANCZOS), T.PILToTensor()])
loader = torch.utils.data.DataLoader(ImageFolder(folder, transform=transform), batch_size=64, num_workers=workers)
array = torch.cat([images for images, _ in loader])
print(time.perf_counter() - started, array.shape[0])
"""


def torchvision_seconds(folder: Path, workers: int, resolution: int) -> float:
    """ImageFolder + DataLoader decoding every image once into one uint8 tensor, in a fresh process."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", TORCHVISION, str(folder), str(workers), str(resolution)], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"the torchvision reference failed: {done.stderr.strip()[-500:]}")
    return time.perf_counter() - started


def prepare_rows(work: Path, count: int, repeats: int, workers: int) -> list[tuple[str, str, str]]:
    folder = photos(work / f"photos-{count}", count)
    ours, theirs = [], []
    for repeat in range(repeats):  # alternating, each side a fresh process
        for side in ((0, 1) if repeat % 2 == 0 else (1, 0)):
            if side == 0:
                ours.append(prepare_seconds(folder, work / "root", workers, SMALL))
            else:
                theirs.append(torchvision_seconds(folder, workers, SMALL))
    ratio = statistics.median(t / o for o, t in zip(ours, theirs, strict=True))
    a, b = statistics.median(ours), statistics.median(theirs)
    return [(f"prepare {count:,} {PHOTO} px JPEGs to {SMALL} px, {workers} workers: ganzoo / ImageFolder+DataLoader",
             f"{count / a:.0f} vs {count / b:.0f} images/s", f"{ratio:.2f}x (goal >= 1.0; both processes from start, torch import included)")]


def share_rows(bench, work: Path, count: int) -> list[tuple[str, str, str]]:
    """The batch draw against a whole step, on a memory-mapped 64 px folder."""
    folder = photos(work / f"photos-{count}", count)
    rows = []
    for arch in ("dcgan64", "resnet64"):
        trainer = bench.trainer("sngan", dataset=f"folder:{folder}", resolution=SMALL, arch=arch, limit_data=0,
                                data_root=str(work / "root"))
        index = iter(range(10**9))
        draw = lambda: trainer.batches.batch(next(index))  # noqa: E731
        steps = max(2, bench.args.steps // (4 if arch == "resnet64" else 1))
        bench.time_steps(trainer.advance, 1)
        t_draw = bench.time_steps(draw, 50)
        t_step = bench.time_steps(trainer.advance, steps)
        rows.append((f"input pipeline at 64 px ({arch}, batch 64), share of a step", f"{t_draw * 1e3:.2f} ms of {t_step * 1e3:.0f} ms",
                     f"{100 * t_draw / t_step:.2f}% (goal <= 2%)"))
    return rows


def rss_child(folder: str, root: str, release: bool) -> dict:
    """In a fresh process: build a dcgan64 trainer on the folder, train 5 steps, then draw every batch
    of an epoch (every page of the cache read), and report the peak RSS."""
    from ganzoo.core.compose import new_config
    from ganzoo.core.host import load_host
    from ganzoo.training.trainer import Trainer

    host = load_host()
    config = new_config(host.registry, "sngan", None, {"dataset": f"folder:{folder}", "resolution": SMALL, "arch": "dcgan64",
                                                         "data_root": root, "device": "cpu", "steps": 10**6}, None)
    trainer = Trainer(config, host, Path(tempfile.mkdtemp(prefix="ganzoo-rss-")))
    if not release:  # still gathered batch by batch from the map, but no page is ever let go
        trainer.batches.release = lambda: None
    for _ in range(5):
        trainer.advance()
    for index in range(trainer.batches.per_epoch):
        trainer.batches.batch(index)
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return {"peak_mb": int(status["VmHWM"].split()[0]) / 1024, "images": int(trainer.batches.images.shape[0])}


def run_rss(folder: Path, root: Path, release: bool = True) -> dict:
    done = subprocess.run([sys.executable, __file__, "--rss-child", str(folder), str(root), "1" if release else "0"],
                          capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "2"})
    if done.returncode:
        raise SystemExit(f"the memory child failed: {done.stderr.strip()[-500:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def memory_rows(work: Path, large: int) -> list[tuple[str, str, str]]:
    small_folder = photos(work / "small-1000", 1000, size=SMALL, fmt="png")
    large_folder = photos(work / f"small-{large}", large, size=SMALL, fmt="png")
    subprocess.run([sys.executable, "-m", "ganzoo", "data", "prepare", f"folder:{large_folder}", "--resolution", str(SMALL),
                    "--data-root", str(work / "root"), "--quiet"], check=True)
    small, big = run_rss(small_folder, work / "root"), run_rss(large_folder, work / "root")
    kept = run_rss(large_folder, work / "root", release=False)
    cache_gb = big["images"] * 3 * SMALL * SMALL / 1e9
    more = (big["peak_mb"] - small["peak_mb"]) / 1024
    return [(f"peak RSS, training on {big['images']:,} images ({cache_gb:.2f} GB cache) vs 1,000, all pages read",
             f"{big['peak_mb']:.0f} MiB vs {small['peak_mb']:.0f} MiB", f"+{more:.2f} GiB (goal <= 1 GiB)"),
            ("the same without releasing read pages (a plain memory map)", f"{kept['peak_mb']:.0f} MiB",
             f"+{(kept['peak_mb'] - small['peak_mb']) / 1024:.2f} GiB")]


def rows(bench, quick: bool) -> list[tuple[str, str, str]]:
    """Every row, for benchmarks/bench.py's "folders" section."""
    work = Path(os.environ.get("GANZOO_BENCH_FOLDERS") or Path(tempfile.gettempdir()) / "ganzoo-bench-folders")
    workers = len(os.sched_getaffinity(0))
    count = 200 if quick else 4000
    out = prepare_rows(work, count, 1 if quick else 3, workers)
    out += share_rows(bench, work, 200 if quick else 1000)
    out += memory_rows(work, 3000 if quick else 175_000)
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rss-child", nargs=3, help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.rss_child:
        folder, root, release = args.rss_child
        print(json.dumps(rss_child(folder, root, release == "1")))
    else:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import bench as bench_module

        bench_module.main(["--only", "folders", *rest])
