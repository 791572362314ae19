"""PPO pieces that can fail: GAE with time-outs, the clipped surrogate, and learning on the Go1 task."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from unio4.learning.online.ppo import PPO, PPOConfig, RolloutBuffer, surrogate_loss
from unio4.learning.online.runner import OnlineConfig, train_online
from unio4.learning.policy import GaussianActor, NetworkConfig, ValueCritic


def test_gae_matches_hand_computation() -> None:
    buf = RolloutBuffer(3, 1, 1, 1, 1)
    gamma, lam = 0.9, 0.8
    values, rewards, dones = [1.0, 2.0, 3.0], [0.5, 1.0, 2.0], [0.0, 1.0, 0.0]
    for v, r, d in zip(values, rewards, dones):
        buf.add(
            torch.zeros(1, 1), torch.zeros(1, 1), torch.zeros(1, 1), torch.zeros(1), torch.tensor([v]), torch.tensor([r]), torch.tensor([d])
        )
    buf.compute_returns(torch.tensor([4.0]), gamma, lam)
    d2 = 2.0 + gamma * 4.0 - 3.0
    d1 = 1.0 - 2.0  # episode ended at t=1: no bootstrap
    d0 = 0.5 + gamma * 2.0 - 1.0
    expected = [d0 + gamma * lam * d1, d1, d2]
    assert buf.advantages[:, 0].tolist() == pytest.approx(expected)
    assert buf.returns[:, 0].tolist() == pytest.approx([a + v for a, v in zip(expected, values)])


def test_clipped_surrogate_gradient() -> None:
    old = torch.zeros(4)
    adv = torch.tensor([1.0, 1.0, -1.0, -1.0])
    # ratios 1.5 (clipped for A>0), 0.9 (inside), 0.5 (clipped for A<0), 1.1 (inside)
    new = torch.log(torch.tensor([1.5, 0.9, 0.5, 1.1])).requires_grad_(True)
    loss = surrogate_loss(new, old, adv, clip=0.2)
    loss.backward()
    grad = new.grad
    assert grad is not None
    assert grad[0] == 0.0 and grad[2] == 0.0  # clipped: no gradient
    assert grad[1] == pytest.approx(-0.9 / 4) and grad[3] == pytest.approx(1.1 / 4)
    assert loss.item() == pytest.approx(-(1.2 + 0.9 - 0.8 - 1.1) / 4)


def test_actor_initial_std_and_bounds() -> None:
    actor = GaussianActor(5, 3, action_bound=1.0, cfg=NetworkConfig(actor_hidden=(16,), init_std=0.5))
    mean, log_std = actor(torch.randn(100, 5) * 100)
    assert mean.abs().max() <= 1.0
    assert log_std.exp().mean().item() == pytest.approx(0.5, rel=0.05)
    assert ((log_std >= -5.0) & (log_std <= 0.0)).all()


def far_off_policy_buffer(actor: GaussianActor) -> RolloutBuffer:
    """A batch whose actions lie 2 std from the actor's mean, with random advantages: updates move a lot."""
    torch.manual_seed(0)
    buf = RolloutBuffer(8, 16, 4, 4, 2)
    for _ in range(8):
        obs = torch.randn(16, 4)
        with torch.no_grad():
            mean, log_std = actor(obs)
            actions = mean + 2.0 * log_std.exp() * torch.randn(16, 2).sign()
            log_probs = actor.distribution(obs).log_prob(actions).sum(-1)
        buf.add(obs, obs, actions, log_probs, torch.zeros(16), torch.randn(16), torch.zeros(16))
    buf.compute_returns(torch.zeros(16), 0.99, 0.95)
    return buf


@pytest.mark.parametrize("target_kl", [None, 1e-4])
def test_target_kl_stops_the_actor_within_an_update(target_kl: float | None) -> None:
    net = NetworkConfig(actor_hidden=(16,), critic_hidden=(16,), init_std=0.05)
    actor, critic = GaussianActor(4, 2, 1.0, net), ValueCritic(4, net)
    cfg = PPOConfig(epochs=4, num_minibatches=4, actor_lr=1e-2, lr_schedule="fixed", target_kl=target_kl)
    before = [p.detach().clone() for p in actor.parameters()]
    stats = PPO(actor, critic, cfg).update(far_off_policy_buffer(actor))
    moved = any(not torch.equal(a, b) for a, b in zip(before, actor.parameters()))
    if target_kl is None:
        assert stats["actor_steps"] == 16 and moved
    else:  # the first minibatch is on-policy (KL 0); after one step at lr 1e-2 the KL exceeds 1e-4
        assert stats["actor_steps"] == 1 and moved


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


def test_ppo_solves_inverted_pendulum(tmp_path: Path) -> None:
    """The same PPO solves a standard gymnasium task (MuJoCo InvertedPendulum-v4, max return 1000)."""
    from unio4.learning.online.gym_env import GymVectorEnv

    env = GymVectorEnv("InvertedPendulum-v4", 8, seed=0)
    online = OnlineConfig(
        seed=0,
        iterations=20,
        save_interval=1000,
        network=NetworkConfig(actor_hidden=(64, 64), critic_hidden=(64, 64), init_std=0.6, activation="tanh"),
        ppo=PPOConfig(num_steps=256, epochs=10, num_minibatches=8, lr_schedule="fixed", actor_lr=3e-4, critic_lr=1e-3, entropy_coef=0.0),
    )
    result = train_online(env, online, tmp_path, show_progress=False)
    returns = [row["episode/return"] for row in result.history if "episode/return" in row]
    assert returns[0] < 100
    assert max(returns[-5:]) >= 900, returns
    env.close()


def _value_after_updates(ppo_cfg: PPOConfig, updates: int, reward: float) -> tuple[float, float, dict[str, float]]:
    """V on a stream of constant rewards after ``updates`` PPO updates, the discounted return it should
    reach, and the last update's statistics."""
    torch.manual_seed(0)
    net = NetworkConfig(actor_hidden=(32,), critic_hidden=(64, 64), normalize_observations=False)
    actor, critic = GaussianActor(4, 2, 1.0, net), ValueCritic(4, net)
    ppo = PPO(actor, critic, ppo_cfg, seed=0)
    num_envs = 4
    ppo.init_storage(num_envs, 4, 4, 2, "cpu")
    obs = torch.randn(num_envs, 4)
    never = torch.zeros(num_envs, dtype=torch.bool)
    for _ in range(updates):
        for _ in range(ppo_cfg.num_steps):
            ppo.act(obs, obs)
            ppo.process_env_step(torch.full((num_envs,), reward), never, never, {})
        ppo.compute_returns(obs)
        stats = ppo.update()
    with torch.no_grad():
        return float(critic(obs).mean()), reward / (1.0 - ppo_cfg.gamma), stats


def test_online_value_function_tracks_returns_of_a_known_scale() -> None:
    """Uni-O4's online preset: V follows returns in the hundreds; the absolute clip of 0.05 froze it."""
    from unio4.configs.loader import load, resolve_config_path

    preset = replace(load(OnlineConfig, resolve_config_path("uni_o4_online", "train"), []).ppo, num_steps=512)
    assert preset.value_clip is None
    tracked, target, tracked_stats = _value_after_updates(preset, 3, reward=3.0)  # target 300
    frozen, _, frozen_stats = _value_after_updates(replace(preset, value_clip=0.05), 3, reward=3.0)
    relative, _, _ = _value_after_updates(replace(preset, value_clip=0.05, value_clip_scale="returns"), 3, reward=3.0)
    assert frozen < 3 * 0.05 + 1.0, frozen  # at most 0.05 per update (+ the untrained critic's output)
    assert frozen + 3.0 < relative < tracked, (frozen, relative, tracked)
    assert tracked > 0.3 * target, tracked
    # the logged diagnostic tells the two apart: a frozen V misses the returns by their whole scale
    assert frozen_stats["relative_error"] > 0.95, frozen_stats
    assert tracked_stats["relative_error"] < 0.8 * frozen_stats["relative_error"], (tracked_stats, frozen_stats)
