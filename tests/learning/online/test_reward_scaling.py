"""Reward scaling (learning/online/reward_scaling.py)."""

from __future__ import annotations

import torch

from unio4.learning.online.reward_scaling import RewardScaler


def test_reward_scaler_divides_by_the_running_std_of_the_discounted_return() -> None:
    gen = torch.Generator().manual_seed(0)
    scaler = RewardScaler(16, 0.9, 0.5, "running", "cpu")
    returns, seen = torch.zeros(16, dtype=torch.float64), []
    for t in range(200):
        r = torch.rand(16, generator=gen) + 1.0
        done = torch.full((16,), t % 10 == 9)
        out = scaler(r, done)
        returns = 0.9 * returns + 0.5 * r.double()
        seen.append(returns.clone())
        std = float(torch.cat(seen).std(unbiased=False))
        assert torch.allclose(out, 0.5 * r / (std + 1e-8), rtol=1e-5)
        returns[done] = 0.0
    resumed = RewardScaler(16, 0.9, 0.5, "running", "cpu")
    resumed.load_state_dict(scaler.state_dict())
    r = torch.rand(16, generator=gen)
    assert torch.equal(resumed(r, torch.zeros(16)), scaler(r, torch.zeros(16)))
    constant = RewardScaler(16, 0.9, 0.1, "none", "cpu")
    assert constant.active and torch.equal(constant(r, torch.zeros(16)), r * 0.1)
    assert not RewardScaler(16, 0.9, 1.0, "none", "cpu").active
