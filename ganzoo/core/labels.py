"""Class labels in input policies (``--conditional``): D as a function of images alone.

A policy of a class-conditional run is called with ``labels`` (B,), the class of each tuple. It
usually stacks the tuple's batches (the real one, then the N fakes) into one D input; every image
of tuple b is of class ``labels[b]``, so the stacked batch's labels are ``labels`` repeated once
per batch. ``scorer`` binds them, and the policy's code stays what it is for unconditional runs::

    d = scorer(discriminator, labels, len(fakes) + 1)   # labels None: D itself
    scores = d(torch.cat([real, *fakes]))
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import Tensor


def scorer(discriminator: Any, labels: Tensor | None, copies: int = 1) -> Callable[[Tensor], Tensor]:
    """``images -> D(images)`` in an unconditional run; in a conditional one, ``images -> D(images, y)``
    with y the labels repeated ``copies`` times (the images are ``copies`` stacked batches of B)."""
    if labels is None:
        return discriminator
    stacked = labels.repeat(copies)
    return lambda images: discriminator(images, stacked)
