"""The core training loop. It knows nothing of PSG or SNGAN: it calls the chosen input policy and
aggregation, and the observer hooks.

One generator step, top to bottom (``Trainer.train_step``):
    for each of n_dis discriminator steps:
        draw a real batch and z; run the N generators
        out = policy(D, real, fakes, "discriminator")    # D runs once on the (N+1) x B batch
        D minimises mean(d_weights * out.d_losses)       # d_weights from the aggregation, or ones
    out = policy(D, real, fakes, "generator")            # the updated D on the last batch, gradients into G
    every G minimises aggregation(out).g_loss
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ganzoo.core.compose import check_composition
from ganzoo.core.config import TrainConfig
from ganzoo.core.errors import DataError, PluginError, StopRequested
from ganzoo.core.files import write_atomic
from ganzoo.core.host import Host
from ganzoo.core.parts import with_phase
from ganzoo.training import distributed, nan_guard, rundir
from ganzoo.training.checkpoint import encode_checkpoint, manifest_fields
from ganzoo.training.clock import crossed
from ganzoo.training.data import Batches, default_root, load_data
from ganzoo.training.distributed import World
from ganzoo.training.generator_bank import GeneratorBank, use_vmap
from ganzoo.training.images import grid, png_bytes, sample_blocks
from ganzoo.training.meter import Meter
from ganzoo.training.models import build_discriminator, build_generators, distinct_parameters
from ganzoo.training.precision import Autocast, allow_tf32, resolve_amp
from ganzoo.training.resume import discriminator_shape, parts_plugins, read_for_restore, resolve_device
from ganzoo.training.run_state import RunState
from ganzoo.training.shown import ShownGenerators

UNBOUNDED = 2**62  # the step budget of a run limited by --minutes only
# Hooks that observe a run; under torchrun only rank 0 (the writer) calls them.
OBSERVER_HOOKS = {"ganzoo_on_train_start", "ganzoo_on_step_end", "ganzoo_on_epoch_end", "ganzoo_on_checkpoint_saved",
                  "ganzoo_on_train_end", "ganzoo_add_checkpoint_tensors", "ganzoo_on_checkpoint_save"}


class Trainer:
    """Builds a run from a TrainConfig (or resumes one) and trains it. ``self.state`` is everything
    a checkpoint holds (``ganzoo.training.run_state.RunState``)."""

    def __init__(self, config: TrainConfig, host: Host, run_dir: Path, *, resume: bool = False,
                 log: Callable[[str], None] | None = None, world: World | None = None):
        self.config, self.host, self.run_dir = config, host, Path(run_dir)
        self.world = world or World()
        self.log = log or (lambda _: None)
        registry = host.registry
        check_composition(registry, config)
        dataset = registry.get("dataset", config.dataset.partition(":")[0])
        self.arch_name = config.arch or dataset.default_arch
        arch = registry.get("architecture", self.arch_name)
        self.policy = registry.get("input policy", config.policy).build(config)
        self._score = with_phase(self.policy)
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
        self.total_steps = config.steps or config.epochs * self.steps_per_epoch or UNBOUNDED  # epochs 0: --minutes only

        channels = self.image_shape[0]
        self.d_packing, self.d_outputs = discriminator_shape(self.policy)
        generators = build_generators(arch, config.n_gens, config.z_dim, channels, config.seed).to(self.device)
        discriminator = build_discriminator(
            arch, channels * self.d_packing, config.spectral_norm, config.seed, self.d_outputs
        ).to(self.device)
        z_rng = torch.Generator(self.device).manual_seed(config.seed + 1_000_003 * self.world.rank)
        # Fixed z for the sample grids; with shared z every generator gets the same column of z.
        z_columns = 1 if config.shared_z else config.n_gens
        z = torch.randn(config.sample_count, z_columns, config.z_dim, generator=z_rng, device=self.device)
        self.state = RunState(generators, discriminator, [], None, z_rng, z.expand(-1, config.n_gens, -1).contiguous(),
                              Meter(config.n_gens, self.device))
        self.notify("ganzoo_on_models_built", trainer=self)  # plugins may tie layers before the optimizers exist
        betas = (config.beta1, config.beta2)
        own_params = distinct_parameters(generators)
        self.state.g_optimizers = [torch.optim.Adam(params, lr=config.lr, betas=betas) for params in own_params]
        self.state.d_optimizer = torch.optim.Adam(discriminator.parameters(), lr=config.lr_d or config.lr, betas=betas)
        self.g_params = [p for params in own_params for p in params]
        torch.manual_seed(config.seed)
        self._build_calls()
        self.stop_signal: int | None = None  # set (e.g. by a signal handler) to stop after this step
        self.latest: dict[str, Any] = {}
        self.exact_resume = True
        self.time_up = False  # the --minutes budget is spent
        self.shown = ShownGenerators()  # what sample grids and evaluations use (the ema plugin's averages)
        if resume:
            self._restore()
        self.evaluator = None
        self._evaluated_at = (self.state.step, self.state.clock.seconds)  # (step, training seconds) of the last evaluation
        evaluates = config.eval_every or config.eval_every_steps or config.eval_every_seconds
        if evaluates and self.world.writer:  # built now, so a missing extractor fails before any training
            from ganzoo.evaluation.evaluator import build_evaluator

            self.evaluator = build_evaluator(
                host, config.dataset, features=config.eval_features, data_root=Path(config.data_root) if config.data_root else None,
                device=self.device, log=self.log,
            )

    # The state's parts that plugins and tests read by their plain names.
    generators = property(lambda self: self.state.generators)
    discriminator = property(lambda self: self.state.discriminator)
    g_optimizers = property(lambda self: self.state.g_optimizers)
    d_optimizer = property(lambda self: self.state.d_optimizer)
    step = property(lambda self: self.state.step)
    epoch = property(lambda self: self.state.epoch)
    rollbacks = property(lambda self: self.state.rollbacks)
    sample_z = property(lambda self: self.state.sample_z)

    # -- the hot path ---------------------------------------------------------------------------

    def _build_calls(self) -> None:
        """How the hot path calls the networks: the N generators as one GeneratorBank (looped or
        vmapped), both under bf16 autocast when --amp says so (and TF32 on CUDA), wrapped in DDP under
        torchrun, and compiled with --compile. The modules themselves (state.generators,
        state.discriminator) are what optimizers and checkpoints see."""
        config, device, state = self.config, self.device, self.state
        self.amp = resolve_amp(config.amp, device)
        self.tf32 = allow_tf32(device)
        self.vectorized = use_vmap(config.vmap, state.generators, device)
        if config.channels_last:
            state.generators.to(memory_format=torch.channels_last)
            state.discriminator.to(memory_format=torch.channels_last)
        bank: torch.nn.Module = GeneratorBank(state.generators, vectorized=self.vectorized, device=device, amp=self.amp)
        d_train: torch.nn.Module = state.discriminator
        if self.world.active:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [device.index] if device.type == "cuda" else None
            bank, d_train = DDP(bank, device_ids=ids), DDP(d_train, device_ids=ids)
        # In the generator phase D needs no gradient of its own, so it bypasses DDP's gradient averaging.
        calls = [bank, Autocast(d_train, device, self.amp), Autocast(state.discriminator, device, self.amp)]
        if config.compile:
            calls = [torch.compile(call) for call in calls]
        self._generate, self._d_in_d_phase, self._d_in_g_phase = calls

    def _fakes(self, batch: int) -> list[Tensor]:
        n, z_dim = self.config.n_gens, self.config.z_dim
        shape = (batch, z_dim) if self.config.shared_z else (n, batch, z_dim)
        z = torch.randn(shape, generator=self.state.z_rng, device=self.device)
        return self._generate(z)

    def train_step(self) -> None:
        config, state = self.config, self.state
        for k in range(config.n_dis):
            real = self.batches.batch(state.step * config.n_dis + k)
            last = k == config.n_dis - 1
            with torch.set_grad_enabled(last):
                fakes = self._fakes(real.shape[0])
            out_d = self._score(self._d_in_d_phase, real, [f.detach() for f in fakes], "discriminator")
            weights = self.aggregation(out_d).d_weights
            d_loss = out_d.d_losses.mean() if weights is None else (weights * out_d.d_losses).mean()
            state.d_optimizer.zero_grad(set_to_none=True)
            d_loss.backward()
            state.d_optimizer.step()

        out_g = self._score(self._d_in_g_phase, real, fakes, "generator")
        g_loss = self.aggregation(out_g).g_loss
        for optimizer in state.g_optimizers:
            optimizer.zero_grad(set_to_none=True)
        g_loss.backward(inputs=self.g_params)
        for optimizer in state.g_optimizers:
            optimizer.step()
        # Stays on the device: read at logging points only. D's loss is logged unweighted, so that
        # runs with different aggregations report the same quantity.
        state.meter.add(out_d, out_g)

    # -- the loop -------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        """Train until the step budget is spent; return the last epoch's record."""
        if self.world.writer:
            rundir.create(self.run_dir)
        self.notify("ganzoo_on_train_start", trainer=self)
        record = self.latest_record()
        self.generators.train()
        self.discriminator.train()
        self.state.meter.started = time.perf_counter()
        self.state.clock.start()
        try:
            record = self._train(record)
        finally:
            self.state.clock.stop()
        self.notify("ganzoo_on_train_end", trainer=self, metrics=record)
        return record

    def _train(self, record: dict[str, Any]) -> dict[str, Any]:
        every, state = self.config.checkpoint_every, self.state
        while True:
            while not self.done():
                if not self.advance():
                    continue  # rolled back to the last checkpoint
                stopping = self._stopping()
                evaluate = self._eval_due()
                if state.step % self.steps_per_epoch == 0:
                    record = self._end_epoch(partial=False, evaluate=evaluate)
                elif evaluate:  # a record of the epoch so far, with the evaluation, and a checkpoint
                    record = self._end_epoch(partial=True, evaluate=True)
                elif (every and state.step % every == 0) or stopping:
                    if not self._finite(state.meter.read(self.world)):
                        continue  # never save a non-finite state; rolled back instead
                    self._checkpoint()
                if stopping and not self.done():
                    raise StopRequested(self.stop_signal, state.step)  # at the end, finish normally
            if state.meter.count > state.meter.done_before and self._evaluated_at[0] != state.step:
                # a --steps or --minutes budget that ended inside an epoch (scored with --eval-every Ksteps or Ks)
                record = self._end_epoch(partial=True, evaluate=bool(self.config.eval_every_steps or self.config.eval_every_seconds))
                if not self.done():
                    continue  # it found a NaN and rolled back
            break
        return record

    def advance(self) -> bool:
        """One generator step and its bookkeeping (what ``make bench`` times); False when the
        metrics read at a logging point were not finite and the run rolled back."""
        self.train_step()
        self.state.step += 1
        if self.state.step % self.config.log_every == 0:
            self.latest = self.state.meter.read(self.world)
            if not self._finite(self.latest):
                return False
        self.notify("ganzoo_on_step_end", trainer=self, step=self.state.step)
        return True

    def done(self) -> bool:
        """Whether the step budget (--steps, --epochs) or the time budget (--minutes) is spent."""
        return self.state.step >= self.total_steps or self.time_up

    def _eval_due(self) -> bool:
        """Whether to evaluate after this step (--eval-every Ksteps or Ks); sets ``time_up``. Time is read at
        logging points only, where under torchrun the ranks agree on both (they must take the same path)."""
        config, state = self.config, self.state
        due = bool(config.eval_every_steps) and state.step % config.eval_every_steps == 0
        if state.step % config.log_every or not (config.minutes or config.eval_every_seconds):
            return due
        seconds = state.clock.read()
        due = due or crossed(self._evaluated_at[1], seconds, config.eval_every_seconds)
        spent = bool(config.minutes) and seconds >= config.minutes * 60
        self.time_up = bool(distributed.any_rank(int(spent), self.world, self.device))
        return bool(distributed.any_rank(int(due), self.world, self.device))

    def _stopping(self) -> bool:
        """Whether a stop was asked for (a signal). Under torchrun the ranks agree on it at logging
        points only, so that every rank stops after the same step without a sync per step."""
        if not self.world.active:
            return self.stop_signal is not None
        if self.state.step % self.config.log_every:
            return False
        agreed = distributed.any_rank(self.stop_signal or 0, self.world, self.device)
        if agreed:
            self.stop_signal = agreed
        return bool(agreed)

    def _finite(self, metrics: dict[str, Any]) -> bool:
        """Check metrics and weights for NaN/Inf (at logging points only: it syncs). True when all
        is finite; else, with on_nan = "rollback", roll back and return False, or raise NonFiniteError."""
        return nan_guard.finite_or_rolled_back(self, metrics)

    def rollback(self) -> None:
        """Reload the last checkpoint and halve every learning rate (ganzoo.training.nan_guard)."""
        nan_guard.roll_back(self)

    def notify(self, hook_name: str, **kwargs: Any) -> None:
        """Call an observer hook on every plugin, in pluggy's order; a plugin that raises, or calls
        sys.exit, is named (PluginError). Under torchrun, ranks other than 0 skip the hooks that
        observe the run (OBSERVER_HOOKS)."""
        if hook_name in OBSERVER_HOOKS and not self.world.writer:
            return
        for impl in reversed(getattr(self.host.hook, hook_name).get_hookimpls()):
            try:
                impl.function(**{name: kwargs[name] for name in impl.argnames})
            except (Exception, SystemExit) as exc:
                plugin = self.host.pm.get_name(impl.plugin)
                step = self.state.step if hasattr(self, "state") else 0
                raise PluginError(f"plugin {plugin!r} raised in {hook_name} at step {step}: {type(exc).__name__}: {exc}") from None

    def latest_record(self) -> dict[str, Any]:
        records = rundir.read_metrics(self.run_dir)
        return records[-1] if records else {}

    def _end_epoch(self, *, partial: bool, evaluate: bool = False) -> dict[str, Any]:
        state, meter = self.state, self.state.meter
        seconds = meter.seconds()
        steps_here = meter.count - meter.done_before
        if not partial:
            state.epoch += 1
        metrics = meter.read(self.world)
        if not self._finite(metrics):
            return self.latest_record()
        record = {
            "epoch": state.epoch if not partial else state.epoch + 1,
            "step": state.step,
            "partial": partial,
            **metrics,
            "images_per_s": steps_here * self.config.n_dis * self.config.batch_size / max(seconds, 1e-9),
            "seconds": seconds,
            "train_seconds": state.clock.read(),
        }
        writer = self.world.writer
        every = self.config.eval_every
        evaluate = evaluate or (not partial and bool(every) and state.epoch % every == 0)
        with state.clock.paused():
            if evaluate:
                self._evaluated_at = (state.step, record["train_seconds"])
                if writer and self.evaluator is not None:
                    record.update(self.evaluate())
            self.latest = record
            if writer:
                rundir.append_metrics(self.run_dir, record)
                self.write_samples(rundir.sample_path(self.run_dir, record["epoch"]))
            if not partial:
                meter.reset()
            self._checkpoint()
        if not partial:
            self.notify("ganzoo_on_epoch_end", trainer=self, epoch=state.epoch, metrics=record)
        return record

    def evaluate(self) -> dict[str, Any]:
        """The evaluator's metrics of ``eval_n`` samples (same z every time), flattened for metrics.jsonl."""
        from ganzoo.evaluation.evaluator import flat_scores

        name, generators = self.shown(self)
        return {**flat_scores(self.evaluator, generators, self.config), "eval_weights": name}

    @torch.no_grad()
    def write_samples(self, path: Path) -> None:
        _, generators = self.shown(self)
        blocks = sample_blocks(generators, self.sample_z)
        self.generators.train()
        write_atomic(path, png_bytes(grid(blocks)))

    # -- checkpoints ----------------------------------------------------------------------------

    def manifest(self) -> dict[str, Any]:
        """The checkpoint's JSON manifest: versions, settings, parts, and the state's counters."""
        from ganzoo import __version__

        return {
            "ganzoo_version": __version__,
            "strategy": self.config.strategy,
            "config": self.config.to_dict(),
            "architecture": self.arch_name,
            "image_shape": list(self.image_shape),
            "discriminator": {"packing": self.d_packing, "outputs": self.d_outputs},
            "data_source": self.data_source,
            "parts": parts_plugins(self.host, self.config, self.arch_name),
            **self.state.manifest(),
        }

    def tensors(self) -> dict[str, Tensor]:
        return self.state.tensors()

    def save(self) -> Path:
        """Write checkpoint.safetensors (and, with keep_last > 1, the keep_last newest under checkpoints/)."""
        path = self.run_dir / rundir.CHECKPOINT
        tensors = self.tensors()
        extra: dict[str, Tensor] = {}
        self.notify("ganzoo_add_checkpoint_tensors", trainer=self, tensors=extra)
        self.notify("ganzoo_on_checkpoint_save", trainer=self, tensors=extra)  # its 0.2 name
        taken = sorted(set(extra) & set(tensors))
        if taken:
            raise PluginError(f"a plugin's checkpoint tensors use names the trainer's state uses: {', '.join(taken[:3])}")
        data = encode_checkpoint({**tensors, **extra}, self.manifest())
        write_atomic(path, data)
        if self.config.keep_last > 1:
            rundir.keep_copy(self.run_dir, self.state.step, data, self.config.keep_last)
        return path

    def _checkpoint(self) -> None:
        """Rank 0 saves; under torchrun every rank first checks that the replicas agree, and waits
        until the file is written (a rollback on any rank may read it next). Not training time."""
        with self.state.clock.paused():
            self._write_checkpoint()

    def _write_checkpoint(self) -> None:
        modules = (*self.generators, self.discriminator)
        distributed.check_replicas([p for m in modules for p in m.parameters()], self.world)
        if self.world.writer:
            path = self.save()
            self.notify("ganzoo_on_checkpoint_saved", trainer=self, path=path)
        distributed.barrier(self.world)

    def _restore(self) -> None:
        tensors, manifest, exact = read_for_restore(self.run_dir / rundir.CHECKPOINT, self.state, self.config.strategy)
        with manifest_fields(str(self.run_dir)):
            self.state.load(tensors, manifest, exact_z=exact)
        seed, step, rank = self.config.seed, self.state.step, self.world.rank
        if not exact:  # saved on another kind of device: the z stream restarts from (seed, step), and we say so
            self.state.z_rng.manual_seed(seed * 1_000_003 + step)
            self.exact_resume = False
            self.log("the checkpoint was saved on another kind of device: the z stream restarts, so this resume is not bit-exact")
        if rank:  # the checkpoint holds rank 0's z stream; the other ranks start their own
            self.state.z_rng.manual_seed(seed * 1_000_003 + step + 7919 * rank)
        self.notify("ganzoo_on_checkpoint_load", trainer=self, tensors=tensors)
        # Records written after this checkpoint (a crash between the two) would be counted twice.
        if self.world.writer:
            rundir.trim_metrics(self.run_dir, step)
