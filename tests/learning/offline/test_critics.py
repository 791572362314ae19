"""Uni-O4's offline critics (learning/offline/critics.py): expectile loss, returns, bootstrapping, SARSA."""

from __future__ import annotations

from typing import Literal

import pytest
import torch

from tests.learning.offline.conftest import NET, bandit
from unio4.learning.data.dataset import Dataset
from unio4.learning.offline.critics import CriticConfig, CriticTrainer, expectile_loss, monte_carlo_returns


def constant_dataset(n: int, timeouts: bool) -> Dataset:
    """One state, reward 1, every transition ends its episode (by time-out or by terminal)."""
    obs = torch.zeros(n, 2)
    ends = torch.ones(n, dtype=torch.bool)
    none = torch.zeros(n, dtype=torch.bool)
    return Dataset(obs, torch.zeros(n, 1), torch.ones(n), none if timeouts else ends, ends if timeouts else none, obs.clone())


def test_expectile_loss_values() -> None:
    diff = torch.tensor([1.0, -2.0])
    assert expectile_loss(diff, 0.7).item() == pytest.approx((0.7 * 1 + 0.3 * 4) / 2)
    assert expectile_loss(diff, 0.5).item() == pytest.approx(0.5 * (1 + 4) / 2)
    # the expectile of a sample sits above its mean for w > 0.5: gradient at the mean pushes V up
    v = torch.zeros((), requires_grad=True)
    expectile_loss(torch.tensor([-1.0, 1.0]) - v, 0.9).backward()
    assert v.grad is not None and v.grad.item() < 0


def test_monte_carlo_returns_restart_at_episode_ends() -> None:
    rewards = torch.tensor([1.0, 1.0, 1.0, 2.0, 2.0])
    ends = torch.tensor([False, False, True, False, True])
    expected = [1 + 0.5 + 0.25, 1 + 0.5, 1.0, 2 + 1.0, 2.0]
    assert monte_carlo_returns(rewards, ends, 0.5).tolist() == pytest.approx(expected)


@pytest.mark.parametrize(("bootstrap", "expected"), [(True, 2.0), (False, 1.0)])
def test_time_outs_bootstrap_and_terminals_do_not(bootstrap: bool, expected: float) -> None:
    """Reward 1 forever, cut by time-outs: V = 1 / (1 - gamma) = 2 if time-outs bootstrap, 1 if treated as terminals."""
    cfg = CriticConfig(
        steps=0, batch_size=64, lr=3e-3, gamma=0.5, tau=0.05, target_update_every=1, q_hidden=(32, 32), bootstrap_timeouts=bootstrap
    )
    trainer = CriticTrainer(constant_dataset(256, timeouts=True), cfg, NET, seed=0)
    for _ in range(1500):
        trainer.step()
    with torch.no_grad():
        v = trainer.critics.v(torch.zeros(1, 2)).item()
        q = trainer.critics.q_min(torch.zeros(1, 2), torch.zeros(1, 1)).item()
    assert v == pytest.approx(expected, abs=0.1)
    assert q == pytest.approx(expected, abs=0.1)


def test_true_terminals_never_bootstrap() -> None:
    cfg = CriticConfig(steps=0, batch_size=64, lr=3e-3, gamma=0.5, tau=0.05, target_update_every=1, q_hidden=(32, 32))
    trainer = CriticTrainer(constant_dataset(256, timeouts=False), cfg, NET, seed=0)
    for _ in range(1500):
        trainer.step()
    with torch.no_grad():
        assert trainer.critics.v(torch.zeros(1, 2)).item() == pytest.approx(1.0, abs=0.1)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_sarsa_critic_values_the_behaviour_policy(precision: Literal["fp32", "bf16"]) -> None:
    """Bandit: Q(s, a) = r(a); V = E_behaviour[r] = 1 - E[(a - 0.5)^2] = 1 - (1/3 + 0.25), in either precision."""
    cfg = CriticConfig(mode="sarsa", steps=0, batch_size=256, lr=3e-3, q_hidden=(64, 64), precision=precision)
    trainer = CriticTrainer(bandit(), cfg, NET, seed=0)
    for _ in range(1500):
        trainer.step()
    with torch.no_grad():
        obs = torch.randn(256, 2)
        v = trainer.critics.v(obs).mean().item()
        q_best = trainer.critics.q_min(obs, torch.full((256, 1), 0.5)).mean().item()
    assert v == pytest.approx(1 - (1 / 3 + 0.25), abs=0.05)
    assert q_best == pytest.approx(1.0, abs=0.05)
