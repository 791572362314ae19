"""The V refit before online PPO (learning/online/value_refit.py, ``critic_init: refit``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from unio4.configs.loader import ConfigError, load, resolve_config_path
from unio4.learning.checkpoint import load_checkpoint
from unio4.learning.data.dataset import Dataset
from unio4.learning.online.ppo import PPOConfig
from unio4.learning.online.reward_scaling import RewardScaler
from unio4.learning.online.runner import OnlineConfig, train_online
from unio4.learning.online.value_refit import ValueRefitConfig, refit_network, refit_value, scaled_rewards
from unio4.learning.policy import NetworkConfig, ValueCritic

GAMMA = 0.9
LENGTH = 20  # steps per episode


def episodes(count: int, obs_dim: int = 3) -> tuple[Dataset, torch.Tensor]:
    """``count`` episodes of LENGTH steps paying 1 per step, ending alternately in a terminal and a time-out;
    the first observation is the time left, so V is a function of it. Returns the data and the returns x 0.1."""
    left = torch.arange(LENGTH, 0, -1, dtype=torch.float32).repeat(count)
    obs = torch.zeros(len(left), obs_dim)
    obs[:, 0] = left / LENGTH
    ends = left == 1
    terminal = ends & (torch.arange(len(left)) // LENGTH % 2 == 0)
    data = Dataset(obs, torch.zeros(len(left), 1), torch.ones(len(left)), terminal, ends & ~terminal, obs.clone())
    data.validate()
    return data, 0.1 * (1 - GAMMA**left) / (1 - GAMMA)  # cut at the time-outs too, no bootstrap


def test_the_refit_regresses_v_to_the_scaled_monte_carlo_returns() -> None:
    data, expected = episodes(15)
    cfg = ValueRefitConfig(steps=600, lr=1e-3, batch_size=64, hidden=(64, 64), log_interval=500)
    torch.manual_seed(0)
    critic = ValueCritic(3, refit_network(NetworkConfig(), cfg))
    result = refit_value(critic, data, cfg, GAMMA, reward_scale=0.1, reward_normalization="none", seed=0, show_progress=False)
    assert result.final_loss < result.first_loss / 20 and result.explained_variance > 0.98
    with torch.no_grad():
        values = critic(data.observations)
    assert torch.allclose(values, expected, atol=0.03)  # returns from 0.1 to 0.88
    assert isinstance(critic.net[-1], torch.nn.ReLU) and bool(critic.normalizer.frozen) and result.scaler_state is None


def test_running_scaling_follows_the_online_scaler_row_by_row() -> None:
    """With ``reward_normalization: running`` the targets are what one env's RewardScaler pays, and its
    statistics are what the online scaler starts from."""
    rewards = torch.rand(97, generator=torch.Generator().manual_seed(1)) + 0.5
    ends = torch.zeros(97, dtype=torch.bool)
    ends[[9, 40, 96]] = True
    out, state = scaled_rewards(rewards, ends, GAMMA, 0.5, "running")
    scaler = RewardScaler(1, GAMMA, 0.5, "running", "cpu")
    online = torch.cat([scaler(r.view(1), e.view(1)) for r, e in zip(rewards, ends)])
    assert torch.allclose(out, online, rtol=1e-6) and state is not None
    assert state["count"] == scaler.count and state["mean"] == pytest.approx(scaler.mean) and state["m2"] == pytest.approx(scaler.m2)
    plain, no_state = scaled_rewards(rewards, ends, GAMMA, 0.5, "none")
    assert torch.equal(plain, rewards * 0.5) and no_state is None


def test_the_refit_settings_are_checked() -> None:
    assert ValueRefitConfig() == ValueRefitConfig(steps=1_000_000, lr=1e-4, batch_size=512, hidden=(256, 256, 256), output_relu=True)
    for bad in ({"steps": 0}, {"lr": 0.0}, {"batch_size": 0}, {"hidden": (256, 0)}, {"log_interval": 0}):
        with pytest.raises(ConfigError):
            ValueRefitConfig(**bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="critic_init"):
        OnlineConfig(critic_init="fresh")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="steps"):
        load(OnlineConfig, resolve_config_path("uni_o4_online", "train"), ["critic_init=refit", "value_refit.steps=-1"])
    paper = load(OnlineConfig, resolve_config_path("uni_o4_paper_online_hopper_medium", "train"), [])
    assert paper.critic_init == "offline"  # the lead decides after measuring
    # a ReLU output adds no parameters: checkpoints load across the two
    linear, relu = ValueCritic(3, NetworkConfig()), ValueCritic(3, NetworkConfig(critic_output="relu"))
    relu.load_state_dict(linear.state_dict())


def test_train_online_refits_before_the_first_update(tmp_path: Path) -> None:
    """From a checkpoint-like init, the refit's critic replaces the offline one, the running scaler
    continues from the pass over the data, and the run records the fit."""
    from unio4.learning.online.gym_env import GymVectorEnv

    data, _ = episodes(4, obs_dim=4)
    env = GymVectorEnv("InvertedPendulum-v4", 1, seed=0)
    net = NetworkConfig(actor_hidden=(16,), critic_hidden=(16,), init_std=0.3)
    ppo = PPOConfig(num_steps=32, epochs=1, num_minibatches=1, actor_lr=1e-3, critic_lr=1e-3)
    refit = ValueRefitConfig(steps=20, hidden=(8, 8), batch_size=16, log_interval=10)
    cfg = OnlineConfig(iterations=1, network=net, ppo=ppo, reward_normalization="running", critic_init="refit", value_refit=refit)
    init = {"actor": train_online_actor_state(env, net), "critic": ValueCritic(4, net).state_dict()}
    train_online(env, cfg, tmp_path, init=init, show_progress=False, refit_data=data)
    env.close()
    state = load_checkpoint(tmp_path / "checkpoints" / "final.pt")
    assert state["critic"]["net.4.weight"].shape == (1, 8) and state["config"]["network"]["critic_output"] == "relu"
    assert state["reward_scaler"]["count"] == len(data) + 32
    assert "refit/value_loss" in (tmp_path / "metrics.jsonl").read_text().splitlines()[0]
    with pytest.raises(ValueError, match="--data"):
        train_online(env, cfg, tmp_path / "again", show_progress=False)


def train_online_actor_state(env: object, net: NetworkConfig) -> dict[str, torch.Tensor]:
    """A fresh actor's weights for ``env`` (what ``--init`` would bring)."""
    from unio4.learning.online.runner import build_agent

    actor, _ = build_agent(env, OnlineConfig(network=net))  # type: ignore[arg-type]
    return actor.state_dict()


def test_the_cli_refuses_a_refit_without_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from unio4.cli import main

    args = ["train", "online", "--env", "Hopper-v4", "--set", "train.critic_init=refit", "--out", str(tmp_path / "run"), "--logger", "none"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("unio4: error:") and "--data" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "run").exists()
