"""PPO pieces that can fail (learning/online/ppo.py): GAE with time-outs, the clipped surrogate, advantage
normalisation, target KL, the value function's scale, and learning on a gymnasium task. PPO on the Go1 task learns in
tests/test_finetune.py (from a cloned start); from scratch, in the benchmarks (docs/benchmarks/time-to-walk.md)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from unio4.learning.online.ppo import PPO, PPOConfig, RolloutBuffer, surrogate_loss
from unio4.learning.online.runner import OnlineConfig, train_online
from unio4.learning.policy import GaussianActor, NetworkConfig, ValueCritic

NET = NetworkConfig(actor_hidden=(16,), critic_hidden=(16,), init_std=0.3)


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


def test_the_anchor_keeps_the_mean_near_the_start_policy_on_noise_advantages() -> None:
    """Random advantages carry no signal: without the anchor the mean wanders; with it, it stays near the start."""
    net = NetworkConfig(actor_hidden=(16,), critic_hidden=(16,), init_std=0.3)
    moves = {}
    for coef in (0.0, 10.0):
        torch.manual_seed(0)
        actor, critic = GaussianActor(4, 2, 1.0, net), ValueCritic(4, net)
        ppo = PPO(actor, critic, PPOConfig(epochs=4, num_minibatches=4, actor_lr=3e-3, lr_schedule="fixed", anchor_coef=coef))
        ppo.set_anchor(actor)
        probe = torch.randn(256, 4)
        start = actor(probe)[0].detach()
        torch.manual_seed(1)
        for _ in range(10):
            stats = ppo.update(far_off_policy_buffer(actor))
        moves[coef] = (actor(probe)[0].detach() - start).abs().mean().item()
        assert stats["anchor_kl"] >= 0
    assert moves[10.0] < 0.5 * moves[0.0], moves


def test_an_anchor_needs_a_start_policy(tmp_path: Path) -> None:
    from unio4.learning.online.gym_env import GymVectorEnv

    env = GymVectorEnv("InvertedPendulum-v4", 2, seed=0)
    cfg = OnlineConfig(iterations=1, ppo=PPOConfig(num_steps=8, anchor_coef=1.0))
    try:
        with pytest.raises(ValueError, match="anchor_coef"):
            train_online(env, cfg, tmp_path, show_progress=False)
    finally:
        env.close()


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


def random_buffer() -> RolloutBuffer:
    """A rollout of 8 steps x 16 envs with rewards whose advantages differ between minibatches."""
    gen = torch.Generator().manual_seed(0)
    buf = RolloutBuffer(8, 16, 4, 4, 2)
    for t in range(8):
        obs = torch.randn(16, 4, generator=gen)
        actions = torch.randn(16, 2, generator=gen)
        rewards = torch.randn(16, generator=gen) + 3.0 * t
        buf.add(obs, obs, actions, torch.full((16,), -2.0), torch.zeros(16), rewards, torch.zeros(16))
    buf.compute_returns(torch.zeros(16), 0.99, 0.95)
    return buf


def params_after_update(mode: str, minibatches: int) -> list[torch.Tensor]:
    torch.manual_seed(0)
    actor, critic = GaussianActor(4, 2, 1.0, NET), ValueCritic(4, NET)
    cfg = PPOConfig(epochs=1, num_minibatches=minibatches, lr_schedule="fixed", advantage_normalization=mode)  # type: ignore[arg-type]
    PPO(actor, critic, cfg, seed=0).update(random_buffer())
    return [p.detach().clone() for p in actor.parameters()]


def test_a_minibatch_of_one_sample_leaves_the_networks_finite() -> None:
    """A rollout cut short to 4 samples in 4 minibatches: standardising one advantage must not divide by a NaN."""
    torch.manual_seed(0)
    actor, critic = GaussianActor(4, 2, 1.0, NET), ValueCritic(4, NET)
    buf = RolloutBuffer(1, 4, 4, 4, 2)
    obs = torch.randn(4, 4)
    buf.add(obs, obs, torch.randn(4, 2), torch.full((4,), -2.0), torch.zeros(4), torch.randn(4), torch.zeros(4))
    buf.compute_returns(torch.zeros(4), 0.99, 0.95)
    PPO(actor, critic, PPOConfig(epochs=2, num_minibatches=4, lr_schedule="fixed"), seed=0).update(buf)
    assert all(torch.isfinite(p).all() for p in [*actor.parameters(), *critic.parameters()])


def test_batch_advantage_normalisation_standardises_once_over_the_rollout() -> None:
    """One minibatch: the two modes are the same computation; four: each minibatch keeps the batch's scale."""
    same = zip(params_after_update("batch", 1), params_after_update("minibatch", 1))
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in same)  # the moments summed in another order
    differ = zip(params_after_update("batch", 4), params_after_update("minibatch", 4))
    assert not all(torch.equal(a, b) for a, b in differ)
