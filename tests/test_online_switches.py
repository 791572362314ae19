"""The online phase's switches to the Uni-O4 code's behaviour (docs/uni-o4-fidelity.md): advantage
normalisation over the whole rollout, the linear decay's horizon, reward scaling, unclipped observations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from unio4.configs.loader import load, resolve_config_path
from unio4.learning.checkpoint import load_checkpoint
from unio4.learning.online.ppo import PPO, PPOConfig, RolloutBuffer
from unio4.learning.online.reward_scaling import RewardScaler
from unio4.learning.online.runner import OnlineConfig, train_online
from unio4.learning.policy import GaussianActor, NetworkConfig, ValueCritic

NET = NetworkConfig(actor_hidden=(16,), critic_hidden=(16,), init_std=0.3)


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


def test_batch_advantage_normalisation_standardises_once_over_the_rollout() -> None:
    """One minibatch: the two modes are the same computation; four: each minibatch keeps the batch's scale."""
    same = zip(params_after_update("batch", 1), params_after_update("minibatch", 1))
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in same)  # the moments summed in another order
    differ = zip(params_after_update("batch", 4), params_after_update("minibatch", 4))
    assert not all(torch.equal(a, b) for a, b in differ)


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


def test_unclipped_observations_when_obs_clip_is_null() -> None:
    actor = GaussianActor(4, 2, 1.0, NetworkConfig(actor_hidden=(16,), critic_hidden=(16,), obs_clip=None))
    actor.normalizer.set_statistics(torch.zeros(4), torch.ones(4), freeze=True)
    x = torch.full((1, 4), 50.0)
    assert torch.equal(actor.normalizer(x), x)
    assert float(GaussianActor(4, 2, 1.0, NET).normalizer(x).max()) == pytest.approx(10.0)


@pytest.mark.parametrize(("decay_samples", "expected"), [(None, 0.5), (1000, 1 - 64 / 1000)])
def test_the_linear_decay_spans_the_run_or_a_fixed_number_of_samples(tmp_path: Path, decay_samples: int | None, expected: float) -> None:
    """Two updates of 2 envs x 32 steps: before the second, the run is half over, and 64 samples are done."""
    from unio4.learning.online.gym_env import GymVectorEnv

    env = GymVectorEnv("InvertedPendulum-v4", 2, seed=0)
    ppo = PPOConfig(num_steps=32, epochs=1, num_minibatches=1, lr_schedule="fixed", actor_lr=1e-3, critic_lr=1e-3)
    decay = {"linear_lr_decay": True, "lr_decay_samples": decay_samples}
    cfg = OnlineConfig(iterations=2, save_interval=1, network=NET, ppo=ppo, reward_normalization="running", **decay)  # type: ignore[arg-type]
    train_online(env, cfg, tmp_path, show_progress=False)
    env.close()
    state = load_checkpoint(tmp_path / "checkpoints" / "final.pt")
    assert state["ppo"]["actor_optim"]["param_groups"][0]["lr"] == pytest.approx(1e-3 * expected)
    assert state["reward_scaler"]["count"] == 2 * 32 * 2  # every env's every step, resumable


def test_the_paper_presets_switch_every_switchable_row() -> None:
    online = load(OnlineConfig, resolve_config_path("uni_o4_paper_online_hopper_medium", "train"), [])
    assert online.lr_decay_samples == 3_000_000 and online.ppo.advantage_normalization == "batch"
    assert online.reward_scale == pytest.approx(0.1) and online.network.obs_clip is None and online.ppo.value_clip == 0.05
    cheetah = load(OnlineConfig, resolve_config_path("uni_o4_paper_online_halfcheetah_medium", "train"), [])
    assert cheetah.reward_normalization == "running" and cheetah.reward_scale == 1.0
    assert np.isclose(online.iterations * online.ppo.num_steps, 3_000_000, rtol=1e-3)
