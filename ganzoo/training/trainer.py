"""The core training loop. It knows nothing of PSG or SNGAN: it calls the chosen input policy and
aggregation, and the hooks of the run.

One generator step, top to bottom (``Trainer.train_step``):
    for each of n_dis discriminator steps:
        draw a real batch (and its labels y, --conditional) and z; run the N generators (G(z, y))
        out = policy(D, real, fakes, "discriminator")    # D runs once on the (N+1) x B batch; labels=y
        D minimises mean(d_weights * out.d_losses)       # d_weights from the aggregation, or ones
        policy.after_discriminator_step(D)               # when the policy has it (weight clipping)
    out = policy(D, real, fakes, "generator")            # the updated D on the last batch, gradients into G
    every G minimises aggregation(out).g_loss
D is one network, or a dict of them when the policy asks for several (``DiscriminatorSpec``).
In a class-conditional run every generator is asked for the class of its tuple's real image.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ganzoo.core.config import TrainConfig
from ganzoo.core.errors import GanzooError, StopRequested
from ganzoo.core.files import write_atomic
from ganzoo.core.host import Host
from ganzoo.runs import rundir
from ganzoo.runs.images import grid, png_bytes, sample_blocks
from ganzoo.runs.models import build_generators, resolve_device
from ganzoo.training import checkpointing, distributed, nan_guard
from ganzoo.training.batches import Batches
from ganzoo.training.build import (
    architecture_for,
    build_calls,
    build_discriminators,
    build_optimizers,
    check_image_size,
    check_run,
    grid_columns,
    one_or_dict,
    policy_call,
    run_labels,
    sample_labels,
    training_images,
)
from ganzoo.training.clock import crossed
from ganzoo.training.distributed import World
from ganzoo.training.meter import Meter
from ganzoo.training.observers import Dispatch
from ganzoo.training.optimizers import lr_factor, set_learning_rates
from ganzoo.training.run_state import RunState
from ganzoo.training.shown import ShownGenerators

UNBOUNDED = 2**62  # the step budget of a run limited by --minutes only
Evaluate = Callable[[torch.nn.ModuleList, TrainConfig], dict[str, Any]]  # --eval-every: generators -> flat scores
MakeEvaluator = Callable[[TrainConfig, torch.device], Evaluate]  # ganzoo.evaluation.in_training.training_evaluator(host)


class Trainer:
    """Builds a run from a TrainConfig and trains it. ``self.state`` is everything a checkpoint holds
    (``ganzoo.training.run_state.RunState``); ``load_checkpoint`` puts a saved state in it.

    ``observers`` are objects with hook methods for this run only (the progress bar);
    ``make_evaluator`` builds, before the data is loaded, what scores the generators for
    ``--eval-every`` (``ganzoo.evaluation.in_training``): needed on the writing rank of a run that
    evaluates. ``ganzoo.training.session`` puts a run together around the trainer.
    """

    def __init__(self, config: TrainConfig, host: Host, run_dir: Path, *, log: Callable[[str], None] | None = None,
                 world: World | None = None, observers: Iterable[object] = (), make_evaluator: MakeEvaluator | None = None):
        self.config, self.host, self.run_dir = config, host, Path(run_dir)
        self.world = world or World()
        self.log = log or (lambda _: None)
        registry = host.registry
        self.policy, self.d_specs = check_run(registry, config)
        self._score = policy_call(self.policy, config.conditional)
        self._after_d_step = getattr(self.policy, "after_discriminator_step", None)
        self.aggregation = registry.get("aggregation", config.aggregation).build(config)
        self.device = distributed.rank_device(resolve_device(config.device), self.world)
        self.evaluate_generators: Evaluate | None = None
        if config.evaluates and self.world.writer:  # built first: a missing extractor fails before the data is loaded
            if make_evaluator is None:
                raise GanzooError("this run evaluates while it trains (--eval-every) but was given no evaluator "
                                  "(ganzoo.evaluation.in_training.training_evaluator makes one)")
            self.evaluate_generators = make_evaluator(config, self.device)
        if config.deterministic:
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.benchmark = False

        data, images = training_images(registry, config, self.world, self.log)
        dataset = registry.get("dataset", config.dataset.partition(":")[0])
        self.arch_name = config.arch or dataset.default_arch or architecture_for(registry, images.shape[-1])
        arch = registry.get("architecture", self.arch_name)
        check_image_size(arch, images, config.dataset)
        self.data_source, self.data_digest = data.source, data.digest
        self.image_shape = tuple(images.shape[1:])
        # A class-conditional run: the classes of the data (K), their names, and each image's label.
        self.classes, self.class_names, labels = run_labels(config, data, arch, self.world)
        self.batches = Batches(images, config.batch_size, config.seed, self.device, release=data.release, labels=labels)
        self.steps_per_epoch = max(1, self.batches.per_epoch // config.n_dis)
        self.total_steps = config.steps or config.epochs * self.steps_per_epoch or UNBOUNDED  # epochs 0: --minutes only
        self.schedule_steps = self.total_steps  # the steps the schedule decays over (a resume keeps the first run's)

        channels = self.image_shape[0]
        generators = build_generators(arch, config.n_gens, config.z_dim, channels, config.seed, classes=self.classes).to(self.device)
        discriminators = build_discriminators(registry, config, self.d_specs, arch, channels, self.classes).to(self.device)
        z_rng = torch.Generator(self.device).manual_seed(config.seed + 1_000_003 * self.world.rank)
        # Fixed z for the sample grids; with shared z every generator gets the same column of z.
        z_columns = 1 if config.shared_z else config.n_gens
        z = torch.randn(config.sample_count, z_columns, config.z_dim, generator=z_rng, device=self.device)
        self.state = RunState(generators, discriminators, [], {}, z_rng, z.expand(-1, config.n_gens, -1).contiguous(),
                              Meter(config.n_gens, self.device))
        self.sample_labels = sample_labels(config.sample_count, self.classes, self.device)  # a row per class in the grids
        self.dispatch = Dispatch(host, self.world.writer)
        self.notify("ganzoo_on_models_built")  # plugins may tie layers before the optimizers exist
        g_opts, d_opts = build_optimizers(config, generators, discriminators, self.d_specs)
        self.state.g_optimizers, self.state.d_optimizers = g_opts, d_opts
        self._base_lrs = [(optimizer, optimizer.defaults["lr"]) for optimizer in (*g_opts, *d_opts.values())]
        self.g_params = [p for optimizer in g_opts for group in optimizer.param_groups for p in group["params"]]
        torch.manual_seed(config.seed)
        self.calls = build_calls(config, generators, discriminators, self.device, self.world)
        self._d_opts = list(d_opts.values())
        self._scheduled = config.lr_schedule != "constant"
        self.set_learning_rates()
        self.stop_signal: int | None = None  # set (e.g. by a signal handler) to stop after this step
        self.latest: dict[str, Any] = {}
        self.exact_resume = True
        self.time_up = False  # the --minutes budget is spent
        self.shown = ShownGenerators()  # what sample grids and evaluations use (the ema plugin's averages)
        self.consistent = True  # False while an epoch's end is half done: no checkpoint may be saved then
        if self.world.writer:  # observers observe the writing rank's run (under torchrun, rank 0's)
            self.dispatch.make_observers(self)
            for observer in observers:
                self.dispatch.add("caller", observer)
        self._evaluated_at = (0, 0.0)  # (step, training seconds) of the last evaluation

    # The state's parts that plugins and tests read by their plain names.
    generators = property(lambda self: self.state.generators)
    g_optimizers = property(lambda self: self.state.g_optimizers)
    step = property(lambda self: self.state.step)
    epoch = property(lambda self: self.state.epoch)
    rollbacks = property(lambda self: self.state.rollbacks)
    sample_z = property(lambda self: self.state.sample_z)

    @property
    def discriminator(self) -> Any:
        """The run's discriminator; when the policy asks for several, a ModuleDict of them by name."""
        return one_or_dict(self.state.discriminators)

    @property
    def d_optimizer(self) -> torch.optim.Optimizer:
        """The discriminator's optimizer (a run with several has ``state.d_optimizers``, by name)."""
        if len(self.state.d_optimizers) != 1:
            raise GanzooError(f"this run has {len(self.state.d_optimizers)} discriminators; use trainer.state.d_optimizers")
        return next(iter(self.state.d_optimizers.values()))

    # -- the hot path ---------------------------------------------------------------------------

    def _fakes(self, batch: int, labels: Tensor | None = None) -> list[Tensor]:
        n, z_dim = self.config.n_gens, self.config.z_dim
        shape = (batch, z_dim) if self.config.shared_z else (n, batch, z_dim)
        z = torch.randn(shape, generator=self.state.z_rng, device=self.device)
        return self.calls.generate(z) if labels is None else self.calls.generate(z, labels)

    def train_step(self) -> None:
        config, state = self.config, self.state
        for k in range(config.n_dis):
            real, labels = self.batches.draw(state.step * config.n_dis + k)
            last = k == config.n_dis - 1
            with torch.set_grad_enabled(last):
                fakes = self._fakes(real.shape[0], labels)
            out_d = self._score(self.calls.d_phase, real, [f.detach() for f in fakes], "discriminator", labels)
            weights = self.aggregation(out_d).d_weights
            d_loss = out_d.d_losses.mean() if weights is None else (weights * out_d.d_losses).mean()
            for optimizer in self._d_opts:
                optimizer.zero_grad(set_to_none=True)
            d_loss.backward()
            for optimizer in self._d_opts:
                optimizer.step()
            if self._after_d_step is not None:
                with torch.no_grad():
                    self._after_d_step(self.calls.networks)

        out_g = self._score(self.calls.g_phase, real, fakes, "generator", labels)
        g_loss = self.aggregation(out_g).g_loss
        for optimizer in state.g_optimizers:
            optimizer.zero_grad(set_to_none=True)
        g_loss.backward(inputs=self.g_params)
        for optimizer in state.g_optimizers:
            optimizer.step()
        # Stays on the device: read at logging points only. D's loss is logged unweighted, so that
        # runs with different aggregations report the same quantity.
        state.meter.add(out_d, out_g)

    def set_learning_rates(self) -> None:
        """Every optimizer's learning rate for the next step: its base, halved per rollback, times the schedule's factor."""
        factor = 0.5 ** self.state.rollbacks * lr_factor(self.config.lr_schedule, self.state.step, self.schedule_steps)
        set_learning_rates(self._base_lrs, factor)

    # -- the loop -------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        """Train until the step budget is spent; return the last epoch's record. The run folder
        must exist (``ganzoo.training.session`` makes and locks it)."""
        if self.world.writer and not (self.run_dir / rundir.SAMPLES).is_dir():
            raise GanzooError(f"{self.run_dir} is not a run folder (no {rundir.SAMPLES}/); ganzoo.runs.rundir.create makes one, "
                              f"and ganzoo.training.session.Session makes and locks it")
        self.notify("ganzoo_on_train_start")
        record = self.latest_record()
        self.generators.train()
        self.state.discriminators.train()
        self.state.meter.started = time.perf_counter()
        self.state.clock.start()
        try:
            record = self._train(record)
        finally:
            self.state.clock.stop()
        self.notify("ganzoo_on_train_end", metrics=record)
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
                    if not self.finite(state.meter.read(self.world), whole=True):
                        continue  # never save a non-finite state; rolled back instead
                    self.save_checkpoint()
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
        if self._scheduled:
            self.set_learning_rates()
        self.train_step()
        self.state.step += 1
        if self.state.step % self.config.log_every == 0:
            self.latest = self.state.meter.read(self.world)
            if not self.finite(self.latest):
                return False
        self.notify("ganzoo_on_step_end", step=self.state.step)
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

    def finite(self, metrics: dict[str, Any], whole: bool = False) -> bool:
        """Check metrics and weights for NaN/Inf (at logging points only: it syncs), and with ``whole``
        (before a checkpoint) every tensor the checkpoint would hold. True when all is finite; else,
        with on_nan = "rollback", roll back and return False, or raise NonFiniteError."""
        return nan_guard.finite_or_rolled_back(self, metrics, whole)

    def observers(self, plugin: str) -> list[object]:
        """This run's observers that a plugin made (``ganzoo_run_observers``), e.g. the ema plugin's averages."""
        return self.dispatch.of(plugin)

    def notify(self, hook_name: str, **kwargs: Any) -> None:
        """Call an observer hook, in ganzoo's dispatch order (``ganzoo.training.observers``)."""
        self.dispatch.notify(hook_name, self, **kwargs)

    def latest_record(self) -> dict[str, Any]:
        records = rundir.read_metrics(self.run_dir)
        return records[-1] if records else {}

    def _end_epoch(self, *, partial: bool, evaluate: bool = False) -> dict[str, Any]:
        self.consistent = False  # the counters move before the record and the checkpoint: a failure here saves nothing
        record = self._write_epoch_end(partial=partial, evaluate=evaluate)
        self.consistent = True
        if record is None:  # rolled back: the restored state is whole, and no epoch ended
            return self.latest_record()
        if not partial:
            self.notify("ganzoo_on_epoch_end", epoch=self.state.epoch, metrics=record)
        return record

    def _write_epoch_end(self, *, partial: bool, evaluate: bool) -> dict[str, Any] | None:
        state, meter = self.state, self.state.meter
        seconds = meter.seconds()
        steps_here = meter.count - meter.done_before
        if not partial:
            state.epoch += 1
        metrics = meter.read(self.world)
        if not self.finite(metrics, whole=True):
            return None
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
                if writer:
                    record.update(self.evaluate())
            self.latest = record
            if writer:
                rundir.append_metrics(self.run_dir, record)
                self.write_samples(self.samples_path(record["epoch"]))
            if not partial:
                meter.reset()
            self.save_checkpoint()
        return record

    def evaluate(self) -> dict[str, Any]:
        """The evaluator's metrics of ``eval_n`` samples (same z every time), flattened for metrics.jsonl."""
        name, generators = self.shown(self)
        return {**self.evaluate_generators(generators, self.config, classes=self.classes), "eval_weights": name}

    def samples_path(self, epoch: int) -> Path:
        """Where the run's sample grid of an epoch is (samples/epoch-NNNN.png)."""
        return rundir.sample_path(self.run_dir, epoch)

    @torch.no_grad()
    def write_samples(self, path: Path) -> None:
        _, generators = self.shown(self)
        blocks = sample_blocks(generators, self.sample_z, self.sample_labels)
        self.generators.train()
        columns = 8 if self.sample_labels is None else grid_columns(self.config.sample_count, self.classes)
        write_atomic(path, png_bytes(grid(blocks, columns=columns)))

    # -- checkpoints (ganzoo.training.checkpointing) --------------------------------------------

    def manifest(self) -> dict[str, Any]:
        """The checkpoint's JSON manifest: versions, settings, parts, and the state's counters."""
        return checkpointing.manifest(self)

    def tensors(self) -> dict[str, Tensor]:
        return self.state.tensors()

    def save_checkpoint(self) -> None:
        """Checkpoint the run (rank 0 writes; under torchrun the replicas are checked and wait for the file).
        Not training time."""
        with self.state.clock.paused():
            checkpointing.save(self)

    def load_checkpoint(self, checkpoint: Any) -> None:
        """Restore the state from an open checkpoint (``ganzoo.runs.checkpoint.open_checkpoint``),
        checked against this run before its data is read."""
        checkpointing.restore(self, checkpoint)
        self._evaluated_at = (self.state.step, self.state.clock.seconds)
