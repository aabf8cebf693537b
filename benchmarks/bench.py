"""ganzoo's benchmark suite: ratios measured side by side in one run (``make bench``).

Every row times two things in alternation (A B, B A, A B ..., ``--repeats`` pairs of ``--steps``
steps each, after a warm-up) and prints the medians and the median of the per-pair ratios, so that a
machine slowing down mid-run moves both sides alike. It warns when the load average says other
work is running. Sections (docs/performance.md explains each target):

    startup      ganzoo --help and ganzoo train psg --help against python -c pass (benchmarks/startup.py)
    overhead     ganzoo's PSG step against a bare hand-written loop (benchmarks/bare_loop.py)
    data         ganzoo's batch draw against a DataLoader with PIL transforms, as a share of a step
    generators   PSG with N = 1, 2, 4, 8: step time per FLOP normalised to N = 1, looped and vmapped
    switches     bf16 autocast, channels-last, torch.compile, malloc tuning, the EMA: each one's cost or speed-up
    throughput   images/s per strategy, float32 and bf16, eager and (PSG, SNGAN) compiled
    memory       peak memory of a training step, per configuration (CPU: a process each)
    reference    time per MNIST epoch against a typical public DCGAN script (benchmarks/reference_dcgan.py)
    folders      folder:PATH: preparing against ImageFolder, the pipeline's share at 64 px, peak RSS (benchmarks/folder_bench.py)
    conditional  a class-conditional step (--conditional; acgan) against the unconditional one of the same strategy
    penalties    R1/R2 through the images they penalise only, against 0.6's input gradient through all (N + 1) x B images

    python benchmarks/bench.py                 # everything, about 15 minutes on 2 cores
    python benchmarks/bench.py --quick         # a seconds-long smoke run (CI)
    python benchmarks/bench.py --only generators switches
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bare_loop import BareLoop  # noqa: E402
from machine import cpu_use, machine_line, other_processes_share, warn_if_busy  # noqa: E402

from ganzoo.core.compose import new_config  # noqa: E402
from ganzoo.core.host import load_host  # noqa: E402
from ganzoo.training.runtime import tune_malloc  # noqa: E402
from ganzoo.training.trainer import Trainer  # noqa: E402

SECTIONS = ("startup", "overhead", "data", "generators", "switches", "throughput", "memory", "reference", "folders", "conditional",
            "penalties")
GPU_SECTIONS = ("overhead", "generators", "throughput", "memory")  # benchmarks/gpu_check.sh
MNIST_IMAGES = 60_000


class Bench:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        if args.data == "synthetic":  # random squares in memory: for machines without MNIST (a GPU box)
            import synthetic_data

            self.host = load_host(plugins=[synthetic_data])
        else:
            self.host = load_host()
        self.rows: list[tuple[str, str, str, str]] = []
        self.tmp = Path(tempfile.mkdtemp(prefix="ganzoo-bench-"))

    # -- building and timing ------------------------------------------------------------------

    def trainer(self, strategy: str = "psg", **settings) -> Trainer:
        base = {"limit_data": self.args.limit_data, "device": self.args.device, "steps": 10**9, "seed": 0, "dataset": self.args.data}
        if self.args.data == "synthetic":
            base["arch"] = "dcgan28"
        options = settings.pop("options", None)
        config = new_config(self.host.registry, strategy, None, {**base, **settings}, options)
        return Trainer(config, self.host, self.tmp / f"run-{len(os.listdir(self.tmp))}")

    def time_steps(self, step: Callable[[], object], steps: int) -> float:
        sync()
        started = time.perf_counter()
        for _ in range(steps):
            step()
        sync()
        return (time.perf_counter() - started) / steps

    def paired(self, a: Callable[[], object], b: Callable[[], object], steps: int | None = None) -> tuple[float, float, float]:
        """Median seconds per step of a and of b, and the median of the paired ratios a / b."""
        steps = steps or self.args.steps
        for fn in (a, b):  # warm-up: allocator, autotuning, lazy init
            self.time_steps(fn, max(2, steps // 4))
        times_a, times_b = [], []
        for repeat in range(self.args.repeats):  # A B, B A, A B, ...: neither side always goes first
            if repeat % 2:
                times_b.append(self.time_steps(b, steps))
                times_a.append(self.time_steps(a, steps))
            else:
                times_a.append(self.time_steps(a, steps))
                times_b.append(self.time_steps(b, steps))
        ratios = [x / y for x, y in zip(times_a, times_b)]
        return statistics.median(times_a), statistics.median(times_b), statistics.median(ratios)

    def row(self, section: str, what: str, measured: str, ratio: str) -> None:
        self.rows.append((section, what, measured, ratio))
        print(f"  {what:<46} {measured:<34} {ratio}", flush=True)

    # -- sections -------------------------------------------------------------------------------

    def startup(self) -> None:
        from startup import startup_times

        times = startup_times(self.args.repeats)
        bare = times.pop("python -c pass")
        for name, t in times.items():
            self.row("startup", f"{name}, a fresh process", f"{ms(t)} vs {ms(bare)} (python -c pass)", f"{t / bare:.1f}x")

    def overhead(self) -> None:
        for amp in ("off", "bf16"):  # the bare loop keeps no EMA: the EMA's own cost is a row of switches
            trainer = self.trainer("psg", n_gens=2, amp=amp, options={"ema": 0.0})
            bare = BareLoop(trainer)
            t_gz, t_bare, ratio = self.paired(trainer.advance, bare.step)
            self.row("overhead", f"PSG N=2 step, ganzoo / bare loop, amp {amp}", f"{ms(t_gz)} vs {ms(t_bare)}", f"{ratio:.3f} (target <= 1.03)")

    def data(self) -> None:
        from reference_dcgan import mnist_loader

        trainer = self.trainer("psg", n_gens=2)
        loader = mnist_loader(trainer.config.batch_size, limit=self.args.limit_data)
        batches = iter(())

        def dataloader_batch() -> None:
            nonlocal batches
            try:
                next(batches)
            except StopIteration:
                batches = iter(loader)
                next(batches)

        index = iter(range(10**9))
        t_gz, t_dl, ratio = self.paired(lambda: trainer.batches.batch(next(index)), dataloader_batch)
        t_step = self.time_steps(trainer.advance, self.args.steps)
        self.row("data", "batch draw, ganzoo / DataLoader+PIL", f"{us(t_gz)} vs {us(t_dl)}", f"{ratio:.3f}")
        self.row("data", "ganzoo batch draw as a share of its step", f"{us(t_gz)} of {ms(t_step)}", f"{100 * t_gz / t_step:.2f}% (target <= 2%)")

    def generators(self) -> None:
        base = None
        plain = {"r1": 0.0, "r2": 0.0}  # torch's FLOP counter cannot follow the penalties' autograd.grad
        for n in self.args.n_gens:
            loop = self.trainer("psg", n_gens=n, vmap="off", options=plain)
            flops = step_flops(loop)
            if n == 1:  # nothing to vmap: the median of the same number of timings
                self.time_steps(loop.advance, max(2, self.args.steps // 4))
                t_loop = statistics.median(self.time_steps(loop.advance, self.args.steps) for _ in range(self.args.repeats))
                t_vmap, ratio = t_loop, 1.0
            else:
                vmapped = self.trainer("psg", n_gens=n, vmap="on", options=plain)
                t_loop, t_vmap, ratio = self.paired(loop.advance, vmapped.advance)
            per_flop = min(t_loop, t_vmap) / flops
            base = base or per_flop
            self.row("generators", f"PSG N={n}: {flops / 1e9:.2f} GFLOP/step without R1/R2; loop vs vmap", f"{ms(t_loop)} vs {ms(t_vmap)} (loop/vmap {ratio:.2f})",
                     f"{per_flop / base:.2f} time/FLOP vs N=1 (target <= 1.1)")

    def switches(self) -> None:
        fp32, bf16 = self.trainer("psg", n_gens=2, amp="off"), self.trainer("psg", n_gens=2, amp="bf16")
        t32, t16, ratio = self.paired(fp32.advance, bf16.advance)
        self.row("switches", "bf16 autocast (PSG N=2): fp32 / bf16", f"{ms(t32)} vs {ms(t16)}", f"{ratio:.2f}x faster with bf16")
        plain, last = self.trainer("psg", n_gens=2), self.trainer("psg", n_gens=2, channels_last=True)
        t_plain, t_last, ratio = self.paired(plain.advance, last.advance)
        self.row("switches", "channels-last (PSG N=2, amp auto): plain / CL", f"{ms(t_plain)} vs {ms(t_last)}", f"{ratio:.2f}x")
        no_ema, ema = self.trainer("psg", n_gens=2, options={"ema": 0.0}), self.trainer("psg", n_gens=2)
        t_on, t_off, ratio = self.paired(ema.advance, no_ema.advance)
        self.row("switches", "EMA of G, 0.999 warmed up (PSG N=2): on / off", f"{ms(t_on)} vs {ms(t_off)}", f"{ratio:.3f}x")
        (averages,) = ema.observers("ema")
        t_loop, t_fused, ratio = self.paired(lambda: ema_as_a_loop(ema, averages.tables), lambda: averages.ganzoo_on_step_end(ema, 100))
        self.row("switches", "EMA update alone: a lerp_ per tensor (0.4) / fused", f"{us(t_loop)} vs {us(t_fused)}", f"{ratio:.2f}x")
        if not self.args.quick:
            plain = {"r1": 0.0, "r2": 0.0}  # psg's penalties are double backward, which torch.compile does not support
            eager, compiled = self.trainer("psg", n_gens=2, options=plain), self.trainer("psg", n_gens=2, compile=True, options=plain)
            started = time.perf_counter()
            compiled.advance()
            warm = time.perf_counter() - started
            t_eager, t_compiled, ratio = self.paired(eager.advance, compiled.advance)
            self.row("switches", f"torch.compile (PSG N=2 without R1/R2; {warm:.0f} s to compile)", f"{ms(t_eager)} vs {ms(t_compiled)}", f"{ratio:.2f}x (eager / compiled)")
        results = {True: [], False: []}
        for _ in range(self.args.repeats):
            for tuned in (False, True):
                results[tuned].append(child({"what": "step", "n_gens": 2, "malloc": tuned}, self.args)["seconds"])
        ratios = [a / b for a, b in zip(results[False], results[True])]
        self.row("switches", "malloc tuning (PSG N=2, a process each): off / on",
                 f"{ms(statistics.median(results[False]))} vs {ms(statistics.median(results[True]))}", f"{statistics.median(ratios):.2f}x")
        self.row("switches", "torch threads in this process", str(torch.get_num_threads()), f"{os.cpu_count()} cores")

    def throughput(self) -> None:
        strategies = ["psg", "sngan"] if self.args.quick else sorted(self.host.registry.names("strategy"))
        for strategy in strategies:
            n_gens = {"n_gens": 2} if strategy in ("psg", "madgan", "mgan") else {}
            compiles = (False, True) if strategy in ("psg", "sngan") and not self.args.quick else (False,)
            cells = []
            for compiled in compiles:
                for amp in ("off", "bf16"):
                    plain = {"options": {"r1": 0.0, "r2": 0.0}} if compiled and strategy == "psg" else {}  # no double backward
                    trainer = self.trainer(strategy, amp=amp, compile=compiled, **n_gens, **plain)
                    trainer.advance()  # compiles here
                    seconds = self.time_steps(trainer.advance, self.args.steps)
                    images = trainer.config.batch_size * trainer.config.n_dis
                    cells.append(f"{'compiled ' if compiled else ''}{amp} {images / seconds:.0f}")
            label = f"{strategy}{' N=2' if n_gens else ''}: images/s"
            self.row("throughput", label, ", ".join(cells[:2]), ", ".join(cells[2:]))

    def memory(self) -> None:
        """Peak memory over the first 3 steps above the built model: activations, gradients, Adam's state."""
        configs = [(n, vmap, amp) for n in self.args.n_gens for vmap in (("off", "on") if n > 1 else ("off",)) for amp in ("off", "bf16")]
        base = None
        for n, vmap, amp in configs[-1:] if self.args.quick else configs:
            job = {"what": "memory", "n_gens": n, "vmap": vmap, "amp": amp, "malloc": True}
            peak = run_child(job, self.args)["peak_mb"] if self.args.device.startswith("cuda") else child(job, self.args)["peak_mb"]
            if n == 1 and vmap == "off" and amp == "off":
                base = peak
            per_n = f"{peak / (base * n):.2f} per generator vs N=1" if base else ""
            self.row("memory", f"PSG N={n}, vmap {vmap}, amp {amp}: peak in steps 1-3", f"{peak:.0f} MiB above the built model", per_n)

    def reference(self) -> None:
        """Each side in its own process, alternating: the public script untuned (no malloc
        settings, as it would run), ganzoo as ``ganzoo train`` runs (its defaults)."""
        configs = {"reference": {"what": "reference", "malloc": False},
                   "psg n_gens=2": {"what": "step", "strategy": "psg", "n_gens": 2, "malloc": True},
                   "sngan": {"what": "step", "strategy": "sngan", "malloc": True}}
        if self.args.quick:
            del configs["sngan"]
        times: dict[str, list[float]] = {name: [] for name in configs}
        for _ in range(self.args.repeats if not self.args.quick else 1):
            for name, job in configs.items():
                result = child(job, self.args)
                times[name].append(result["seconds"] * result["steps_per_epoch"])
        epoch_ref = statistics.median(times["reference"])
        for name in list(configs)[1:]:
            ratios = [r / g for r, g in zip(times["reference"], times[name])]
            self.row("reference", f"MNIST epoch: public script / ganzoo {name}",
                     f"{epoch_ref:.0f} s vs {statistics.median(times[name]):.0f} s", f"{statistics.median(ratios):.2f}x faster (aim >= 3)")

    def folders(self) -> None:
        import folder_bench

        for what, measured, ratio in folder_bench.rows(self, self.args.quick):
            self.row("folders", what, measured, ratio)

    def conditional(self) -> None:
        """Labels drawn with the batch, conditional batch norm in G, a projection D (or AC-GAN's class head)."""
        cases = [("sngan", {}, "sngan"), ("psg", {"n_gens": 2}, "psg N=2")]
        if not self.args.quick:
            cases.append(("acgan", {}, "acgan"))
        for strategy, settings, label in cases:
            plain = self.trainer("sngan" if strategy == "acgan" else strategy, options={"loss": "bce"} if strategy == "acgan" else None,
                                 **settings)
            conditioned = self.trainer(strategy, conditional=True, **settings)
            t_cond, t_plain, ratio = self.paired(conditioned.advance, plain.advance)
            against = "sngan with bce" if strategy == "acgan" else "unconditional"
            self.row("conditional", f"{label}: conditional / {against} step", f"{ms(t_cond)} vs {ms(t_plain)}",
                     f"{ratio:.3f} (target <= 1.10)")

    def penalties(self) -> None:
        """R1 alone and R2 alone in psg's tuple policy, R1 in sngan's binary one and rpgan's pairing one
        as 0.7 computes them, against the same step with 0.6's penalty (one pass on every image, its
        input gradient taken through all of them), and what psg's default penalties cost."""
        cases = [("psg", {"n_gens": 2, "options": {"r1": 1.0, "r2": 0.0}}, "psg N=2 --r1 1 --r2 0"),
                 ("psg", {"n_gens": 2, "options": {"r1": 0.0, "r2": 1.0}}, "psg N=2 --r1 0 --r2 1"),
                 ("sngan", {"options": {"r1": 1.0}}, "sngan --r1 1"),
                 ("rpgan", {"options": {"r1": 1.0, "r2": 0.0}}, "rpgan --r1 1 --r2 0")]
        for strategy, settings, label in cases:
            now, before = self.trainer(strategy, **settings), self.trainer(strategy, **settings)

            def before_step(trainer=before):
                with whole_batch_penalties():
                    trainer.advance()

            t_before, t_now, ratio = self.paired(before_step, now.advance)
            self.row("penalties", f"{label}: 0.6's penalty / 0.7's", f"{ms(t_before)} vs {ms(t_now)}", f"{ratio:.2f}x faster")
        plain, penalised = self.trainer("psg", n_gens=2, options={"r1": 0.0, "r2": 0.0}), self.trainer("psg", n_gens=2)
        t_pen, t_plain, ratio = self.paired(penalised.advance, plain.advance)
        self.row("penalties", "psg N=2: its defaults (R1, R2 30) / --r1 0 --r2 0", f"{ms(t_pen)} vs {ms(t_plain)}", f"{ratio:.2f}x")

    def run(self) -> None:
        print(machine_line(), flush=True)
        warn_if_busy()
        before = cpu_use()
        for section in self.args.only or SECTIONS:
            print(f"\n[{section}]", flush=True)
            getattr(self, section)()
        others = other_processes_share(before, cpu_use())
        print(f"\nother processes used {100 * others:.0f}% of the CPUs while this ran", flush=True)
        if others > 0.1:
            print("WARNING: other work ran alongside: the ratios may be off; rerun on an idle machine", flush=True)
        if self.args.markdown:
            write_markdown(Path(self.args.markdown), self.rows, self.args)


# -- helpers -------------------------------------------------------------------------------------


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms"


def us(seconds: float) -> str:
    return f"{seconds * 1e6:.0f} us"


def ema_as_a_loop(trainer: Trainer, tables: list[dict[str, torch.Tensor]]) -> None:
    """The EMA update as plugin API 0.4's ema plugin made it: one lerp_ (or copy_) per state tensor."""
    with torch.no_grad():
        for generator, table in zip(trainer.generators, tables):
            for key, live in generator.state_dict().items():
                if live.is_floating_point():
                    table[key].lerp_(live, 0.001)
                else:
                    table[key].copy_(live)


def whole_batch_scores_and_penalties(discriminator, batches, penalise, labels=None):
    """0.6's penalties through the helper 0.6 used (``scores_and_penalty``: one D pass on every image,
    the input gradient taken through all of them), with ``scores_and_penalties``' signature. The
    penalised batches are adjacent in every built-in policy (the real one first, then the fakes)."""
    from ganzoo.core.labels import scorer
    from ganzoo.core.penalties import scores_and_penalty

    b, first, count = batches[0].shape[0], penalise.index(True), sum(penalise)
    assert all(penalise[first:first + count]), "the penalised batches must be adjacent"
    scores, sq_norms = scores_and_penalty(scorer(discriminator, labels, len(batches)), torch.cat(batches),
                                          slice(first * b, (first + count) * b))
    parts = iter(sq_norms.chunk(count))
    return scores, [next(parts) if p else None for p in penalise]


@contextlib.contextmanager
def whole_batch_penalties():
    """The built-in policies compute their penalties as 0.6 did while this is open."""
    import importlib

    modules = [importlib.import_module(f"ganzoo.plugins.{m}") for m in ("psg.tuple_policy", "binary.binary_policy", "rpgan.policy")]
    for module in modules:
        module.scores_and_penalties = whole_batch_scores_and_penalties
    try:
        yield
    finally:
        from ganzoo.core.penalties import scores_and_penalties

        for module in modules:
            module.scores_and_penalties = scores_and_penalties


def step_flops(trainer: Trainer) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        trainer.advance()
    return float(counter.get_total_flops())


def reference_batches(args: argparse.Namespace):
    """The public script's DataLoader batches, endlessly."""
    from reference_dcgan import mnist_loader

    loader = mnist_loader(64, limit=args.limit_data)
    while True:
        for imgs, _ in loader:
            yield imgs


def child(job: dict, args: argparse.Namespace) -> dict:
    """Run one measurement in a fresh process (malloc settings and peak memory are per process)."""
    env = {**os.environ, "GANZOO_MALLOC_TUNING": "1" if job.get("malloc") else "0"}
    command = [sys.executable, __file__, "--child", json.dumps(job), "--steps", str(args.steps),
               "--limit-data", str(args.limit_data), "--device", args.device, "--data", args.data]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    if done.returncode != 0:
        raise SystemExit(f"benchmark child failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_child(job: dict, args: argparse.Namespace) -> dict:
    tune_malloc()  # does nothing under GANZOO_MALLOC_TUNING=0
    bench = Bench(args)
    if job["what"] == "reference":
        from reference_dcgan import Reference

        loader, ref = reference_batches(args), Reference()
        step = lambda: ref.iteration(next(loader))  # noqa: E731
        for _ in range(2):
            step()
        return {"seconds": bench.time_steps(step, args.steps), "steps_per_epoch": -(-MNIST_IMAGES // 64)}
    settings = {k: job[k] for k in ("n_gens", "vmap", "amp") if k in job}
    trainer = bench.trainer(job.get("strategy", "psg"), **settings)
    if job["what"] == "step":
        for _ in range(2):  # lazy allocations that every run pays once
            trainer.advance()
        steps_per_epoch = MNIST_IMAGES // (trainer.config.batch_size * trainer.config.n_dis)
        return {"seconds": bench.time_steps(trainer.advance, args.steps), "steps_per_epoch": steps_per_epoch}
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        for _ in range(3):
            trainer.advance()
        return {"peak_mb": (torch.cuda.max_memory_allocated() - before) / 2**20}
    before = rss_mb("VmRSS")
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current size
    for _ in range(3):
        trainer.advance()
    return {"peak_mb": rss_mb("VmHWM") - before}


def rss_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def write_markdown(path: Path, rows: list[tuple[str, str, str, str]], args: argparse.Namespace) -> None:
    lines = [f"Measured {time.strftime('%Y-%m-%d')} with `python benchmarks/bench.py` (repeats {args.repeats}, "
             f"{args.steps} steps each, data limit {args.limit_data}).", "", machine_line(), "",
             "| section | what | measured | ratio |", "|---|---|---|---|"]
    lines += [f"| {' | '.join(row)} |" for row in rows]
    path.write_text("\n".join(lines) + "\n")
    print(f"\ntable written to {path}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="paired repeats per row (medians over them)")
    parser.add_argument("--steps", type=int, default=12, help="steps per timing")
    parser.add_argument("--limit-data", type=int, default=8192, help="MNIST images to load")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data", choices=["mnist", "synthetic"], default="mnist",
                        help="synthetic: random squares in memory, for machines without MNIST")
    parser.add_argument("--gpu", action="store_true", help="the GPU check: --device cuda --data synthetic, sections " + " ".join(GPU_SECTIONS))
    parser.add_argument("--only", nargs="+", choices=SECTIONS)
    parser.add_argument("--n-gens", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--quick", action="store_true", help="a seconds-long smoke run: 1 repeat, 2 steps, N = 1, 2")
    parser.add_argument("--markdown", help="also write the table to this file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.steps, args.limit_data, args.n_gens = 1, 2, 512, [1, 2]
    if args.gpu:
        args.device, args.data, args.only = "cuda", "synthetic", args.only or list(GPU_SECTIONS)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child:
        print(json.dumps(run_child(json.loads(args.child), args)))
        return
    tune_malloc()  # as ganzoo train does; the reference section runs in this process too
    Bench(args).run()


if __name__ == "__main__":
    main()
