"""The core training loop. It knows nothing of PSG or SNGAN: it calls the chosen input policy and
aggregation, and the observer hooks.

One generator step, top to bottom (``Trainer.train_step``):
    for each of n_dis discriminator steps:
        draw a real batch and z; run the N generators
        out = policy(D, real, fakes)                 # D runs once on the (N+1) x B batch
        D minimises mean(d_weights * out.d_losses)   # d_weights from the aggregation, or ones
    out = policy(D, real, fakes)                     # the updated D on the last batch, gradients into G
    every G minimises aggregation(out).generators
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ganzoo import distributed, rundir, run_state
from ganzoo.checkpoint import encode_checkpoint, manifest_fields, read_checkpoint
from ganzoo.config import TrainConfig, make_config
from ganzoo.data import Batches, default_root, load_data
from ganzoo.errors import (
    CheckpointError,
    DataError,
    GanzooError,
    NonFiniteError,
    PluginError,
    PluginMissingError,
    StopRequested,
)
from ganzoo.distributed import World
from ganzoo.files import write_atomic
from ganzoo.generator_bank import GeneratorBank, use_vmap
from ganzoo.host import Host
from ganzoo.images import grid, png_bytes
from ganzoo.models import build_discriminator, build_generators, check_fits, distinct_parameters
from ganzoo.precision import Autocast, allow_tf32, resolve_amp


def resolve_device(name: str) -> torch.device:
    if name != "auto" and name != "cpu" and not (name == "cuda" or name.startswith("cuda:") and name[5:].isdigit()):
        raise GanzooError(f"device must be auto, cpu, cuda or cuda:N, got {name!r}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise GanzooError("--device cuda was asked for, but torch sees no CUDA device")
    return torch.device(name)


# Hooks that observe a run; under torchrun only rank 0 (the writer) calls them.
OBSERVER_HOOKS = {"ganzoo_on_train_start", "ganzoo_on_step_end", "ganzoo_on_epoch_end", "ganzoo_on_checkpoint_saved",
                  "ganzoo_on_train_end", "ganzoo_on_checkpoint_save"}

TRAINING_KINDS = ("strategy", "input policy", "aggregation", "architecture", "dataset")  # recorded in checkpoints


def discriminator_shape(policy: Any) -> tuple[int, int]:
    """(packing, outputs) the input policy asks of D: images stacked per input, logits per input."""
    packing, outputs = int(getattr(policy, "d_packing", 1)), int(getattr(policy, "d_outputs", 1))
    if packing < 1 or outputs < 1:
        raise GanzooError(f"the input policy asks for a D with packing {packing} and {outputs} outputs; both must be at least 1")
    return packing, outputs


def require_parts(host: Host, manifest: dict[str, Any], kinds: tuple[str, ...]) -> None:
    """Raise PluginMissingError naming the plugin a checkpoint needs when its part is not registered."""
    for kind in kinds:
        with manifest_fields():
            part = manifest["parts"][kind]
            known = part["name"] in host.registry.names(kind)
        if not known:
            raise PluginMissingError(
                f"this checkpoint needs the {kind} {part['name']!r} from plugin {part['plugin']!r}, which is not installed"
            )


class Trainer:
    """Builds a run from a TrainConfig (or resumes one) and trains it."""

    def __init__(self, config: TrainConfig, host: Host, run_dir: Path, *, resume: bool = False,
                 log: Callable[[str], None] | None = None, world: World | None = None):
        self.config, self.host, self.run_dir = config, host, Path(run_dir)
        self.world = world or World()
        self.log = log or (lambda _: None)
        registry = host.registry
        registry.get("strategy", config.strategy)
        dataset = registry.get("dataset", config.dataset.partition(":")[0])
        self.arch_name = config.arch or dataset.default_arch
        arch = registry.get("architecture", self.arch_name)
        self.policy = registry.get("input policy", config.policy).build(config)
        self.aggregation = registry.get("aggregation", config.aggregation).build(config)
        self.device = distributed.rank_device(resolve_device(config.device), self.world)
        if config.deterministic:
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.benchmark = False

        data = load_data(registry, config.dataset, Path(config.data_root) if config.data_root else default_root())
        images = data.images[: config.limit_data] if config.limit_data else data.images
        images = images[self.world.rank :: self.world.size]  # this rank's shard (all of it in a plain run)
        if tuple(images.shape[2:]) != (arch.image_size, arch.image_size):
            raise DataError(
                f"architecture {self.arch_name!r} makes {arch.image_size}x{arch.image_size} images, "
                f"but {config.dataset!r} has {images.shape[2]}x{images.shape[3]}; choose another --arch"
            )
        self.data_source = data.source
        self.image_shape = tuple(images.shape[1:])
        self.batches = Batches(images.to(self.device), config.batch_size, config.seed)
        self.steps_per_epoch = max(1, self.batches.per_epoch // config.n_dis)
        self.total_steps = config.steps or config.epochs * self.steps_per_epoch

        channels = self.image_shape[0]
        self.d_packing, self.d_outputs = discriminator_shape(self.policy)
        self.generators = build_generators(arch, config.n_gens, config.z_dim, channels, config.seed).to(self.device)
        self.discriminator = build_discriminator(
            arch, channels * self.d_packing, config.spectral_norm, config.seed, self.d_outputs
        ).to(self.device)
        self.notify("ganzoo_on_models_built", trainer=self)  # plugins may tie layers before the optimizers exist
        betas = (config.beta1, config.beta2)
        own_params = distinct_parameters(self.generators)
        self.g_optimizers = [torch.optim.Adam(params, lr=config.lr, betas=betas) for params in own_params]
        self.d_optimizer = torch.optim.Adam(self.discriminator.parameters(), lr=config.lr, betas=betas)
        self.g_params = [p for params in own_params for p in params]
        self._build_calls()

        torch.manual_seed(config.seed)
        self.z_rng = torch.Generator(self.device).manual_seed(config.seed + 1_000_003 * self.world.rank)
        # Fixed z for the sample grids; with shared z every generator gets the same column of z.
        z_columns = 1 if config.shared_z else config.n_gens
        z = torch.randn(config.sample_count, z_columns, config.z_dim, generator=self.z_rng, device=self.device)
        self.sample_z = z.expand(-1, config.n_gens, -1).contiguous()
        self.step = 0
        self.epoch = 0
        self.rollbacks = 0
        self.stop_signal: int | None = None  # set (e.g. by a signal handler) to stop after this step
        self.latest: dict[str, Any] = {}
        self._reset_metrics()
        if resume:
            self._restore()
        self.evaluator = None
        if config.eval_every and self.world.writer:  # built now, so a missing extractor fails before any training
            from ganzoo.evaluate import build_evaluator

            self.evaluator = build_evaluator(
                host, config.dataset, features=config.eval_features, data_root=Path(config.data_root) if config.data_root else None,
                device=self.device, log=self.log,
            )

    # -- the hot path ---------------------------------------------------------------------------

    def _build_calls(self) -> None:
        """How the hot path calls the networks: the N generators as one GeneratorBank (looped or
        vmapped), both under bf16 autocast when --amp says so (and TF32 on CUDA), wrapped in DDP under torchrun, and
        compiled with --compile. The modules themselves (self.generators, self.discriminator) are
        what optimizers and checkpoints see."""
        config, device = self.config, self.device
        self.amp = resolve_amp(config.amp, device)
        self.tf32 = allow_tf32(device)
        self.vectorized = use_vmap(config.vmap, self.generators, device)
        if config.channels_last:
            self.generators.to(memory_format=torch.channels_last)
            self.discriminator.to(memory_format=torch.channels_last)
        bank: torch.nn.Module = GeneratorBank(self.generators, vectorized=self.vectorized, device=device, amp=self.amp)
        d_train: torch.nn.Module = self.discriminator
        if self.world.active:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [device.index] if device.type == "cuda" else None
            bank, d_train = DDP(bank, device_ids=ids), DDP(d_train, device_ids=ids)
        # D's generator pass needs no gradient of D, so it bypasses DDP's gradient averaging.
        calls = [bank, Autocast(d_train, device, self.amp), Autocast(self.discriminator, device, self.amp)]
        if config.compile:
            calls = [torch.compile(call) for call in calls]
        self._generate, self._d_for_d, self._d_for_g = calls

    def _fakes(self, batch: int) -> list[Tensor]:
        n, z_dim = self.config.n_gens, self.config.z_dim
        shape = (batch, z_dim) if self.config.shared_z else (n, batch, z_dim)
        z = torch.randn(shape, generator=self.z_rng, device=self.device)
        return self._generate(z)

    def train_step(self) -> None:
        config = self.config
        for k in range(config.n_dis):
            real = self.batches.batch(self.step * config.n_dis + k)
            last = k == config.n_dis - 1
            with torch.set_grad_enabled(last):
                fakes = self._fakes(real.shape[0])
            out = self.policy(self._d_for_d, real, [f.detach() for f in fakes])
            weights = self.aggregation(out).d_weights
            d_loss = out.d_losses.mean() if weights is None else (weights * out.d_losses).mean()
            self.d_optimizer.zero_grad(set_to_none=True)
            d_loss.backward()
            self.d_optimizer.step()

        out_g = self.policy(self._d_for_g, real, fakes)
        objective = self.aggregation(out_g).generators
        for optimizer in self.g_optimizers:
            optimizer.zero_grad(set_to_none=True)
        objective.backward(inputs=self.g_params)
        for optimizer in self.g_optimizers:
            optimizer.step()

        # Stays on the device: read at logging points only. D's loss is logged unweighted, so that
        # runs with different aggregations report the same quantity.
        self._sums += torch.cat([
            torch.stack([out.d_losses.detach().mean(), out.correct.mean()]),
            out_g.g_losses.detach().mean(1),
        ])
        self._count += 1
        self._chance = out.chance

    # -- the loop -------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        """Train until the step budget is spent; return the last epoch's record."""
        if self.world.writer:
            rundir.create(self.run_dir)
        self.notify("ganzoo_on_train_start", trainer=self)
        record = self.latest_record()
        self.generators.train()
        self.discriminator.train()
        self._t0 = time.perf_counter()
        every = self.config.checkpoint_every
        while True:
            while self.step < self.total_steps:
                if not self.advance():
                    continue  # rolled back to the last checkpoint
                stopping = self._stopping()
                if self.step % self.steps_per_epoch == 0:
                    record = self._end_epoch(partial=False)
                elif (every and self.step % every == 0) or stopping:
                    if not self._finite(self._read_metrics()):
                        continue  # never save a non-finite state; rolled back instead
                    self._checkpoint()
                if stopping and self.step < self.total_steps:
                    raise StopRequested(self.stop_signal, self.step)  # at the end, finish normally
            if self._count > self._done_before:  # a --steps budget that ended inside an epoch
                record = self._end_epoch(partial=True)
                if self.step < self.total_steps:
                    continue  # it found a NaN and rolled back
            break
        self.notify("ganzoo_on_train_end", trainer=self, metrics=record)
        return record

    def advance(self) -> bool:
        """One generator step and its bookkeeping (what ``make bench`` times); False when the
        metrics read at a logging point were not finite and the run rolled back."""
        self.train_step()
        self.step += 1
        if self.step % self.config.log_every == 0:
            self.latest = self._read_metrics()
            if not self._finite(self.latest):
                return False
        self.notify("ganzoo_on_step_end", trainer=self, step=self.step)
        return True

    def _stopping(self) -> bool:
        """Whether a stop was asked for (a signal). Under torchrun the ranks agree on it at logging
        points only, so that every rank stops after the same step without a sync per step."""
        if not self.world.active:
            return self.stop_signal is not None
        if self.step % self.config.log_every:
            return False
        agreed = distributed.any_rank(self.stop_signal or 0, self.world, self.device)
        if agreed:
            self.stop_signal = agreed
        return bool(agreed)

    def _finite(self, metrics: dict[str, Any]) -> bool:
        """Check metrics and weights for NaN/Inf (at logging points only: it syncs).

        Returns True when all is finite. Otherwise, with on_nan = "rollback", reloads the last
        checkpoint with half the learning rate and returns False; else raises NonFiniteError.
        """
        bad = [f"{k}={v}" for k, v in metrics.items() if isinstance(v, float) and not math.isfinite(v)]
        bad += [f"g_loss[{i}]={v}" for i, v in enumerate(metrics.get("g_loss", [])) if not math.isfinite(v)]
        if not bad:
            modules = (*self.generators, self.discriminator)
            tensors = [t for m in modules for t in (*m.parameters(), *m.buffers()) if t.is_floating_point()]
            if not bool(torch.stack([t.detach().sum() for t in tensors]).isfinite().all()):
                bad = ["a generator or discriminator weight or buffer is NaN or infinite"]
        if distributed.any_rank(int(bool(bad)), self.world, self.device) and not bad:
            bad = ["another rank's batch-norm statistics"]  # every rank must take the same branch
        if not bad:
            return True
        where = f"non-finite values at step {self.step}: {', '.join(bad)}"
        if self.config.on_nan == "rollback" and self.rollbacks < 3:
            if not (self.run_dir / rundir.CHECKPOINT).exists():
                raise NonFiniteError(f"{where}; no checkpoint to roll back to yet")
            self.rollback()
            return False
        raise NonFiniteError(f"{where}; the last good checkpoint is kept in {self.run_dir}")

    def rollback(self) -> None:
        """Reload the last checkpoint and halve every learning rate (the current one, so that
        repeated rollbacks to the same checkpoint keep halving)."""
        rollbacks = self.rollbacks + 1
        optimizers = (*self.g_optimizers, self.d_optimizer)
        lrs = [[group["lr"] for group in o.param_groups] for o in optimizers]
        self._restore()
        self.rollbacks = rollbacks
        for optimizer, old in zip(optimizers, lrs):
            for group, lr in zip(optimizer.param_groups, old):
                group["lr"] = lr * 0.5
        self.latest = {}

    def notify(self, hook_name: str, **kwargs: Any) -> None:
        """Call an observer hook on every plugin, in pluggy's order; a plugin that raises is named.
        Under torchrun, ranks other than 0 skip the hooks that observe the run (OBSERVER_HOOKS)."""
        if hook_name in OBSERVER_HOOKS and not self.world.writer:
            return
        for impl in reversed(getattr(self.host.hook, hook_name).get_hookimpls()):
            try:
                impl.function(**{name: kwargs[name] for name in impl.argnames})
            except Exception as exc:
                plugin = self.host.pm.get_name(impl.plugin)
                step = getattr(self, "step", 0)  # ganzoo_on_models_built runs before the counters exist
                raise PluginError(f"plugin {plugin!r} raised in {hook_name} at step {step}: {type(exc).__name__}: {exc}") from exc

    def _reset_metrics(self) -> None:
        self._sums = torch.zeros(2 + self.config.n_gens, device=self.device)
        self._count = 0
        self._chance = 0.0
        self._t0 = time.perf_counter()
        self._done_before = 0  # steps of this epoch done before a resume

    def _read_metrics(self) -> dict[str, Any]:
        """The means since the epoch began, over all ranks; this reads them to the host (a sync)."""
        values = (distributed.mean(self._sums, self.world) / max(self._count, 1)).tolist()
        d_loss, accuracy, g_losses = values[0], values[1], values[2:]
        g_mean = sum(g_losses) / len(g_losses)
        return {
            "d_loss": d_loss,
            "g_loss": g_losses,
            "g_loss_mean": g_mean,
            "loss_gap": abs(d_loss - g_mean),
            "d_accuracy": accuracy,
            "chance": self._chance,
        }

    def latest_record(self) -> dict[str, Any]:
        records = rundir.read_metrics(self.run_dir)
        return records[-1] if records else {}

    def _end_epoch(self, *, partial: bool) -> dict[str, Any]:
        seconds = time.perf_counter() - self._t0
        steps_here = self._count - self._done_before
        if not partial:
            self.epoch += 1
        metrics = self._read_metrics()
        if not self._finite(metrics):
            return self.latest_record()
        record = {
            "epoch": self.epoch if not partial else self.epoch + 1,
            "step": self.step,
            "partial": partial,
            **metrics,
            "images_per_s": steps_here * self.config.n_dis * self.config.batch_size / max(seconds, 1e-9),
            "seconds": seconds,
        }
        writer = self.world.writer
        if writer and self.evaluator is not None and not partial and self.epoch % self.config.eval_every == 0:
            record.update(self.evaluate())
        self.latest = record
        if writer:
            rundir.append_metrics(self.run_dir, record)
            self.write_samples(rundir.sample_path(self.run_dir, record["epoch"]))
        if not partial:
            self._reset_metrics()
        self._checkpoint()
        if not partial:
            self.notify("ganzoo_on_epoch_end", trainer=self, epoch=self.epoch, metrics=record)
        return record

    def evaluate(self) -> dict[str, Any]:
        """The evaluator's metrics of ``eval_n`` samples (same z every time), flattened for metrics.jsonl."""
        started = time.perf_counter()
        result = self.evaluator(self.generators, n=self.config.eval_n, seed=self.config.seed, z_dim=self.config.z_dim)
        flat = {k: v for k, v in result.items() if isinstance(v, (int, float))}
        if "class_histogram" in result:
            flat["class_histogram"] = result["class_histogram"]
        for scores in result.get("generators", []):
            for key in ("fid", "classes", "modes", "class_histogram"):
                if key in scores:
                    flat.setdefault(f"{key}_per_generator", []).append(scores[key])
        protocol = result["protocol"]
        flat["eval_protocol"] = {k: protocol[k] for k in ("extractor", "extractor_fingerprint", "split", "n_real", "n_fake", "seed")}
        flat["eval_seconds"] = time.perf_counter() - started
        return flat

    # -- samples --------------------------------------------------------------------------------

    @torch.no_grad()
    def write_samples(self, path: Path) -> None:
        from ganzoo.files import write_atomic

        blocks = sample_blocks(self.generators, self.sample_z)
        self.generators.train()
        write_atomic(path, png_bytes(grid(blocks)))

    # -- checkpoints ----------------------------------------------------------------------------

    def manifest(self) -> dict[str, Any]:
        return run_state.manifest(self)

    def tensors(self) -> dict[str, Tensor]:
        return run_state.tensors(self)

    def save(self) -> Path:
        """Write checkpoint.safetensors (and, with keep_last > 1, the keep_last newest under checkpoints/)."""
        path = self.run_dir / rundir.CHECKPOINT
        tensors = self.tensors()
        extra: dict[str, Tensor] = {}
        self.notify("ganzoo_on_checkpoint_save", trainer=self, tensors=extra)
        taken = sorted(set(extra) & set(tensors))
        if taken:
            raise PluginError(f"a plugin's checkpoint tensors use names the trainer's state uses: {', '.join(taken[:3])}")
        data = encode_checkpoint({**tensors, **extra}, self.manifest())
        write_atomic(path, data)
        if self.config.keep_last > 1:
            rundir.keep_copy(self.run_dir, self.step, data, self.config.keep_last)
        return path

    def _checkpoint(self) -> None:
        """Rank 0 saves; under torchrun every rank first checks that the replicas agree, and waits
        until the file is written (a rollback on any rank may read it next)."""
        modules = (*self.generators, self.discriminator)
        distributed.check_replicas([p for m in modules for p in m.parameters()], self.world)
        if self.world.writer:
            path = self.save()
            self.notify("ganzoo_on_checkpoint_saved", trainer=self, path=path)
        distributed.barrier(self.world)

    def _restore(self) -> None:
        tensors, manifest = read_checkpoint(self.run_dir / rundir.CHECKPOINT)
        if manifest.get("strategy") != self.config.strategy:
            raise CheckpointError(f"{self.run_dir} is a {manifest.get('strategy')} run, not {self.config.strategy}")
        with manifest_fields(str(self.run_dir)):
            run_state.load(self, tensors, manifest)
        self.notify("ganzoo_on_checkpoint_load", trainer=self, tensors=tensors)
        # Records written after this checkpoint (a crash between the two) would be counted twice.
        if self.world.writer:
            rundir.trim_metrics(self.run_dir, self.step)


@torch.no_grad()
def sample_blocks(generators: torch.nn.ModuleList, z: Tensor) -> list[Tensor]:
    """Images from each generator for z of shape (n, N, z_dim) (generator i gets z[:, i]); eval mode."""
    generators.eval()
    return [g(z[:, i]) for i, g in enumerate(generators)]


def check_resumable(host: Host, manifest: dict[str, Any], tensors: dict[str, Tensor], config: TrainConfig) -> None:
    """Refuse a checkpoint whose plugins are missing or whose tensors do not fit its own manifest,
    before the trainer builds anything from it."""
    require_parts(host, manifest, TRAINING_KINDS)
    with manifest_fields():
        arch = host.registry.get("architecture", manifest["architecture"])
        channels = int(manifest["image_shape"][0])
    packing, outputs = discriminator_shape(host.registry.get("input policy", config.policy).build(config))
    check_fits(arch, tensors, n_gens=config.n_gens, z_dim=config.z_dim, channels=channels, spectral=config.spectral_norm,
               d_channels=channels * packing, outputs=outputs)


def config_from_checkpoint(manifest: dict[str, Any], **overrides: Any) -> TrainConfig:
    with manifest_fields():
        settings = {k: v for k, v in manifest["config"].items() if k != "strategy"}
        settings.setdefault("amp", "off")  # runs from before --amp trained in float32, and go on so
        strategy = manifest["strategy"]
    return make_config(strategy, settings, overrides)
