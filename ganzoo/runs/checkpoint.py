"""Run checkpoints: the state of a run as named tensors (modules, optimizers) in a tensor file
(``ganzoo.core.tensorfile``), and reading a checkpoint's manifest with one error for a missing field.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from ganzoo.core.errors import CheckpointError
from ganzoo.core.schema import check
from ganzoo.core.tensorfile import TensorFile, open_tensor_file, read_tensor_file

CHECKPOINT = "checkpoint.safetensors"


@contextlib.contextmanager
def manifest_fields(where: str = "") -> Iterator[None]:
    """Turn the errors of reading a missing or mistyped manifest field into one CheckpointError."""
    try:
        yield
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        prefix = f"{where}: " if where else ""
        raise CheckpointError(f"{prefix}the checkpoint's manifest is incomplete ({type(exc).__name__}: {exc})") from None


def open_checkpoint(path: Path) -> TensorFile:
    """Open a checkpoint (a file, or a run directory's checkpoint.safetensors) and check its header
    and its manifest (``ganzoo.runs.schemas.CHECKPOINT_MANIFEST``) before anything uses them."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT
    file = open_tensor_file(path)
    try:
        check_manifest(file.manifest, str(path))
    except BaseException:
        file.close()
        raise
    return file


def check_manifest(manifest: dict[str, Any], where: str) -> dict[str, Any]:
    """Refuse a checkpoint manifest whose fields are not what ganzoo writes (one line, exit 2)."""
    from ganzoo.runs.schemas import CHECKPOINT_MANIFEST

    return check(manifest, CHECKPOINT_MANIFEST, f"{where}: the manifest", CheckpointError)


def read_checkpoint(path: Path, check: Callable[[dict[str, torch.Tensor], dict[str, Any]], None] | None = None
                    ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Every tensor and the manifest of a checkpoint (a file, or a run directory's); ``check`` as for
    ``ganzoo.core.tensorfile.read_tensor_file``."""
    path = Path(path)
    return read_tensor_file(path / CHECKPOINT if path.is_dir() else path, check)


def module_tensors(prefix: str, module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v for k, v in module.state_dict().items()}


def load_module(prefix: str, module: torch.nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    """Load module's state from tensors under prefix; shape or key mismatches are CheckpointErrors."""
    module.load_state_dict(module_fits(prefix, module, tensors))


def module_fits(prefix: str, module: torch.nn.Module, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """module's state taken from tensors under prefix; CheckpointError when keys or shapes differ."""
    start = prefix + "."
    state = {k[len(start) :]: v for k, v in tensors.items() if k.startswith(start)}
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [k for k in expected if k in state and (state[k].shape, state[k].dtype) != (expected[k].shape, expected[k].dtype)]
    if missing or unexpected or wrong:
        detail = (
            f"missing {missing[:3]}" if missing
            else f"unexpected {unexpected[:3]}" if unexpected
            else f"{wrong[0]} is {_words(state[wrong[0]])}, the model needs {_words(expected[wrong[0]])}"
        )
        raise CheckpointError(f"checkpoint tensors do not fit the architecture ({prefix}: {detail})")
    return state


def _words(tensor: torch.Tensor) -> str:
    return f"{str(tensor.dtype).removeprefix('torch.')} of shape {tuple(tensor.shape)}"


def optimizer_tensors(prefix: str, optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list[dict]]:
    """An optimizer's state as flat tensors, and its param groups as JSON-able dicts."""
    state = optimizer.state_dict()
    tensors = {}
    for index, values in state["state"].items():
        for name, value in values.items():
            tensors[f"{prefix}.{index}.{name}"] = value if torch.is_tensor(value) else torch.tensor(value)
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in state["param_groups"]]
    return tensors, groups


def load_optimizer(prefix: str, optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], groups: list[dict]) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    start = prefix + "."
    for key, value in tensors.items():
        if key.startswith(start):
            index, name = key[len(start) :].split(".", 1)
            state.setdefault(int(index), {})[name] = value
    try:
        optimizer.load_state_dict({"state": state, "param_groups": groups})
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"optimizer state in the checkpoint does not fit ({prefix}: {exc})") from None
