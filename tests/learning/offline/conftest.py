"""Datasets and ensembles shared by the offline-phase tests."""

from __future__ import annotations

import torch

from unio4.learning.data.dataset import Dataset
from unio4.learning.offline.bc import ActorEnsemble, make_actor
from unio4.learning.policy import NetworkConfig

NET = NetworkConfig(actor_hidden=(32, 32), critic_hidden=(32, 32), activation="relu", init_std=0.5)


def bandit(n: int = 4000, seed: int = 0) -> Dataset:
    """One-step episodes: a ~ U(-1, 1), reward 1 - (a - 0.5)^2; the best action is 0.5, BC's mean is 0."""
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(n, 2, generator=g)
    actions = torch.rand(n, 1, generator=g) * 2 - 1
    rewards = 1 - (actions[:, 0] - 0.5).square()
    ends = torch.ones(n, dtype=torch.bool)
    return Dataset(obs, actions, rewards, ends, torch.zeros(n, dtype=torch.bool), obs + 0.1 * actions)


def ensemble_of(n: int, seed: int = 0) -> ActorEnsemble:
    torch.manual_seed(seed)
    return ActorEnsemble([make_actor(2, 1, 1.0, NET) for _ in range(n)])
