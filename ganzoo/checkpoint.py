"""Checkpoints as safetensors files: flat tensors plus a JSON manifest in the file's metadata.

No pickle anywhere: a file that is not a well-formed ganzoo safetensors checkpoint is refused
with a CheckpointError before anything in it is used.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as load_bytes
from safetensors.torch import save as save_bytes

from ganzoo.errors import CheckpointError
from ganzoo.files import write_atomic

FORMAT_VERSION = 1
MANIFEST_KEY = "ganzoo"
PICKLE_MAGICS = (b"PK\x03\x04", b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")  # torch.save zips, pickles


@contextlib.contextmanager
def manifest_fields(where: str = "") -> Iterator[None]:
    """Turn the errors of reading a missing or mistyped manifest field into one CheckpointError."""
    try:
        yield
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        prefix = f"{where}: " if where else ""
        raise CheckpointError(f"{prefix}the checkpoint's manifest is incomplete ({type(exc).__name__}: {exc})") from None


def encode_checkpoint(tensors: dict[str, torch.Tensor], manifest: dict[str, Any]) -> bytes:
    """The bytes of a checkpoint file: safetensors with the manifest as JSON in its metadata."""
    flat = {name: t.detach().to("cpu").contiguous().clone() for name, t in tensors.items()}
    manifest = {**manifest, "format": FORMAT_VERSION}
    return save_bytes(flat, metadata={MANIFEST_KEY: json.dumps(manifest, sort_keys=True)})


def save_checkpoint(path: Path, tensors: dict[str, torch.Tensor], manifest: dict[str, Any]) -> None:
    """Write tensors and manifest to path atomically (temp file, fsync, rename)."""
    write_atomic(path, encode_checkpoint(tensors, manifest))


def read_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a checkpoint written by save_checkpoint; raise CheckpointError on anything else."""
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint.safetensors"
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint not found: {path}") from None
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc.strerror}") from None
    if not _safetensors_shaped(raw) and raw.startswith(PICKLE_MAGICS):
        raise CheckpointError(f"{path} looks like a pickled PyTorch file; ganzoo reads only safetensors checkpoints and never unpickles")
    manifest = _manifest(raw, path)
    try:
        tensors = load_bytes(raw)
    except Exception as exc:
        raise CheckpointError(f"{path} is not a valid safetensors file: {exc}") from None
    return tensors, manifest


def _safetensors_shaped(raw: bytes) -> bool:
    """An 8-byte header length that fits the file, then a JSON object."""
    return len(raw) > 8 and int.from_bytes(raw[:8], "little") <= len(raw) - 8 and raw[8:9] == b"{"


def _manifest(raw: bytes, path: Path) -> dict[str, Any]:
    """Parse the safetensors header ourselves: 8-byte little-endian length, then JSON."""
    if len(raw) < 8:
        raise CheckpointError(f"{path} is truncated (not a safetensors file)")
    size = int.from_bytes(raw[:8], "little")
    if size > len(raw) - 8 or size > 100_000_000:
        raise CheckpointError(f"{path} is truncated or not a safetensors file")
    try:
        header = json.loads(raw[8 : 8 + size])
        manifest = json.loads(header["__metadata__"][MANIFEST_KEY])
    except (ValueError, KeyError, TypeError):
        raise CheckpointError(f"{path} is not a ganzoo checkpoint (no ganzoo manifest in its metadata)") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format {manifest.get('format') if isinstance(manifest, dict) else '?'}; "
            f"this ganzoo reads format {FORMAT_VERSION}"
        )
    return manifest


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
    wrong = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        detail = (
            f"missing {missing[:3]}" if missing
            else f"unexpected {unexpected[:3]}" if unexpected
            else f"{wrong[0]} has shape {tuple(state[wrong[0]].shape)}, the model needs {tuple(expected[wrong[0]].shape)}"
        )
        raise CheckpointError(f"checkpoint tensors do not fit the architecture ({prefix}: {detail})")
    return state


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
