"""Observation normalisation: running statistics online, frozen dataset statistics for Uni-O4.

The normaliser is part of the policy (it is saved in checkpoints and baked into the exported
ONNX graph), so a deployed policy sees exactly what it saw in training.
"""

from __future__ import annotations

import math

import torch
from torch import nn

NORMALIZER_EPS = 1e-8  # under the square root: a constant observation does not divide by zero


class ObsNormalizer(nn.Module):
    """``(x - mean) / sqrt(var + eps)``, clipped; statistics updated only while not frozen."""

    mean: torch.Tensor
    var: torch.Tensor
    count: torch.Tensor
    frozen: torch.Tensor

    def __init__(self, size: int, clip: float = 10.0, eps: float = NORMALIZER_EPS, frozen: bool = False) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(size))
        self.register_buffer("var", torch.ones(size))
        self.register_buffer("count", torch.tensor(eps, dtype=torch.float64))
        self.register_buffer("frozen", torch.tensor(frozen))
        self.clip, self.eps = clip, eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(x - mean) / std`` with the running statistics, clipped."""
        y = (x - self.mean) / torch.sqrt(self.var + self.eps)
        return y if math.isinf(self.clip) else y.clamp(-self.clip, self.clip)

    def denormalize(self, y: torch.Tensor) -> torch.Tensor:
        """The inverse of :meth:`forward` (unclipped)."""
        return y * torch.sqrt(self.var + self.eps) + self.mean

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        """Merge the batch ``x`` (B, size) into the running mean/variance (Chan et al.)."""
        if bool(self.frozen):
            return
        x = x.reshape(-1, x.shape[-1]).double()
        batch_count = x.shape[0]
        batch_mean, batch_var = x.mean(0), x.var(0, unbiased=False)
        total = self.count + batch_count
        delta = batch_mean - self.mean.double()
        mean = self.mean.double() + delta * batch_count / total
        m2 = self.var.double() * self.count + batch_var * batch_count + delta.square() * self.count * batch_count / total
        self.mean.copy_(mean.float())
        self.var.copy_((m2 / total).float())
        self.count.copy_(total)

    def set_statistics(self, mean: torch.Tensor, var: torch.Tensor, freeze: bool = True) -> None:
        """Set the statistics (e.g. a dataset's) and optionally freeze them."""
        self.mean.copy_(mean)
        self.var.copy_(var)
        self.frozen.fill_(freeze)
