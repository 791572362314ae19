"""``unio4 eval``: a policy on the Go1 task in one physics engine, under randomisation.

The sim-to-sim gate: the same ONNX bundle the robot would run is evaluated in MuJoCo and in
PyBullet, and the numbers are compared. Metrics over ``num_envs`` randomised robots for
``seconds``, with commands drawn from the task's ranges:

- ``lin_vel_error``: mean |v_cmd,xy - v_body,xy| (m/s) over steps where the robot is upright;
- ``yaw_rate_error``: mean |w_cmd,z - w_body,z| (rad/s);
- ``falls_per_robot_minute``: terminations (falls) per robot per minute;
- ``power``: mean mechanical power sum |tau * dq| (W), the energy cost of the gait.

A bundle is judged over the command ranges it was trained on (from its manifest) unless asked
for the task's full ranges. The same metrics judge a policy still in training (:func:`tracking_metrics` takes any callable from
observations to actions), so "it walks" means one thing everywhere.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from unio4.deploy.observations import rotate_inverse
from unio4.sim.config import TaskConfig
from unio4.sim.policies import Policy, bundle_policy
from unio4.sim.task import Go1VelocityTask


@torch.no_grad()
def tracking_metrics(task: Go1VelocityTask, policy: Policy, steps: int, seed: int = 0) -> dict[str, float]:
    """Velocity-tracking metrics of ``policy`` over ``steps`` policy steps of every env of ``task``, from a seeded reset."""
    obs, _ = task.reset(seed=seed)
    lin_err = yaw_err = power = 0.0
    upright = falls = 0
    for _ in range(steps):
        commands = task.commands.clone()
        obs, _, terminated, truncated, _ = task.step(policy(obs))
        alive = ~(terminated | truncated)
        s = task.state
        v_body = rotate_inverse(torch, s.base_quat, s.base_lin_vel_world)
        lin_err += float(torch.norm(commands[:, :2] - v_body[:, :2], dim=1)[alive].sum())
        yaw_err += float((commands[:, 2] - s.base_ang_vel_body[:, 2]).abs()[alive].sum())
        power += float((s.joint_torque * s.joint_vel).abs().sum(1)[alive].sum())
        upright += int(alive.sum())
        falls += int(terminated.sum())
    n = max(upright, 1)
    return {
        "lin_vel_error": lin_err / n,
        "yaw_rate_error": yaw_err / n,
        "falls_per_robot_minute": falls / (task.num_envs * steps * task.dt / 60.0),
        "power": power / n,
    }


def trained_range_config(cfg: TaskConfig, bundle: str | Path) -> TaskConfig:
    """``cfg`` with the command ranges the bundle was trained on (its manifest's ``commands``)."""
    from unio4.deploy.bundle import read_manifest

    trained = read_manifest(bundle, robot=cfg.robot)[1].commands
    ranges = {name: getattr(trained, name) for name in ("lin_vel_x", "lin_vel_y", "ang_vel_yaw")}
    return replace(cfg, commands=replace(cfg.commands, zero_below=trained.zero_below, **ranges))


def evaluate_bundle(
    bundle: str | Path, cfg: TaskConfig, backend: str, num_envs: int, seconds: float, seed: int = 0, full_range: bool = False
) -> dict[str, float]:
    """:func:`tracking_metrics` of an exported bundle (onnxruntime, the mean action) on a fresh task.

    Commands come from the bundle's trained ranges (its manifest), or from ``cfg``'s with ``full_range``.
    """
    cfg = cfg if full_range else trained_range_config(cfg, bundle)
    task = Go1VelocityTask(cfg, num_envs, backend=backend, seed=seed)
    try:
        return tracking_metrics(task, bundle_policy(bundle, task), int(round(seconds / task.dt)), seed=seed)
    finally:
        task.close()
