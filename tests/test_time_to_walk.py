"""The time-to-walk instrument and the rsl_rl peer that it judges beside unio4's PPO."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from unio4.configs.loader import load, resolve_config_path
from unio4.learning.bench.time_to_walk import WalkChecker, WalkCriterion, WalkRun
from unio4.learning.online.runner import OnlineConfig
from unio4.sim.config import load_task_config
from unio4.sim.policies import gait_policy

FORWARD = ["commands.lin_vel_x=[0.5,0.5]", "commands.lin_vel_y=[0,0]", "commands.ang_vel_yaw=[0,0]", "randomization.enabled=false"]


def test_walk_checker_checks_when_due_and_keeps_the_first_walk(tmp_path: Path) -> None:
    """Standing fails the criterion, the built-in trot passes it; the result keeps the first walk."""
    task_cfg = load_task_config("go1_flat", FORWARD)
    criterion = WalkCriterion(max_lin_vel_error=0.42, max_yaw_rate_error=1.0, num_envs=4, seconds=4.0)
    checker = WalkChecker(task_cfg, tmp_path, check_every_samples=100, criterion=criterion, num_threads=1)
    stand = lambda obs: torch.zeros(obs.shape[0], 12)  # noqa: E731
    trot = gait_policy(checker.judge)
    assert not checker.after_iteration(50, 1.0, 0.0, stand, last=False)  # not due: no check
    assert not checker.after_iteration(100, 1.0, 0.0, stand, last=False)
    assert checker.after_iteration(200, 1.0, 0.0, trot, last=False)
    assert checker.after_iteration(300, 1.0, 0.0, stand, last=True)  # once walked, the result stays
    result = checker.close()
    rows = [json.loads(line) for line in (tmp_path / "walk.jsonl").read_text().splitlines()]
    assert [r["samples"] for r in rows] == [100, 200, 300]
    assert [r["walks"] for r in rows] == [False, True, False]
    assert rows[0]["lin_vel_error"] > 0.45 and rows[1]["lin_vel_error"] < 0.42
    assert result.walked and result.samples == 200 and result.train_seconds == pytest.approx(3.0)
    assert json.loads((tmp_path / "walk_result.json").read_text())["samples"] == 200


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


def test_ppo_from_scratch_beats_standing_on_a_reduced_go1_task(tmp_path: Path) -> None:
    """PPO from scratch learns velocity tracking: go1_flat without domain randomisation (no dynamics
    randomisation, sensor noise or pushes) and with unshaped PD targets, 256 robots, 0.8 M samples
    (~3-4 minutes on 2 CPU cores). The mean action must track both the planar velocity and the yaw
    rate at least 10 % better than standing still, on the same 16 robots and commands. (With
    randomisation the same samples are not enough: docs/benchmarks/time-to-walk.md, "Time to walk". Development
    run: 0.589 vs 0.736 m/s, 0.27 vs 0.44 rad/s. With the targets shaped as on the robot, learning is
    slower: 0.686 m/s at 0.8 M samples, 0.693 at 1.0 M; a check of the learner, this test leaves the
    shaping, tested on its own in tests/test_task.py, out.)"""
    from unio4.learning.online.runner import train_online
    from unio4.learning.policy import GaussianActor
    from unio4.sim.evaluate import tracking_metrics
    from unio4.sim.task import Go1VelocityTask

    task_cfg = load_task_config("go1_flat", ["randomization.enabled=false", "targets.enabled=false"])
    preset = load(OnlineConfig, resolve_config_path("ppo_go1", "train"), [])
    env = Go1VelocityTask(task_cfg, 256, seed=0, training=True)
    trained: list[GaussianActor] = []

    def keep(iteration: int, scalars: dict[str, float], actor: GaussianActor) -> bool:
        trained.append(actor)
        return False

    train_online(env, replace(preset, iterations=130, seed=0), tmp_path, show_progress=False, on_iteration=keep)
    env.close()
    judge = Go1VelocityTask(task_cfg, 16, seed=10_000)
    with torch.no_grad():
        stand = tracking_metrics(judge, lambda obs: torch.zeros(obs.shape[0], 12), 250, seed=10_000)
        learned = tracking_metrics(judge, lambda obs: trained[-1](obs)[0], 250, seed=10_000)
    judge.close()
    assert learned["lin_vel_error"] < 0.9 * stand["lin_vel_error"], (learned, stand)
    assert learned["yaw_rate_error"] < 0.9 * stand["yaw_rate_error"], (learned, stand)
