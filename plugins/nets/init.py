"""Weight initialisations: DCGAN's (Radford et al. 2016) and the Xavier-uniform one of the SNGAN ResNets."""

from collections.abc import Iterable

from torch import nn


def dcgan_init(module: nn.Module) -> None:
    """Conv and linear weights ~ N(0, 0.02), biases 0; BN scale ~ N(1, 0.02), shift 0. Batch norms
    without an affine of their own (the conditional ones, whose scale and shift are embeddings
    that start at 1 and 0) and embeddings are left alone."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d) and m.affine:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def xavier_init(layers: Iterable[nn.Module], gain: float) -> None:
    """Xavier-uniform weights with this gain, biases 0 (the SNGAN reference code's initialisation)."""
    for layer in layers:
        nn.init.xavier_uniform_(layer.weight, gain)
        if layer.bias is not None:
            nn.init.zeros_(layer.bias)
