"""The dynamics ensemble (learning/offline/dynamics.py): elites and termination."""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

import pytest
import torch

from unio4.learning.data.dataset import Dataset
from unio4.learning.offline.dynamics import DynamicsConfig, DynamicsTrainer


def linear_system(n: int = 3000, seed: int = 0) -> Dataset:
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(n, 3, generator=g)
    actions = torch.rand(n, 2, generator=g) * 2 - 1
    nxt = obs + 0.1 * torch.cat([actions, actions[:, :1]], -1) + 0.01 * torch.randn(n, 3, generator=g)
    rewards = (obs[:, :2] * actions).sum(-1)
    terminals = nxt[:, 0] > 1.5
    timeouts = torch.zeros(n, dtype=torch.bool)
    timeouts[-1] = not bool(terminals[-1])
    return Dataset(obs, actions, rewards, terminals, timeouts, nxt)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_dynamics_ensemble_learns_elites_and_termination(precision: Literal["fp32", "bf16"]) -> None:
    """The model, its elites and the learned termination are right when trained in either precision."""
    data = linear_system()
    cfg = DynamicsConfig(
        members=4, elites=2, hidden=(64, 64), weight_decay=(2.5e-5, 5e-5, 1e-4), max_epochs=40, max_holdout=500, precision=precision
    )
    trainer = DynamicsTrainer(data, cfg, seed=0)
    assert trainer.model.termination == "learned"  # the data has terminals and no known task
    before = trainer.holdout_mse()
    while not trainer.done:
        trainer.step()
    model = trainer.finish()
    after = trainer.holdout_mse()
    assert float(after.max()) < 0.1 * float(before.min())
    assert sorted(model.elite_index.tolist()) == sorted(after.argsort()[:2].tolist())
    obs, actions = data.observations[:500], data.actions[:500]
    next_obs, reward, done = model.step(obs, actions, torch.Generator().manual_seed(0))
    assert float((next_obs - data.next_observations[:500]).abs().mean()) < 0.05
    assert float((reward - data.rewards[:500]).abs().mean()) < 0.1  # rewards spread over [-3, 3]
    truth = next_obs[:, 0] > 1.5
    assert float((done == truth).float().mean()) > 0.95
    # the elites agree where the data went and disagree where it did not (actions 4x past its range)
    *_, inside = model.step_with_disagreement(obs, actions, torch.Generator().manual_seed(0))
    *_, outside = model.step_with_disagreement(obs, 4 * actions, torch.Generator().manual_seed(0))
    assert float(outside.mean()) > 2 * float(inside.mean())


def test_known_termination_rule_is_used_for_hopper() -> None:
    data = linear_system()
    data.metadata["env"] = "Hopper-v4"
    model = DynamicsTrainer(data, DynamicsConfig(members=2, elites=1, hidden=(8,), weight_decay=(0.0, 0.0)), seed=0).model
    assert model.termination == "hopper" and model.done_head is None
    healthy = torch.tensor([[1.25, 0.0, 0.1]])
    fallen = torch.tensor([[0.6, 0.0, 0.1]])
    tilted = torch.tensor([[1.25, 0.3, 0.1]])
    assert model.is_done(torch.cat([healthy, fallen, tilted])).tolist() == [False, True, True]


def test_member_loss_sum_is_the_mean_times_the_members() -> None:
    """On one fixed batch (the whole training split, one batch per epoch) the first epoch's NLL term summed
    over members (the authors') is ``members`` times the mean over them; Adam's steps then differ because the
    weight decay and the log-variance bound terms weigh less against the summed NLL."""
    data = linear_system(400)
    trained = {}
    nll = {}
    losses: tuple[Literal["mean", "sum"], ...] = ("mean", "sum")
    for loss in losses:
        cfg = DynamicsConfig(
            members=3, elites=2, hidden=(16,), weight_decay=(1e-2, 1e-2), batch_size=1000, max_holdout=50, member_loss=loss
        )
        trainer = DynamicsTrainer(data, cfg, seed=0)
        assert len(trainer.train) < cfg.batch_size  # one batch: the same rows for both losses
        nll[loss] = trainer.step()["nll"]
        trained[loss] = trainer.model.net.state_dict()
    assert nll["sum"] == pytest.approx(3 * nll["mean"], rel=1e-5)
    assert any(not torch.equal(trained["mean"][k], trained["sum"][k]) for k in trained["mean"])


def test_bootstrap_gives_each_member_its_own_seeded_resample_reshuffled_every_epoch() -> None:
    """With ``bootstrap`` each member's epoch is a draw with replacement from the training split (repeats,
    never a hold-out row), different per member; the next epoch reshuffles the same draw; the same seed
    draws the same. Without it every member sees each training row once."""
    data = linear_system(300)
    cfg = DynamicsConfig(members=3, elites=1, hidden=(8,), weight_decay=(0.0, 0.0), max_holdout=50)
    plain = DynamicsTrainer(data, cfg, seed=0)
    train = plain.train.sort().values
    assert all(torch.equal(row.sort().values, train) for row in plain.epoch_order())

    boot = DynamicsTrainer(data, replace(cfg, bootstrap=True), seed=0)
    first, second = boot.epoch_order(), boot.epoch_order()
    assert first.shape == (3, len(train))
    assert bool(torch.isin(first, train).all())  # training rows only
    assert all(len(row.unique()) < len(train) for row in first)  # with replacement: repeats
    assert not torch.equal(first[0].sort().values, first[1].sort().values)  # a resample per member
    assert not torch.equal(first, second)  # reshuffled ...
    assert torch.equal(first.sort(-1).values, second.sort(-1).values)  # ... the same draw
    again = DynamicsTrainer(data, replace(cfg, bootstrap=True), seed=0)
    assert torch.equal(again.epoch_order(), first)
    other = DynamicsTrainer(data, replace(cfg, bootstrap=True), seed=1)
    assert not torch.equal(other.epoch_order().sort(-1).values, first.sort(-1).values)
    assert boot.step()["holdout_mse"] > 0  # an epoch trains on it
