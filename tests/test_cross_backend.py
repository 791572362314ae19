"""The same Go1 task over MuJoCo, MuJoCo Warp (Warp's CPU device here) and PyBullet.

Agreement is checked on base trajectories from the same initial state under the same joint
targets; each engine must also stand and walk with the built-in trot. MuJoCo Warp runs the same
MJCF and PD law as MuJoCo, so it must agree to float32 precision on flat ground, including
per-robot randomisation, pushes and resets; PyBullet is a different engine and gets centimetres.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from unio4.sim.config import load_task_config
from unio4.sim.gait import walk
from unio4.sim.task import Go1VelocityTask

STILL = ["commands.lin_vel_x=[0,0]", "commands.lin_vel_y=[0,0]", "commands.ang_vel_yaw=[0,0]"]


def open_loop(backend: str, steps: int = 50) -> torch.Tensor:
    """Base position + orientation over 1 s of squats (the same joint-target sequence), no randomisation."""
    task = Go1VelocityTask(load_task_config("go1_flat", ["randomization.enabled=false", *STILL]), 1, backend=backend, seed=0)
    task.reset(seed=0)
    rows = []
    for t in range(steps):
        phase = 2 * math.pi * 2.0 * t * task.dt
        action = torch.zeros(1, 12)
        action[0, 1::3], action[0, 2::3] = 0.6 * math.sin(phase), -0.6 * math.sin(phase)
        task.step(action)
        rows.append(torch.cat([task.state.base_pos[0], task.state.base_quat[0]]))
    task.close()
    return torch.stack(rows)


def pose_error(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float, float]:
    """Max xy distance, max z distance (m) and max orientation angle (rad) between two pose tracks."""
    angle = 2 * torch.acos((a[:, 3:] * b[:, 3:]).sum(-1).abs().clamp(max=1.0))
    return float((a[:, :2] - b[:, :2]).abs().max()), float((a[:, 2] - b[:, 2]).abs().max()), float(angle.max())


def test_same_targets_same_trajectory_in_every_engine() -> None:
    """Over 1 s of squats. MuJoCo Warp vs MuJoCo: 1 mm, 0.01 rad (measured 3 um; the angle is float32
    acos noise). PyBullet vs MuJoCo: 3 cm, 0.05 rad (measured 1.3 cm xy, 2.0 cm z, 0.017 rad)."""
    mj = open_loop("mujoco")
    assert float(mj[:, 2].max() - mj[:, 2].min()) > 0.05  # the squats really moved the base
    xy, z, angle = pose_error(mj, open_loop("mujoco_warp"))
    assert xy < 1e-3 and z < 1e-3 and angle < 0.01
    xy, z, angle = pose_error(mj, open_loop("pybullet"))
    assert xy < 0.03 and z < 0.03 and angle < 0.05


def randomised_rollout(
    backend: str, task_name: str, num_envs: int, steps: int, extra: tuple[str, ...] = ()
) -> tuple[torch.Tensor, torch.Tensor]:
    """Base positions and rewards of a fully randomised task (friction, mass, gains, latency, noise,
    pushes every 0.2 s, resets) under a fixed action sequence."""
    cfg = load_task_config(task_name, ["randomization.push_interval_s=0.2", *extra])
    task = Go1VelocityTask(cfg, num_envs, backend=backend, seed=3)
    task.reset(seed=3)
    positions, rewards = [], []
    for i in range(steps):
        _, reward, _, _, _ = task.step(0.3 * torch.sin(torch.arange(12.0) + 0.3 * i).repeat(num_envs, 1))
        positions.append(task.state.base_pos.clone())
        rewards.append(reward)
    if backend == "mujoco_warp":  # every robot really got its own dynamics
        assert task.backend.friction[:, 0, 0].unique().numel() == num_envs  # type: ignore[attr-defined]
        assert task.backend.body_mass[:, 1].unique().numel() == num_envs  # type: ignore[attr-defined]
    task.close()
    return torch.stack(positions), torch.stack(rewards)


def test_warp_matches_mujoco_under_per_robot_randomisation() -> None:
    """Per-world friction/mass/gains, pushes and resets land in the same place in both engines (measured 2 um)."""
    pos_mj, rew_mj = randomised_rollout("mujoco", "go1_flat", 4, 30)
    pos_wp, rew_wp = randomised_rollout("mujoco_warp", "go1_flat", 4, 30)
    assert float((pos_mj - pos_wp).abs().max()) < 1e-3
    assert float((rew_mj - rew_wp).abs().max()) < 1e-3


def test_warp_heightfield_terrain_agrees_with_mujoco() -> None:
    """Stairs (a heightfield): within 5 cm over 0.3 s of the same actions (measured 2.2 cm).

    This caught a spawn bug: robots spawned above the nearest height sample had feet inside the next
    stair, which MuJoCo pushed out slowly and MuJoCo Warp launched the robot from (4.0 m apart after
    0.3 s with ``terrain.spawn_footprint=0 terrain.spawn_clearance=0``).
    """
    pos_mj, _ = randomised_rollout("mujoco", "go1_rough", 4, 15, ("terrain.types=[stairs]",))
    pos_wp, _ = randomised_rollout("mujoco_warp", "go1_rough", 4, 15, ("terrain.types=[stairs]",))
    assert float((pos_mj - pos_wp).abs().max()) < 0.05


@pytest.mark.parametrize("backend", ["mujoco_warp", "pybullet"])
def test_robot_stands_and_trots(backend: str) -> None:
    cfg = load_task_config("go1_flat", ["commands.lin_vel_x=[0.5,0.5]", "commands.lin_vel_y=[0,0]", "commands.ang_vel_yaw=[0,0]"])
    task = Go1VelocityTask(cfg, 3, backend=backend, seed=1)
    task.reset(seed=1)
    for _ in range(50):  # 1 s holding the default pose
        _, _, terminated, _, _ = task.step(torch.zeros(3, 12))
        assert not bool(terminated.any())
    assert bool(((task.state.base_pos[:, 2] > 0.22) & (task.state.base_pos[:, 2] < 0.34)).all())
    result = walk(task, 6.0)
    task.close()
    assert not bool(result.fell.any())
    assert float(result.distance.min()) > 0.5


def test_train_online_on_mujoco_warp(tmp_path: Path) -> None:
    """``unio4 train online --backend mujoco_warp``: PPO updates on Warp-simulated robots and a checkpoint."""
    from unio4.cli import main

    run = tmp_path / "ppo"
    args = ["train", "online", "--backend", "mujoco_warp", "--num-envs", "4", "--iterations", "2", "--out", str(run)]
    assert main([*args, "--set", "train.ppo.num_steps=8"]) == 0
    assert (run / "checkpoints" / "final.pt").is_file()
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(metrics) == 2 and all(math.isfinite(m["reward/step"]) for m in metrics)
    assert torch.load(run / "checkpoints" / "final.pt", weights_only=True)["backend"] == "mujoco_warp"
