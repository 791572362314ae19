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

:func:`evaluate_bundle_gait` also records the walk and scores the gait itself (foot clearance and
slip, knees and body on the ground, posture, vibration, torque limits, cost of transport, duty factor,
stepping frequency: :mod:`unio4.sim.gait_metrics`, docs/gait.md); the gate's :func:`evaluate_bundle` does not pay for it.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from unio4.sim.config import TaskConfig
from unio4.sim.gait_metrics import GaitMetrics, GaitMetricsConfig
from unio4.sim.gait_recording import GaitRecorder
from unio4.sim.policies import Policy, bundle_policy
from unio4.sim.task import Go1VelocityTask


@torch.no_grad()
def tracking_metrics(
    task: Go1VelocityTask, policy: Policy, steps: int, seed: int = 0, recorder: GaitRecorder | None = None
) -> dict[str, float]:
    """Velocity-tracking metrics of ``policy`` over ``steps`` policy steps of every env of ``task``, from a seeded reset.

    ``recorder`` (optional) records every step for the gait metrics.
    """
    obs, _ = task.reset(seed=seed)
    if recorder is not None:
        recorder.start()
    lin_err = yaw_err = power = 0.0
    upright = falls = 0
    for _ in range(steps):
        commands = task.commands.clone()
        actions = policy(obs)
        obs, _, terminated, truncated, _ = task.step(actions)
        if recorder is not None:
            recorder.record(actions, terminated | truncated)
        alive = ~(terminated | truncated)
        s = task.state
        v_body = s.base_lin_vel_body()
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
    return _evaluate(bundle, cfg, backend, num_envs, seconds, seed, full_range, gait=None)[0]


def evaluate_bundle_gait(
    bundle: str | Path,
    cfg: TaskConfig,
    backend: str,
    num_envs: int,
    seconds: float,
    seed: int = 0,
    full_range: bool = False,
    gait: GaitMetricsConfig | None = None,
) -> tuple[dict[str, float], GaitMetrics]:
    """:func:`evaluate_bundle`'s numbers and the gait metrics of the same walk.

    The task also reports hip and calf contacts (``link_contacts``: the same dynamics, a little more
    work per step) and every step is recorded (:class:`unio4.sim.gait_recording.GaitRecorder`). The
    feet's contact threshold defaults to the task's (``rewards.contact_threshold``).
    """
    gait = gait or GaitMetricsConfig(foot_contact_force=cfg.rewards.contact_threshold)
    tracking, metrics = _evaluate(bundle, cfg, backend, num_envs, seconds, seed, full_range, gait)
    assert metrics is not None
    return tracking, metrics


def _evaluate(
    bundle: str | Path,
    cfg: TaskConfig,
    backend: str,
    num_envs: int,
    seconds: float,
    seed: int,
    full_range: bool,
    gait: GaitMetricsConfig | None,
) -> tuple[dict[str, float], GaitMetrics | None]:
    """The bundle on a fresh task: tracking metrics, and the gait's when ``gait`` is given."""
    cfg = cfg if full_range else trained_range_config(cfg, bundle)
    task = Go1VelocityTask(cfg, num_envs, backend=backend, seed=seed, link_contacts=gait is not None)
    try:
        recorder = GaitRecorder(task, gait) if gait is not None else None
        tracking = tracking_metrics(task, bundle_policy(bundle, task), int(round(seconds / task.dt)), seed=seed, recorder=recorder)
        return tracking, recorder.metrics() if recorder is not None else None
    finally:
        task.close()
