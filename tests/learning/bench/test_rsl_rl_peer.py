"""The rsl_rl peer (learning/bench/rsl_rl_peer.py) that the time-to-walk instrument judges beside unio4's PPO."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from unio4.configs.loader import load, resolve_config_path
from unio4.learning.bench.time_to_walk import WalkCriterion, WalkRun
from unio4.learning.online.runner import OnlineConfig
from unio4.sim.config import load_task_config

FORWARD = ["commands.lin_vel_x=[0.5,0.5]", "commands.lin_vel_y=[0,0]", "commands.ang_vel_yaw=[0,0]", "randomization.enabled=false"]


def test_rsl_rl_config_carries_the_preset() -> None:
    """rsl_rl runs with the unio4 preset's networks and PPO settings, or refuses what it cannot match."""
    from unio4.learning.bench.rsl_rl_peer import rsl_rl_config

    preset = load(OnlineConfig, resolve_config_path("ppo_go1", "train"), [])
    cfg = rsl_rl_config(preset)
    assert cfg["actor"]["hidden_dims"] == list(preset.network.actor_hidden)
    assert cfg["critic"]["hidden_dims"] == list(preset.network.critic_hidden)
    assert cfg["actor"]["distribution_cfg"]["init_std"] == preset.network.init_std
    alg = cfg["algorithm"]
    assert (alg["num_learning_epochs"], alg["num_mini_batches"], alg["learning_rate"]) == (
        preset.ppo.epochs,
        preset.ppo.num_minibatches,
        preset.ppo.actor_lr,
    )
    with pytest.raises(ValueError, match="one learning rate"):
        rsl_rl_config(replace(preset, ppo=replace(preset.ppo, critic_lr=3e-4)))


def test_rsl_rl_ppo_trains_on_the_go1_task_and_is_judged(tmp_path: Path) -> None:
    """The adapter feeds rsl_rl's own PPO; its policy moves and the same checker judges it."""
    from unio4.learning.bench.rsl_rl_peer import rsl_rl_time_to_walk

    task_cfg = load_task_config("go1_flat", FORWARD)
    preset = load(OnlineConfig, resolve_config_path("ppo_go1", "train"), [])
    preset = replace(preset, ppo=replace(preset.ppo, num_steps=8))
    criterion = WalkCriterion(num_envs=2, seconds=1.0)
    result = rsl_rl_time_to_walk(WalkRun(task_cfg, preset, tmp_path, 8, 128, 64, criterion, show_progress=False, num_threads=1))
    rows = [json.loads(line) for line in (tmp_path / "walk.jsonl").read_text().splitlines()]
    assert [r["samples"] for r in rows] == [64, 128] and not result.walked
    assert all(torch.isfinite(torch.tensor(r["lin_vel_error"])) for r in rows)
    saved = torch.load(tmp_path / "model.pt", weights_only=False)
    assert saved["iter"] == 0  # rsl_rl's own checkpoint format
    actor = saved["actor_state_dict"]
    std = actor["distribution.std_param"]
    assert not torch.allclose(std, torch.full_like(std, preset.network.init_std))  # PPO updated the policy
    assert float(actor["obs_normalizer.count"]) == 128  # and its normaliser saw every sample
    assert (tmp_path / "curves.png").is_file() and (tmp_path / "metrics.jsonl").is_file()
