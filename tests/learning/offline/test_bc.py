"""Uni-O4's BC ensemble: one batched model, both regularisers, exact extraction of a member."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import gymnasium as gym
import pytest
import torch

from unio4.learning.data.dataset import Dataset
from unio4.learning.offline.bc import ActorEnsemble, BCConfig, ensemble_loss, gaussian_kl, make_actor, save_bc_checkpoint, train_bc
from unio4.learning.online.runner import OnlineConfig, build_agent, load_init
from unio4.learning.policy import NetworkConfig

NET = NetworkConfig(actor_hidden=(32, 32), init_std=0.5)


def noisy_expert(n: int = 2048) -> Dataset:
    """Actions are a fixed function of the state plus wide noise: room for members to disagree."""
    g = torch.Generator().manual_seed(0)
    obs = torch.randn(n, 4, generator=g)
    actions = (torch.tanh(obs[:, :2] - obs[:, 2:]) + 0.3 * torch.randn(n, 2, generator=g)).clamp(-1, 1)
    ends = torch.zeros(n, dtype=torch.bool)
    ends[-1] = True
    return Dataset(obs, actions, torch.zeros(n), torch.zeros(n, dtype=torch.bool), ends, obs.clone())


def pairwise_kl(ensemble: ActorEnsemble, obs: torch.Tensor) -> float:
    with torch.no_grad():
        mean, log_std = ensemble(obs)
    kl = gaussian_kl(mean.unsqueeze(1), log_std.unsqueeze(1), mean.unsqueeze(0), log_std.unsqueeze(0)).mean(-1)
    n = mean.shape[0]
    return float(kl.sum() / (n * (n - 1)))


def test_batched_forward_equals_each_member() -> None:
    members = [make_actor(4, 2, 1.0, NET) for _ in range(3)]
    ensemble = ActorEnsemble(members)
    obs = torch.randn(16, 4)
    mean, log_std = ensemble(obs)
    assert mean.shape == (3, 16, 2)
    for i, actor in enumerate(members):
        m, s = actor(obs)
        torch.testing.assert_close(mean[i], m)
        torch.testing.assert_close(log_std[i], s)
        extracted = ensemble.member(i, members[0])
        assert torch.equal(extracted(obs)[0], m)


def test_kl_regulariser_makes_members_differ_and_plain_bc_does_not() -> None:
    data = noisy_expert()
    obs = data.observations[:512]
    spread = {}
    for reg in ("none", "paper", "kl"):
        cfg = BCConfig(members=4, steps=600, batch_size=256, lr=3e-3, regularizer=reg, alpha=0.5, network=NET)
        ensemble, _, history = train_bc(data, cfg, action_bound=1.0)
        spread[reg] = pairwise_kl(ensemble, obs)
        assert history[-1]["nll"] < history[0]["nll"]  # all three still fit the data
    # Without a real repulsion the members converge to the same fit; with the KL term they stay apart.
    assert spread["kl"] > 3 * spread["none"], spread
    assert spread["paper"] < 2 * spread["none"], spread


def test_paper_regulariser_has_no_gradient_through_the_max() -> None:
    torch.manual_seed(0)
    mean = torch.randn(3, 8, 2, requires_grad=True)
    log_std = torch.full((3, 8, 2), -0.5, requires_grad=True)
    actions = torch.randn(8, 2)
    none, _ = ensemble_loss(mean, log_std, actions, BCConfig(members=3, regularizer="none"))
    paper, _ = ensemble_loss(mean, log_std, actions, BCConfig(members=3, regularizer="paper", alpha=0.1))
    g_none = torch.autograd.grad(none, mean)[0]
    g_paper = torch.autograd.grad(paper, mean)[0]
    torch.testing.assert_close(g_paper, 1.1 * g_none)  # only rescales BC by 1 + alpha


def test_kl_repulsion_stops_at_the_cap() -> None:
    """Members closer than ``kl_cap`` are pushed apart; beyond it only BC acts (unbounded, the
    repulsion drove a Go1 member to the action bounds)."""
    torch.manual_seed(0)
    actions = torch.randn(8, 2)
    log_std = torch.full((3, 8, 2), -0.5)
    cfg = BCConfig(members=3, regularizer="kl", alpha=0.1, kl_cap=1.0)
    for spread, repelled in ((0.05, True), (5.0, False)):  # KL ~ 0.005 vs ~ 70 nats between members
        mean = (spread * torch.arange(3.0).view(3, 1, 1) + 0.01 * torch.randn(3, 8, 2)).requires_grad_(True)
        kl, _ = ensemble_loss(mean, log_std, actions, cfg)
        none, _ = ensemble_loss(mean, log_std, actions, BCConfig(members=3, regularizer="none"))
        g_kl, g_none = torch.autograd.grad(kl, mean)[0], torch.autograd.grad(none, mean)[0]
        assert torch.allclose(g_kl, g_none) != repelled


def test_config_rejects_regulariser_without_members() -> None:
    with pytest.raises(ValueError, match="needs members >= 2"):
        BCConfig(members=1, regularizer="kl")


def test_online_learner_loads_exactly_the_offline_policy(tmp_path: Path) -> None:
    data = noisy_expert(512)
    cfg = BCConfig(members=2, steps=50, batch_size=128, regularizer="kl", network=NET)
    ensemble, template, _ = train_bc(data, cfg, action_bound=1.0)
    save_bc_checkpoint(tmp_path / "bc.pt", ensemble, template, cfg, data, member=1)
    init, online = load_init(tmp_path / "bc.pt", OnlineConfig())
    assert online.network.actor_hidden == (32, 32)

    spec = SimpleNamespace(num_obs=4, num_critic_obs=4, num_actions=2, single_action_space=gym.spaces.Box(-1.0, 1.0, (2,)))
    actor, _ = build_agent(spec, online)  # type: ignore[arg-type]
    actor.load_state_dict(init["actor"])
    obs = data.observations[:64]
    mean, log_std = ensemble(obs)
    m, s = actor(obs)
    assert torch.equal(m, mean[1].detach()) and torch.equal(s, log_std[1].detach())
    assert bool(actor.normalizer.frozen)  # dataset normalisation stays frozen online


def test_members_can_start_as_a_pretrained_walker() -> None:
    """``bc.init`` (the authors' Go1 offline recipe): every member is the checkpoint's actor, network and
    observation statistics included, before any BC step; a dataset of another size is refused in one line."""
    from unio4.learning.offline.bc import BCTrainer, with_init_network
    from unio4.learning.online.runner import load_init

    walker = str(Path(__file__).parents[2] / "data" / "go1_walker.pt")
    cfg = with_init_network(BCConfig(members=2, init=walker))
    init, online = load_init(walker, OnlineConfig())
    assert cfg.network == online.network  # the checkpoint's architecture, not the preset's
    n, flags = 64, torch.zeros(64, dtype=torch.bool)
    obs = torch.randn(n, 47)
    trainer = BCTrainer(Dataset(obs, torch.zeros(n, 12), torch.zeros(n), flags, flags, obs), cfg, action_bound=10.0)
    reference = make_actor(47, 12, 10.0, online.network)
    reference.load_state_dict(init["actor"])
    mean, _ = trainer.ensemble(obs)
    assert torch.allclose(mean[0], reference(obs)[0], atol=1e-6) and torch.allclose(mean[1], mean[0])
    small = Dataset(obs[:, :40], torch.zeros(n, 12), torch.zeros(n), flags, flags, obs[:, :40])
    with pytest.raises(ValueError, match=r"bc\.init: .*40 observations and 12 actions"):
        BCTrainer(small, cfg, action_bound=10.0)
