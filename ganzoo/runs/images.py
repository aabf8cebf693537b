"""Sample grids as PNG: one block of rows per generator, separated by a white band."""

from __future__ import annotations

import io
import math

import torch
from PIL import Image


def grid(blocks: list[torch.Tensor], columns: int = 8, pad: int = 2, gap: int = 6) -> torch.Tensor:
    """Tile blocks of images (n, C, H, W) in [-1, 1] into one uint8 (H', W', C) array."""
    c, h, w = blocks[0].shape[1:]
    width = columns * (w + pad) + pad
    rows = []
    for index, block in enumerate(blocks):
        n = block.shape[0]
        r = math.ceil(n / columns)
        canvas = torch.full((c, r * (h + pad) + pad, width), -1.0)
        for k in range(n):
            y, x = divmod(k, columns)
            top, left = pad + y * (h + pad), pad + x * (w + pad)
            canvas[:, top : top + h, left : left + w] = block[k].detach().float().cpu()
        rows.append(canvas)
        if index < len(blocks) - 1:
            rows.append(torch.ones(c, gap, width))
    image = torch.cat(rows, dim=1).clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
    return image.permute(1, 2, 0).contiguous()


def png_bytes(pixels: torch.Tensor) -> bytes:
    array = pixels.numpy()
    mode = "L" if array.shape[2] == 1 else "RGB"
    image = Image.fromarray(array[:, :, 0] if mode == "L" else array, mode=mode)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@torch.no_grad()
def sample_blocks(generators: torch.nn.ModuleList, z: torch.Tensor, labels: torch.Tensor | None = None) -> list[torch.Tensor]:
    """Images from each generator for z of shape (n, N, z_dim) (generator i gets z[:, i]), of the
    classes ``labels`` (n,) for class-conditional generators; eval mode."""
    generators.eval()
    if labels is None:
        return [g(z[:, i]) for i, g in enumerate(generators)]
    return [g(z[:, i], labels) for i, g in enumerate(generators)]
