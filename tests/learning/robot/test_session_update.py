"""The session's PPO update (``learning/robot/session_update.py``): where its critic starts and what rewards it sees
(``critic_init``, ``reward_normalization``: the Uni-O4 real-world recipe, ``configs/session/go1_uni_o4.yaml``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
import yaml

from unio4.configs.loader import load, resolve_config_path, to_dict
from unio4.learning.data.dataset import Dataset
from unio4.learning.online.reward_scaling import RewardScaler
from unio4.learning.policy import NetworkConfig, ValueCritic
from unio4.learning.robot.identify import simulate_features
from unio4.learning.robot.session_config import SessionConfig
from unio4.learning.robot.session_update import IDENTIFY_FILE, IdentifyUpdate, PpoUpdate
from unio4.sim.config import load_task_config

OBS = 6


def dataset(n: int = 64) -> Dataset:
    gen = torch.Generator().manual_seed(0)
    obs = torch.randn(n, OBS, generator=gen)
    timeouts = torch.zeros(n, dtype=torch.bool)
    timeouts[n // 2 - 1] = timeouts[-1] = True
    rewards = 5.0 + torch.rand(n, generator=gen)
    return Dataset(obs, torch.zeros(n, 2), rewards, torch.zeros(n, dtype=torch.bool), timeouts, obs.roll(-1, 0))


def checkpoint_with_v(network: NetworkConfig) -> tuple[dict, ValueCritic]:
    v = ValueCritic(OBS, network)
    with torch.no_grad():
        for p in v.parameters():
            p.fill_(0.123)
    return {"network": to_dict(network), "critic": v.state_dict()}, v


def test_the_offline_v_starts_the_critic_when_asked_and_fits_otherwise() -> None:
    network = NetworkConfig()
    state, offline_v = checkpoint_with_v(network)
    paper = dataclasses.replace(SessionConfig(), critic_init="checkpoint", critic_warmup_epochs=1)
    critic = PpoUpdate(paper, load_task_config("go1_flat")).critic(state, dataset(), OBS)
    x = torch.randn(4, OBS)
    torch.testing.assert_close(critic(x), offline_v(x))  # the offline V, untouched
    fit = PpoUpdate(dataclasses.replace(paper, critic_init="fit"), load_task_config("go1_flat")).critic(state, dataset(), OBS)
    assert not torch.allclose(fit(x), offline_v(x))
    wrong = {**state, "critic": ValueCritic(OBS + 1, network).state_dict()}  # a V on another input (privileged): fitted instead
    fitted = PpoUpdate(paper, load_task_config("go1_flat")).critic(wrong, dataset(), OBS)
    assert not torch.allclose(fitted(x), offline_v(x))


def scaled_rewards(data: Dataset, scaler: RewardScaler) -> torch.Tensor:
    """What PpoUpdate pays the learner: the logged rewards through the session's scaler, in log order."""
    return scaler.scale_sequence(data.rewards, data.terminals | data.timeouts)


def test_running_reward_normalization_divides_by_the_returns_spread_and_carries_over() -> None:
    data = dataset()
    assert scaled_rewards(data, RewardScaler(1, 0.99, 1.0, "none", "cpu")) is data.rewards
    scaler = RewardScaler(1, 0.99, 1.0, "running", "cpu")
    scaled = scaled_rewards(data, scaler)
    assert scaler.count == len(data) and scaled.dtype == data.rewards.dtype
    assert float(scaled[-1]) == pytest.approx(float(data.rewards[-1]) / scaler.std(), rel=1e-5)
    again = RewardScaler(1, 0.99, 1.0, "running", "cpu")
    again.load_state_dict(scaler.state_dict())
    scaled_rewards(data, again)
    assert again.count == 2 * len(data)  # the statistics go on across iterations


def test_the_paper_recipe_preset_says_what_the_authors_code_does() -> None:
    cfg = load(SessionConfig, resolve_config_path("go1_uni_o4", "session"))
    assert cfg.rollouts * cfg.steps == 2048 and 2048 // cfg.ppo.num_minibatches == 128 and cfg.ppo.epochs == 30
    assert (cfg.ppo.clip, cfg.ppo.value_clip, cfg.ppo.actor_lr, cfg.ppo.critic_lr) == (0.05, 0.05, 2e-5, 2e-4)
    assert cfg.critic_init == "checkpoint" and cfg.reward_normalization == "running" and cfg.ppo.advantage_normalization == "batch"
    assert cfg.check.enabled and cfg.update == "ppo"


def test_the_identify_gate_judges_walks_by_the_simulators_speed(tmp_path: Path) -> None:
    """The gate's ``walk_speed_error`` on the identified robot is |true speed - command| from the simulator, not
    leg odometry (whose error changes with the gait): equal to the walks' own ``true_speed`` features."""
    bundle = Path(__file__).parents[3] / "pretrained" / "go1_flat"
    cfg = load(SessionConfig, resolve_config_path("go1_identify", "session"))
    task = load_task_config("go1_flat")
    update = IdentifyUpdate(cfg, task, tmp_path / "task.yaml", rollout_s=3.0)
    (tmp_path / IDENTIFY_FILE).write_text(yaml.safe_dump({"motor_strength": 0.9, "added_mass": 1.0, "fits": {}}))
    measured = update.gate_measures(tmp_path, bundle)["walk_speed_error"]
    commands = list(cfg.identify_commands)
    walks = simulate_features(bundle, task, commands, [(0.9, 1.0, 0.0, 1.0)], 3.0, cfg.identify.skip_s)[(0.9, 1.0, 0.0, 1.0)]
    assert measured == pytest.approx(sum(abs(walks[vx]["true_speed"] - vx) for vx in commands) / len(commands))
    assert all(abs(walks[vx]["true_speed"] - vx) < 0.15 for vx in commands), walks  # the walker tracks, by the truth
