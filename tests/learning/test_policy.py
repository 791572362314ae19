"""The Gaussian actor (learning/policy.py): its std at start and its bounds, and remapped std ranges."""

from __future__ import annotations

import pytest
import torch

from unio4.learning.online.runner import OnlineConfig
from unio4.learning.policy import GaussianActor, NetworkConfig


def test_actor_initial_std_and_bounds() -> None:
    actor = GaussianActor(5, 3, action_bound=1.0, cfg=NetworkConfig(actor_hidden=(16,), init_std=0.5))
    mean, log_std = actor(torch.randn(100, 5) * 100)
    assert mean.abs().max() <= 1.0
    assert log_std.exp().mean().item() == pytest.approx(0.5, rel=0.05)
    assert ((log_std >= -5.0) & (log_std <= 0.0)).all()


def test_min_std_keeps_the_mean_and_widens_exploration() -> None:
    """``OnlineConfig.min_std`` remaps a pretrained actor's log-std range: same mean (the deterministic
    policy and its first evaluation), std >= min_std, the order of stds across states kept."""
    import math
    from dataclasses import replace

    net = NetworkConfig(actor_hidden=(16,), init_std=0.05)
    narrow = GaussianActor(4, 2, 1.0, net)
    wide = GaussianActor(4, 2, 1.0, replace(net, log_std_min=math.log(0.3), init_std=0.5))
    wide.load_state_dict(narrow.state_dict())
    obs = torch.randn(64, 4)
    with torch.no_grad():
        (m1, s1), (m2, s2) = narrow(obs), wide(obs)
    assert torch.equal(m1, m2)
    assert float(s1.exp().max()) < 0.1 and float(s2.exp().min()) >= 0.3 - 1e-6
    assert torch.equal(s1.flatten().argsort(), s2.flatten().argsort())


def test_max_std_keeps_the_mean_and_narrows_exploration() -> None:
    """``OnlineConfig.max_std``: the same remapping from above; the mean stays, every std <= max_std."""
    from unio4.learning.policy import with_std_range

    net = NetworkConfig(actor_hidden=(16,), init_std=0.5)
    wide = GaussianActor(4, 2, 1.0, net)
    capped_net = with_std_range(net, max_std=0.2)
    assert capped_net.log_std_min == net.log_std_min and capped_net.init_std < 0.2  # fresh weights start inside
    capped = GaussianActor(4, 2, 1.0, capped_net)
    capped.load_state_dict(wide.state_dict())
    obs = torch.randn(64, 4)
    with torch.no_grad():
        (m1, s1), (m2, s2) = wide(obs), capped(obs)
    assert torch.equal(m1, m2)
    assert float(s1.exp().min()) > 0.3 and float(s2.exp().max()) <= 0.2 + 1e-6
    assert torch.equal(s1.flatten().argsort(), s2.flatten().argsort())
    with pytest.raises(ValueError, match="must lie below max_std"):
        with_std_range(net, min_std=0.3, max_std=0.2)
    with pytest.raises(ValueError, match="min_std"):
        OnlineConfig(min_std=0.3, max_std=0.2)
