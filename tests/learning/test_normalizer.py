"""The observation normaliser (learning/normalizer.py)."""

from __future__ import annotations

import pytest
import torch

from unio4.learning.policy import GaussianActor, NetworkConfig

NET = NetworkConfig(actor_hidden=(16,), critic_hidden=(16,), init_std=0.3)


def test_unclipped_observations_when_obs_clip_is_null() -> None:
    actor = GaussianActor(4, 2, 1.0, NetworkConfig(actor_hidden=(16,), critic_hidden=(16,), obs_clip=None))
    actor.normalizer.set_statistics(torch.zeros(4), torch.ones(4), freeze=True)
    x = torch.full((1, 4), 50.0)
    assert torch.equal(actor.normalizer(x), x)
    assert float(GaussianActor(4, 2, 1.0, NET).normalizer(x).max()) == pytest.approx(10.0)
