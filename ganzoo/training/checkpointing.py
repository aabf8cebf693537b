"""Saving a training run to its checkpoint and restoring it: the manifest of the run's settings and
parts, the state's tensors and the plugins' (``ganzoo_add_checkpoint_tensors``), one atomic write;
a state that holds NaN or infinity is never written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ganzoo.core.errors import GanzooError, NonFiniteError, PluginError
from ganzoo.core.files import write_atomic
from ganzoo.core.tensorfile import TensorFile, encode_tensor_file
from ganzoo.runs import rundir
from ganzoo.runs.checkpoint import CHECKPOINT, manifest_fields
from ganzoo.runs.manifest import parts_plugins
from ganzoo.runs.state_check import first_non_finite
from ganzoo.training import distributed
from ganzoo.training.resume import check_restorable


def manifest(trainer: Any) -> dict[str, Any]:
    """The checkpoint's JSON manifest: versions, settings, parts, the discriminators, and the state's counters."""
    from ganzoo import __version__

    config, registry = trainer.config, trainer.host.registry
    specs = [{"name": s.name, "packing": s.packing, "outputs": s.outputs, "architecture": s.architecture or trainer.arch_name,
              "plugin": registry.entry("architecture", s.architecture or trainer.arch_name).plugin,
              "spectral_norm": config.spectral_norm if s.spectral_norm is None else s.spectral_norm,
              **({"labels": s.labels} if trainer.classes else {})} for s in trainer.d_specs]
    # one D: also its shape under 0.4's key, which readers of older runs know
    shape = {"discriminator": {k: specs[0][k] for k in ("packing", "outputs")}} if len(specs) == 1 else {}
    return {
        "ganzoo_version": __version__,
        "strategy": config.strategy,
        "config": config.to_dict(),
        "architecture": trainer.arch_name,
        "image_shape": list(trainer.image_shape),
        "discriminators": specs,
        **shape,
        "data_source": trainer.data_source,
        **({"data_sha256": trainer.data_digest} if trainer.data_digest else {}),
        **({"classes": trainer.classes, "class_names": list(trainer.class_names)} if trainer.classes else {}),
        "parts": parts_plugins(trainer.host, config, trainer.arch_name),
        **({"lr_schedule_steps": trainer.schedule_steps} if config.lr_schedule != "constant" else {}),
        **trainer.state.manifest(),
    }


def save(trainer: Any) -> None:
    """Rank 0 writes the checkpoint; under torchrun every rank first checks that the replicas agree,
    and waits until the file is written (a rollback on any rank may read it next). When rank 0
    cannot write it (a NaN in its state, a full disk), every rank stops with the error, none waits for it."""
    world = trainer.world
    networks = trainer.state.modules().values()
    distributed.check_replicas([p for m in networks for p in m.parameters()], world)
    refused: GanzooError | None = None
    if world.writer:
        try:
            path = write(trainer)
        except GanzooError as exc:  # a NaN, a plugin, a full disk: the other ranks must not wait for the file
            refused = exc
    if distributed.any_rank(int(refused is not None), world, trainer.device):
        raise refused or GanzooError(f"rank 0 could not save step {trainer.state.step}; its log says why")
    if world.writer:
        trainer.notify("ganzoo_on_checkpoint_saved", path=path)
    distributed.barrier(world)


def checkpoint_tensors(trainer: Any) -> dict[str, torch.Tensor]:
    """Every tensor a checkpoint holds: the run's state and what plugins add (``ganzoo_add_checkpoint_tensors``)."""
    tensors = trainer.tensors()
    extra: dict[str, torch.Tensor] = {}
    trainer.notify("ganzoo_add_checkpoint_tensors", tensors=extra)
    taken = sorted(set(extra) & set(tensors))
    if taken:
        raise PluginError(f"a plugin's checkpoint tensors use names the trainer's state uses: {', '.join(taken[:3])}")
    return {**tensors, **extra}


def write(trainer: Any) -> Path:
    """Write checkpoint.safetensors (and, with keep_last > 1, the keep_last newest under checkpoints/)."""
    every = checkpoint_tensors(trainer)
    bad = first_non_finite(every)
    if bad is not None:
        raise NonFiniteError(f"not saving step {trainer.state.step}: tensor {bad!r} holds NaN or infinite values; "
                             f"the last good checkpoint is kept in {trainer.run_dir}")
    data = encode_tensor_file(every, manifest(trainer))
    path = trainer.run_dir / CHECKPOINT
    write_atomic(path, data)
    if trainer.config.keep_last > 1:
        rundir.keep_copy(trainer.run_dir, trainer.state.step, data, trainer.config.keep_last)
    return path


def restore(trainer: Any, checkpoint: TensorFile) -> None:
    """Load a checkpoint into the trainer's state, after checking it fits (``check_restorable``)."""
    state, config = trainer.state, trainer.config
    trained_on = checkpoint.manifest.get("data_sha256")
    if trained_on and trainer.data_digest and trained_on != trainer.data_digest:
        raise GanzooError(f"{config.dataset} is not the data this run trained on (its images changed since: sha256 "
                          f"{trainer.data_digest[:12]} now, {str(trained_on)[:12]} then); resuming would not continue the same "
                          "run: restore the data or start a new run")
    saved_classes = checkpoint.manifest.get("classes", 0)
    if trainer.classes != saved_classes:
        raise GanzooError(f"this run was trained on {saved_classes} classes, but {config.dataset} has {trainer.classes} now; "
                          "resuming would not continue the same run")
    tensors, saved, exact = check_restorable(checkpoint, state)
    with manifest_fields(str(checkpoint.path)):
        state.load(tensors, saved, exact_z=exact)
        if config.lr_schedule != "constant":
            trainer.schedule_steps = int(saved.get("lr_schedule_steps", trainer.schedule_steps))
    if trainer.total_steps > trainer.schedule_steps:
        raise GanzooError(f"this run's learning rate decays to 0 at step {trainer.schedule_steps} (--lr-schedule "
                          f"{config.lr_schedule}); it cannot train to step {trainer.total_steps}")
    seed, step, rank = config.seed, state.step, trainer.world.rank
    if not exact:  # saved on another kind of device: the z stream restarts from (seed, step), and we say so
        state.z_rng.manual_seed(seed * 1_000_003 + step)
        trainer.exact_resume = False
        trainer.log("the checkpoint was saved on another kind of device: the z stream restarts, so this resume is not bit-exact")
    if rank:  # the checkpoint holds rank 0's z stream; the other ranks start their own
        state.z_rng.manual_seed(seed * 1_000_003 + step + 7919 * rank)
    trainer.set_learning_rates()
    trainer.notify("ganzoo_on_checkpoint_load", tensors=tensors)
    # Records written after this checkpoint (a crash between the two) would be counted twice.
    if trainer.world.writer:
        rundir.trim_metrics(trainer.run_dir, step)
