"""System identification: fit the simulator's dynamics to a robot's logs, so fine-tuning can happen in simulation.

Closing a sim-to-real gap by PPO on robot data needs far more robot time than a robot gives (a
session's 5000 steps per iteration move the policy a little). The gap is mostly in a few physical
parameters; robot time is better spent measuring them. :func:`identify` does that:

1. the robot walks with the bundle's mean action at a few forward commands (``unio4 deploy
   --command VX,0,0``, 10 s each: well under a minute of robot time);
2. from each log, :func:`log_features` measures what the parameters show in: the forward speed
   actually held (leg odometry), and how far the thigh and calf joints lag their PD targets (a
   weaker motor or a heavier robot lets them sag), over the steady part of the run;
3. the same bundle walks in the simulator at the same commands, one robot per candidate
   (motor strength x added trunk mass, a grid), randomisation off; the candidate whose features are
   nearest the robot's (each feature in units of its ``FeatureScales``) is the estimate.

The estimate becomes a task override (``randomization.motor_strength`` and ``added_mass`` ranges
around it), and PPO fine-tunes the policy in simulation on that robot: a new bundle costs
simulator time, not robot time.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from unio4.configs.loader import bounded
from unio4.deploy.observations import rotate_inverse
from unio4.learning.data.dataset import Dataset
from unio4.learning.data.pack import pack_runs
from unio4.robots.description import load_robot
from unio4.sim.backends.interface import Dynamics
from unio4.sim.config import TaskConfig
from unio4.sim.policies import bundle_policy
from unio4.sim.task import Go1VelocityTask

FEATURES = ("forward_speed", "thigh_lag", "calf_lag")


@dataclass(frozen=True)
class FeatureScales:
    """How much of each feature counts as one unit of mismatch."""

    forward_speed: float = bounded(0.05, gt=0)  # m/s
    thigh_lag: float = bounded(0.02, gt=0)  # rad, mean |q* - q|
    calf_lag: float = bounded(0.02, gt=0)  # rad


@dataclass(frozen=True)
class IdentifyConfig:
    """The candidate grid and what is compared."""

    motor_strength: tuple[float, ...] = bounded((0.6, 0.7, 0.8, 0.9, 1.0, 1.1), gt=0, le=2)
    added_mass: tuple[float, ...] = bounded((-1.0, 0.0, 1.0, 2.0, 3.0, 4.0), ge=-5, le=20)
    skip_s: float = bounded(2.0, ge=0)  # the start of each run (stand-up transient) is not compared
    scales: FeatureScales = dataclasses.field(default_factory=FeatureScales)


@dataclass
class Identification:
    """The estimate, the robot's features and the grid's distances."""

    motor_strength: float
    added_mass: float
    robot: dict[float, dict[str, float]]  # per commanded speed
    best: dict[float, dict[str, float]]  # the chosen candidate's simulated features
    distances: dict[tuple[float, float], float]

    def task_overrides(self, strength_spread: float = 0.05, mass_spread: float = 0.5) -> list[str]:
        """Task overrides that train around the estimate."""
        s, m = self.motor_strength, self.added_mass
        return [
            f"randomization.motor_strength=[{s - strength_spread:.3f},{s + strength_spread:.3f}]",
            f"randomization.added_mass=[{m - mass_spread:.3f},{m + mass_spread:.3f}]",
        ]


def _features(vx: np.ndarray, lag: np.ndarray) -> dict[str, float]:
    """Feature values from forward speeds (T,) and |target - q| (T, 12) in SDK order."""
    return {"forward_speed": float(np.mean(vx)), "thigh_lag": float(np.mean(lag[:, 1::3])), "calf_lag": float(np.mean(lag[:, 2::3]))}


def log_features(run: Path, task: TaskConfig, skip_s: float) -> tuple[float, dict[str, float]]:
    """The commanded forward speed of one deploy log, and its features over the steady part."""
    data = pack_runs([run], task)
    vx_cmd, keep = _steady_part(data, skip_s)
    if keep is None:  # nothing steady to measure
        return vx_cmd, dict.fromkeys(FEATURES, float("nan"))
    robot = load_robot(task.robot)
    q = data.infos["joint_pos"].numpy()[keep]
    actions = np.clip(data.actions.numpy(), -task.action_clip, task.action_clip)
    targets = robot.default_joint_pos + actions * robot.action_scales
    # the PD target a state is measured against is the one set at the previous policy step
    lag = np.abs(targets[keep][:-1] - q[1:])
    return vx_cmd, _features(data.infos["base_lin_vel_estimate"].numpy()[keep][:, 0], lag)


def held_motion(run: Path, task: TaskConfig, skip_s: float) -> tuple[np.ndarray, np.ndarray, float]:
    """One deploy log's command (vx, vy, yaw rate: the median of each), what the robot held over its steady part
    (T, 3): the base-frame velocity from leg odometry and the gyro's yaw rate (T = 0 if it stopped before), and
    the policy step in seconds.
    """
    data = pack_runs([run], task)
    command = np.median(data.infos["command"].numpy()[:, :3], axis=0)
    _, keep = _steady_part(data, skip_s)
    if keep is None:
        return command, np.zeros((0, 3)), float(data.metadata["policy_dt"])
    velocity, gyro = data.infos["base_lin_vel_estimate"].numpy()[keep], data.infos["gyro"].numpy()[keep]
    held = np.stack([velocity[:, 0], velocity[:, 1], gyro[:, 2]], axis=1).astype(np.float64)
    return command, held, float(data.metadata["policy_dt"])


def _steady_part(data: Dataset, skip_s: float) -> tuple[float, slice | None]:
    """The log's commanded forward speed (median) and its steps after the first ``skip_s`` (None: too short)."""
    vx_cmd = float(np.median(data.infos["command"].numpy()[:, 0]))
    skip = int(round(skip_s / float(data.metadata["policy_dt"])))
    return vx_cmd, (slice(skip, None) if len(data.actions) > skip + 1 else None)


def simulate_features(
    bundle: Path, task_cfg: TaskConfig, commands: list[float], candidates: list[tuple[float, float]], seconds: float, skip_s: float
) -> dict[tuple[float, float], dict[float, dict[str, float]]]:
    """Features of ``bundle`` in simulation, one robot per (candidate, command), randomisation off."""
    cfg = dataclasses.replace(
        task_cfg,
        randomization=dataclasses.replace(task_cfg.randomization, enabled=False),
        commands=dataclasses.replace(task_cfg.commands, resample_time_s=max(seconds + 1.0, task_cfg.commands.resample_time_s)),
        episode_length_s=max(seconds + 1.0, task_cfg.episode_length_s),
    )
    pairs = list(itertools.product(candidates, commands))
    task = Go1VelocityTask(cfg, len(pairs), seed=0)
    try:
        policy = bundle_policy(bundle, task)
        obs, _ = task.reset()
        n = len(pairs)
        ones = torch.ones(n)
        strength = torch.tensor([c[0] for c, _ in pairs], dtype=torch.float32)
        mass = torch.tensor([c[1] for c, _ in pairs], dtype=torch.float32)
        dynamics = Dynamics(ones * task.robot.body.foot_friction, mass, ones.clone(), ones.clone(), strength)
        task.set_dynamics(torch.arange(n), dynamics)
        task.commands[:] = 0.0
        task.commands[:, 0] = torch.tensor([vx for _, vx in pairs], dtype=torch.float32)
        speeds, lags = [], []
        default = torch.as_tensor(task.robot.default_joint_pos, dtype=torch.float32)
        scales = torch.as_tensor(task.robot.action_scales, dtype=torch.float32)
        steps, skip = int(round(seconds / task.dt)), int(round(skip_s / task.dt))
        for k in range(steps):
            actions = policy(obs)
            targets = default + actions.clamp(-cfg.action_clip, cfg.action_clip) * scales
            obs, _, _, _, _ = task.step(actions)
            if k >= skip:
                s = task.state
                speeds.append(rotate_inverse(torch, s.base_quat, s.base_lin_vel_world)[:, 0].numpy())
                lags.append((targets - s.joint_pos).abs().numpy())
        speed, lag = np.stack(speeds, 1), np.stack(lags, 1)  # (n, T), (n, T, 12)
        out: dict[tuple[float, float], dict[float, dict[str, float]]] = {}
        for i, (candidate, vx) in enumerate(pairs):
            out.setdefault(candidate, {})[vx] = _features(speed[i], lag[i])
        return out
    finally:
        task.close()


def identify(runs: list[Path], bundle: Path, task: TaskConfig, cfg: IdentifyConfig, seconds: float = 10.0) -> Identification:
    """The grid candidate whose simulated features are nearest the robot's logs."""
    robot: dict[float, dict[str, float]] = {}
    for run in runs:
        vx, features = log_features(run, task, cfg.skip_s)
        if not all(np.isfinite(v) for v in features.values()):  # stopped before its steady part (a safety stop)
            print(f"identify: {run}: no steps after the first {cfg.skip_s:g} s; left out")
            continue
        robot[round(vx, 3)] = features
    if not robot:
        raise ValueError(f"identify: none of the {len(runs)} runs has steps after the first {cfg.skip_s:g} s to compare")
    candidates = list(itertools.product(cfg.motor_strength, cfg.added_mass))
    simulated = simulate_features(bundle, task, sorted(robot), candidates, seconds, cfg.skip_s)
    scale = {name: getattr(cfg.scales, name) for name in FEATURES}
    distances = {
        c: float(sum(((sim[vx][f] - robot[vx][f]) / scale[f]) ** 2 for vx in robot for f in FEATURES)) for c, sim in simulated.items()
    }
    best = min(distances, key=distances.__getitem__)
    return Identification(best[0], best[1], robot, simulated[best], distances)
