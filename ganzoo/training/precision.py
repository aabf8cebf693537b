"""Mixed precision (``--amp bf16|off|auto``): bf16 autocast for the networks' forward passes.

Only the networks run under autocast; their outputs are cast back to float32, so every loss,
softmax and metric an input policy computes stays in float32 whatever the policy does.

``auto`` turns bf16 on where the hardware multiplies bf16 natively and it was measured to pay:
CPUs with AMX-BF16 or AVX512-BF16 (a 28x28 PSG step 1.3-1.5x faster on a 2-core AVX512-BF16
machine, docs/performance.md), and CUDA devices that support bf16. Elsewhere (older CPUs emulate
bf16 and get slower) it stays off. On CUDA, float32 work also uses TF32 (``allow_tf32``).
"""

from __future__ import annotations

import contextlib
import platform
from functools import cache
from pathlib import Path

import torch
from torch import Tensor, nn

from ganzoo.core.config import AMP_CHOICES
from ganzoo.core.errors import GanzooError


@cache
def cpuinfo(field: str) -> str | None:
    """The first value of a /proc/cpuinfo field ("model name", "flags"); None where there is none."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return None
    return next((value.strip() for key, _, value in (line.partition(":") for line in lines) if key.strip() == field), None)


def cpu_name() -> str:
    return cpuinfo("model name") or platform.processor() or platform.machine()


def cpu_has_native_bf16() -> bool:
    """Whether this CPU has bf16 dot-product instructions (AMX-BF16 or AVX512-BF16), from /proc/cpuinfo."""
    return bool(set((cpuinfo("flags") or "").split()) & {"amx_bf16", "avx512_bf16"})


def resolve_amp(choice: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``--amp`` on this device, or None for float32."""
    if choice not in AMP_CHOICES:
        raise GanzooError(f"amp must be one of {', '.join(AMP_CHOICES)}, got {choice!r}")
    if choice == "off":
        return None
    if choice == "bf16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    return torch.bfloat16 if device.type == "cpu" and cpu_has_native_bf16() else None


def allow_tf32(device: torch.device) -> bool:
    """On CUDA, let float32 matrix products and convolutions use TF32 tensor cores (Ampere and
    later; a 10-bit mantissa for the products, float32 accumulation). Whatever --amp leaves in
    float32 runs there; returns whether it was turned on."""
    if device.type != "cuda":
        return False
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    return True


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


class Autocast(nn.Module):
    """Runs ``inner`` under autocast and returns float32: what the trainer hands to the input policy
    and calls the generators through. Holds no state of its own (checkpoints save ``inner``)."""

    def __init__(self, inner: nn.Module, device: torch.device, dtype: torch.dtype | None):
        super().__init__()
        self.inner = inner
        self.device = device
        self.dtype = dtype

    def forward(self, x: Tensor, *labels: Tensor) -> Tensor:
        with autocast(self.device, self.dtype):
            out = self.inner(x, *labels)  # a class-conditional D also takes the labels
        return out.float()
