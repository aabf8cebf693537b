"""Data-parallel training under torchrun: ``torchrun --nproc-per-node K -m ganzoo train ...``.

Every process (rank) holds the whole model and trains on its own shard of the data (every K-th
image); DistributedDataParallel averages the gradients of D and of the generators over the
ranks, so the replicas stay equal. ``--batch-size`` is per process: a step sees K x B real images.
Rank 0 alone writes the run directory (config, metrics, samples, checkpoints) and runs the
observer hooks; the metrics it logs are averaged over the ranks. The backend is gloo on CPU and
nccl on CUDA (each rank on the GPU its LOCAL_RANK names). With K = 1 a run is the plain run.
Without torchrun's environment (WORLD_SIZE) none of this is used.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor

from ganzoo.core.errors import GanzooError


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    active: bool = False  # a process group is up (under torchrun, even with K = 1)

    @property
    def writer(self) -> bool:
        """Whether this process writes the run directory and runs the observer hooks."""
        return self.rank == 0


def under_torchrun() -> bool:
    return "WORLD_SIZE" in os.environ and "RANK" in os.environ


def env_rank() -> int:
    """This process's rank as torchrun sets it (0 outside torchrun), known before joining the group."""
    try:
        return int(os.environ["RANK"]) if under_torchrun() else 0
    except ValueError:
        raise GanzooError(f"RANK={os.environ['RANK']!r} is not a rank; is this torchrun's environment?") from None


def join(device: torch.device) -> World:
    """Join torchrun's process group (once per process); a plain World outside torchrun."""
    if not under_torchrun():
        return World()
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        try:
            dist.init_process_group(backend)
        except (RuntimeError, ValueError) as exc:
            raise GanzooError(f"cannot join torchrun's process group ({backend}): {exc}") from None
    return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")), active=True)


def rank_device(device: torch.device, world: World) -> torch.device:
    """Each rank's own GPU (cuda:LOCAL_RANK) when training on CUDA under torchrun."""
    if world.active and device.type == "cuda" and device.index is None:
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    return device


def mean(tensor: Tensor, world: World) -> Tensor:
    """The average of ``tensor`` over the ranks (a copy; the tensor itself is left as it is)."""
    if not world.active or world.size == 1:
        return tensor
    total = tensor.clone()
    dist.all_reduce(total)
    return total / world.size


def any_rank(value: int, world: World, device: torch.device) -> int:
    """The largest of every rank's ``value`` (e.g. a signal number, 0 for none)."""
    if not world.active or world.size == 1:
        return value
    flag = torch.tensor([value], device=device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return int(flag.item())


def barrier(world: World) -> None:
    if world.active and world.size > 1:
        dist.barrier()


def check_replicas(tensors: list[Tensor], world: World) -> None:
    """Raise if the replicas' weights differ (checked at checkpoints: a cheap sum per tensor)."""
    if not world.active or world.size == 1:
        return
    sums = torch.stack([t.detach().double().sum() for t in tensors])
    low, high = sums.clone(), sums.clone()
    dist.all_reduce(low, op=dist.ReduceOp.MIN)
    dist.all_reduce(high, op=dist.ReduceOp.MAX)
    if not torch.equal(low, high):
        raise GanzooError("the ranks' weights have diverged; this is a bug in ganzoo's data-parallel training")


def leave(world: World) -> None:
    if world.active and dist.is_initialized():
        dist.destroy_process_group()
