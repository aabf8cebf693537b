"""Class-conditional pieces shared by the built-in architectures (``classes=K`` > 0).

G: conditional batch norm (de Vries et al. 2017; Miyato & Koyama 2018): batch statistics without
an affine of their own, then a per-class scale and shift looked up from embeddings, scale 1 and
shift 0 at the start (as the SNGAN projection reference code, pfnet-research/sngan_projection).
D: the projection discriminator (Miyato & Koyama 2018): the logit gains sum(embed(y) * h) over
the features h that D's last layer reads, the embedding Xavier-uniform (as the reference code and
Mimicry's SNEmbedding). The run's spectral norm parametrizes the embedding's ``weight`` like any
linear layer's.

With ``classes=0`` nothing here is built: ``batch_norm`` gives a plain ``nn.BatchNorm2d`` and
``projection`` gives None, so unconditional networks keep their layers, weights and outputs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganzoo.core.errors import GanzooError


def check_classes(classes: int) -> int:
    if not isinstance(classes, int) or isinstance(classes, bool) or classes < 0:
        raise GanzooError(f"classes must be a whole number >= 0 (0: unconditional), got {classes!r}")
    return classes


def check_labels(y: Tensor | None, batch: int) -> Tensor:
    """y itself, after checking that a class-conditional network was given one label per image."""
    if y is None:
        raise GanzooError("this network is class-conditional: forward needs the labels y, "
                          "a (B,) long tensor of classes in [0, classes)")
    if y.shape != (batch,):
        raise GanzooError(f"the labels y must have shape ({batch},), one per image; got {tuple(y.shape)}")
    return y


class ConditionalBatchNorm2d(nn.Module):
    """Batch norm whose scale and shift are looked up by class: gamma[y] * BN(x) + beta[y]."""

    takes_labels = True

    def __init__(self, features: int, classes: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(features, affine=False)
        self.gamma = nn.Embedding(classes, features)
        self.beta = nn.Embedding(classes, features)
        nn.init.ones_(self.gamma.weight)
        nn.init.zeros_(self.beta.weight)

    def forward(self, x: Tensor, y: Tensor | None) -> Tensor:
        y = check_labels(y, x.shape[0])
        h = self.bn(x)
        # in the activations' dtype (bf16 under autocast), as an affine batch norm's output is
        gamma = self.gamma(y).to(h.dtype)[:, :, None, None]
        beta = self.beta(y).to(h.dtype)[:, :, None, None]
        return torch.addcmul(beta, h, gamma)


def batch_norm(features: int, classes: int) -> nn.Module:
    """nn.BatchNorm2d(features) when classes is 0, else its class-conditional version."""
    return ConditionalBatchNorm2d(features, classes) if classes else nn.BatchNorm2d(features)


def call(layer: nn.Module, x: Tensor, y: Tensor | None) -> Tensor:
    """layer(x, y) for the layers that take labels (``takes_labels``), layer(x) for the others."""
    return layer(x, y) if getattr(layer, "takes_labels", False) else layer(x)


class Sequential(nn.Sequential):
    """nn.Sequential (same state_dict keys) whose forward(x, y) hands y to the layers that take labels."""

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        for layer in self:
            x = call(layer, x, y)
        return x


MATMUL_CLASSES = 32  # up to this many classes, the projection is one (B, F) x (F, K) matmul: measured faster on CPU


class Projection(nn.Module):
    """The class term of a projection discriminator: sum(embed(y) * h, dim=1) for (B, F) features h.

    For a few classes it is computed as h @ embed.T (every class's term) and the asked class's picked:
    the same number, but one matmul (in bf16 under autocast) instead of a gather and an elementwise
    product over B x F in float32, and their backward; for many classes (Stacked MNIST's 1,000) the
    gather is cheaper."""

    def __init__(self, features: int, classes: int):
        super().__init__()
        self.embed = nn.Embedding(classes, features)
        nn.init.xavier_uniform_(self.embed.weight)

    def forward(self, h: Tensor, y: Tensor | None) -> Tensor:
        y = check_labels(y, h.shape[0])
        weight = self.embed.weight  # through the embedding's spectral norm, when the run adds one
        if weight.shape[0] <= MATMUL_CLASSES:  # every class's term in one small matmul, then the asked one's
            return F.linear(h, weight).gather(1, y[:, None]).squeeze(1)
        return (F.embedding(y, weight) * h).sum(dim=1)


def projection(features: int, classes: int, outputs: int) -> Projection | None:
    """D's projection over ``features`` features, or None when classes is 0."""
    if not classes:
        return None
    if outputs != 1:
        raise GanzooError(f"a projection discriminator gives one logit per image; it cannot have {outputs} outputs")
    return Projection(features, classes)


def sequential_logits(net: nn.Sequential, projection: Projection | None, outputs: int, x: Tensor, y: Tensor | None) -> Tensor:
    """The logits of a D that is one nn.Sequential ending in its linear layer: (B,) for one output,
    (B, K) for K; with a projection, its class term added to the one logit."""
    if projection is None:
        logits = net(x)
        return logits.squeeze(1) if outputs == 1 else logits
    *body, last = net
    h = x
    for layer in body:
        h = layer(h)
    return last(h).squeeze(1) + projection(h, y)
