"""The bare hand-written PyTorch step ganzoo's trainer is measured against (target: <= 1.03x).

The same networks (copied from a ganzoo Trainer, so the same weights), batch, optimizers,
losses and autocast as ganzoo's PSG step, written out by hand with the data already in memory
as float tensors: no plugins, no hooks, no metric bookkeeping. With the trainer's R1 and R2 on
(both, as psg's defaults have them), D's step adds them by hand from one pass on every image.
"""

from __future__ import annotations

import copy

import torch

from ganzoo.training.precision import autocast


class BareLoop:
    def __init__(self, trainer):
        config = trainer.config
        self.device, self.amp = trainer.device, trainer.calls.amp
        self.generators = copy.deepcopy(trainer.generators)
        self.discriminator = copy.deepcopy(trainer.discriminator)
        betas, lr = (config.beta1, config.beta2), config.lr
        self.g_opts = [torch.optim.Adam(g.parameters(), lr=lr, betas=betas) for g in self.generators]
        self.d_opt = torch.optim.Adam(self.discriminator.parameters(), lr=lr, betas=betas)
        self.g_params = [p for g in self.generators for p in g.parameters()]
        self.data = trainer.batches.images.float().div(127.5).sub(1)  # preloaded, already scaled
        self.batch_size, self.z_dim = config.batch_size, config.z_dim
        self.r1, self.r2 = (float(config.options.get(key, 0.0)) for key in ("r1", "r2"))
        if (self.r1 > 0) != (self.r2 > 0):
            raise ValueError("the bare loop writes out R1 and R2 together or neither")
        self.index = 0

    def d_scores(self, x: torch.Tensor, n: int) -> torch.Tensor:
        with autocast(self.device, self.amp):
            return self.discriminator(x).float().view(n + 1, self.batch_size)

    def step(self) -> None:
        b, n = self.batch_size, len(self.generators)
        start = self.index * b % (self.data.shape[0] - b)
        self.index += 1
        real = self.data[start : start + b]
        z = torch.randn(b, self.z_dim, device=self.device)
        with autocast(self.device, self.amp):
            fakes = [g(z).float() for g in self.generators]

        x = torch.cat([real, *[f.detach() for f in fakes]]).requires_grad_(self.r1 > 0)
        scores = self.d_scores(x, n)
        d_loss = -scores.log_softmax(0)[0].mean()
        if self.r1 > 0:  # (gamma / 2) ||grad_x D(x)||^2: R1 on the real images, R2 on the fakes (their mean)
            (grad,) = torch.autograd.grad(scores.sum(), x, create_graph=True)
            sq = grad.square().flatten(1).sum(1).view(n + 1, b)
            d_loss = d_loss + (0.5 * self.r1 * sq[0] + 0.5 * self.r2 * sq[1:].mean(0)).mean()
        self.d_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        self.d_opt.step()

        scores = self.d_scores(torch.cat([real, *fakes]), n)
        g_loss = -scores.log_softmax(0)[1:].mean()
        for opt in self.g_opts:
            opt.zero_grad(set_to_none=True)
        g_loss.backward(inputs=self.g_params)
        for opt in self.g_opts:
            opt.step()
