"""Batched ensembles of MLPs: ``n`` independent networks evaluated with one batched matmul per layer.

Used for the twin Q critic and the dynamics ensemble. Members never share weights or
gradients; the batching only removes the Python loop over networks.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from unio4.learning.policy import ACTIVATIONS


class EnsembleLinear(nn.Module):
    """``n`` linear layers; input (n, B, in) -> (n, B, out)."""

    def __init__(self, n: int, in_features: int, out_features: int, gain: float) -> None:
        super().__init__()
        # each member initialised like nn.init.orthogonal_ on its own (out, in) matrix
        weights = [nn.init.orthogonal_(torch.empty(out_features, in_features), gain=gain).T for _ in range(n)]
        self.weight = nn.Parameter(torch.stack(weights))
        self.bias = nn.Parameter(torch.zeros(n, 1, out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Members' affine maps of ``x`` (members, batch, in) -> (members, batch, out)."""
        return torch.baddbmm(self.bias, x, self.weight)


class EnsembleMLP(nn.Module):
    """``n`` MLPs with the same layer sizes; a (B, in) input is shared by every member."""

    def __init__(self, n: int, sizes: list[int], activation: str, out_gain: float = 1.0) -> None:
        super().__init__()
        self.n = n
        layers: list[nn.Module] = []
        for i in range(len(sizes) - 1):
            last = i == len(sizes) - 2
            layers.append(EnsembleLinear(n, sizes[i], sizes[i + 1], gain=out_gain if last else math.sqrt(2)))
            if not last:
                layers.append(ACTIVATIONS[activation]())
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Every member's MLP on ``x`` (members, batch, in)."""
        if x.ndim == 2:
            x = x.unsqueeze(0).expand(self.n, -1, -1)
        out: torch.Tensor = self.layers(x)
        return out

    def linear_layers(self) -> list[EnsembleLinear]:
        """The ensemble's linear layers, first to last."""
        return [m for m in self.layers if isinstance(m, EnsembleLinear)]

    def select(self, members: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Run only ``members`` (k,) on ``x`` (k, B, in); the subset's weights are gathered once per call."""
        for layer in self.layers:
            if isinstance(layer, EnsembleLinear):
                x = torch.baddbmm(layer.bias[members], x, layer.weight[members])
            else:
                x = layer(x)
        return x
