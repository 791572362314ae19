"""Robot rollout logs -> a training dataset, with rewards recomputed from raw state.

``unio4 data pack RUN_DIR... -o data.h5`` reads the chunks each ``unio4 deploy --out`` run
wrote (one run = one episode), and recomputes every reward from the logged raw state with the
task's reward config, so the same logs can be re-scored with another config later. What the robot
does not measure is estimated or left out, and the metadata says which:
- base linear velocity and height: leg odometry (:mod:`unio4.robots.kinematics`) over the stance feet (the rewards
  read a tracking camera's velocity instead where the run logged one: :mod:`unio4.deploy.tracker`),
  a foot counting as stance above ``stance_force`` (20 N: light touches slip; checked against the
  emulator's ground truth in docs/benchmarks/deploy.md, "Deploy end to end");
- collision forces: no sensor on the trunk or thighs, so 0 (the ``collision`` term never fires);
- contacts: ``foot_force > rewards.contact_threshold`` in the units the robot reports.
A run that ended in a tilt stop ends with a terminal; every other run ends with a time-out. A run
with a lost or unreadable chunk in the middle becomes one episode per stretch of consecutive steps
(never one episode across the gap), and the dataset's ``notes`` name every such chunk.
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any

import numpy as np
import torch

from unio4.configs.loader import from_dict, read_yaml, to_dict
from unio4.deploy.manifest import ControlSpec
from unio4.deploy.observations import projected_gravity
from unio4.deploy.rollout_log import read_events, read_log
from unio4.learning.data.dataset import Dataset, concatenate_episodes, episode_columns
from unio4.robots.description import RobotDescription, load_robot
from unio4.robots.kinematics import STANCE_FORCE, foot_positions, leg_odometry
from unio4.sim.config import TaskConfig
from unio4.sim.rewards import RewardConfig, RewardConstants, RewardInputs, air_time_step, compute_rewards, reward_inputs

# What reward recomputation reads from a log, besides the observation and the action.
LOGGED_STATE = ("joint_pos", "joint_vel", "joint_torque", "base_quat", "gyro", "foot_force", "command")


def _read_yaml(path: Path) -> dict[str, Any]:
    """A log's YAML file, or {} where the run never wrote it (killed before the end)."""
    return read_yaml(path) if path.is_file() else {}


def recompute_rewards(
    log: dict[str, np.ndarray],
    task: TaskConfig,
    policy_dt: float,
    terminal: bool,
    stance_force: float = STANCE_FORCE,
    base_motion: tuple[np.ndarray, np.ndarray] | None = None,
    set_aside: typing.Collection[str] = (),
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Per-step reward (T,) of one run and the estimated quantities it used.

    ``base_motion`` (base-frame linear velocity (T, 3), base height (T,)) replaces the leg-odometry
    estimate where the log has a better measurement (a tracking camera); without it, a deploy log's own camera
    readings (``tracker_lin_vel``) give the rewards' velocity where they exist (the estimates stay leg odometry's,
    which identification compares with simulated odometry); the terms in ``set_aside``
    are left out of the sum (their signals are missing from the log).
    """
    robot = load_robot(task.robot)
    rc = dataclasses.replace(task.rewards, weights={k: w for k, w in task.rewards.weights.items() if k not in set_aside})
    q, dq = log["joint_pos"].astype(np.float64), log["joint_vel"].astype(np.float64)
    quat, gyro, foot = log["base_quat"].astype(np.float64), log["gyro"].astype(np.float64), log["foot_force"].astype(np.float64)
    lin_vel, height = leg_odometry(robot, q, dq, gyro, quat, foot, stance_force) if base_motion is None else base_motion
    rewarded = _tracked_where_read(log, lin_vel) if base_motion is None else lin_vel
    inputs = _log_reward_inputs(log, task, robot, rc, policy_dt, terminal, (rewarded, height))
    reward, parts = compute_rewards(inputs, rc)
    estimates = {"base_lin_vel_estimate": np.asarray(lin_vel, np.float32), "base_height_estimate": np.asarray(height, np.float32)}
    estimates.update({f"reward_{k}": v.numpy() for k, v in parts.items()})
    return reward.numpy(), estimates


def _tracked_where_read(log: dict[str, np.ndarray], odometry: np.ndarray) -> np.ndarray:
    """The base velocity the rewards read: a tracking camera's (``tracker_lin_vel``, logged by a runtime that had one)
    where it read the step, leg odometry's where it did not or where the run had none.
    """
    if "tracker_lin_vel" not in log:
        return odometry
    camera = log["tracker_lin_vel"].astype(np.float64)
    return np.where(np.all(np.isfinite(camera), axis=1, keepdims=True), camera, odometry)


def _f32(a: typing.Any) -> torch.Tensor:
    """``a`` as a float32 tensor."""
    return torch.as_tensor(np.asarray(a), dtype=torch.float32)


def _log_reward_inputs(
    log: dict[str, np.ndarray],
    task: TaskConfig,
    robot: RobotDescription,
    rc: RewardConfig,
    policy_dt: float,
    terminal: bool,
    base_motion: tuple[np.ndarray, np.ndarray],
) -> RewardInputs:
    """The reward inputs of a logged run: the row before as the previous step, no trunk or thigh sensing."""
    constants = RewardConstants.for_robot(robot, rc, task.observations.clock_frequency, policy_dt)
    q, dq, foot = log["joint_pos"], log["joint_vel"], _f32(log["foot_force"])  # as logged: foot_positions works in float64
    n = len(q)
    clipped = np.clip(log["action"], -task.action_clip, task.action_clip)
    terminated = np.zeros(n, dtype=bool)
    terminated[-1] = terminal
    first_contact, air_time = _touchdowns(foot, rc.contact_threshold, policy_dt)
    default_foot_z = foot_positions(robot, np.asarray(robot.default_joint_pos))[..., 2]
    return reward_inputs(
        constants,
        commands=_f32(log["command"]),
        base_lin_vel=_f32(base_motion[0]),
        base_ang_vel=_f32(log["gyro"]),
        projected_gravity=projected_gravity(torch, _f32(log["base_quat"])),
        base_height=_f32(base_motion[1]),
        joint_pos=_f32(q),
        joint_vel=_f32(dq),
        joint_torque=_f32(log["joint_torque"]),
        foot_force=foot,
        foot_lift=_f32(foot_positions(robot, q)[..., 2] - default_foot_z),  # float64 kinematics, as the odometry's
        actions=_f32(clipped),
        last_actions=_f32(np.concatenate([np.zeros_like(clipped[:1]), clipped[:-1]])),
        last_joint_vel=_f32(np.concatenate([dq[:1], dq[:-1]])),
        first_contact=first_contact,
        air_time=air_time,
        body_contact=None,
        terminated=torch.as_tensor(terminated),
        time=_f32(log["time"] if "time" in log else np.arange(n) * policy_dt),
    )


def _touchdowns(foot_force: torch.Tensor, contact_threshold: float, dt: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(first contact, air time at touchdown) of every row (T, 4): the task's air-time bookkeeping, replayed row by row."""
    air = torch.zeros(4)
    touchdowns = []
    for contact in foot_force > contact_threshold:
        first, at_touchdown, air = air_time_step(air, contact, dt)
        touchdowns.append((first, at_touchdown))
    return torch.stack([f for f, _ in touchdowns]), torch.stack([a for _, a in touchdowns])


def terms_reading(log: dict[str, np.ndarray], key: str, task: TaskConfig, policy_dt: float, **kwargs: Any) -> list[str]:
    """The configured reward terms whose value moves when the logged signal ``key`` moves.

    A log that lacks a signal (foot forces, say) cannot score the terms that read it; this finds them
    by experiment rather than by a list that would go stale as terms are added: the signal is
    replaced by two different random on/off patterns (0 or 100 per element and step).
    """
    rng = np.random.default_rng(0)
    probes = [np.where(rng.random(log[key].shape) < 0.5, 0.0, 100.0) for _ in range(2)]
    parts = [recompute_rewards({**log, key: probe}, task, policy_dt, False, **kwargs)[1] for probe in probes]
    names = [k.removeprefix("reward_") for k in parts[0] if k.startswith("reward_")]
    return [n for n in names if not np.allclose(parts[0][f"reward_{n}"], parts[1][f"reward_{n}"])]


def pack_runs(run_dirs: list[Path], task: TaskConfig, stance_force: float = STANCE_FORCE) -> Dataset:
    """One dataset from one or more rollout runs (each run one episode, in the given order)."""
    if not run_dirs:
        raise ValueError("pack: no run directories given")
    episodes: list[dict[str, np.ndarray]] = []
    notes: list[str] = []
    bundles: list[str] = []
    safety_stops: list[str] = []  # per run: why the safety layer ended it early, "" if it did not
    for run_dir in run_dirs:
        meta = _read_yaml(run_dir / "meta.yaml")
        if not meta:
            raise ValueError(f"{run_dir}: not a rollout log (no meta.yaml)")
        if not isinstance(meta.get("manifest"), dict) or "control" not in meta["manifest"]:
            raise ValueError(f"{run_dir / 'meta.yaml'}: no 'manifest' with a 'control' section (the deployed bundle's)")
        # Only the rates are needed here; logs of any bundle format stay packable.
        control = from_dict(ControlSpec, meta["manifest"]["control"], where=f"{run_dir / 'meta.yaml'}: manifest.control")
        log = read_log(run_dir)
        notes += [f"{run_dir.name}/{note}" for note in log.notes]
        notes += [f"{run_dir.name}: episode split at a gap ({gap})" for gap in log.gaps]
        missing = sorted({"observation", "action", *LOGGED_STATE} - set(log.arrays))
        if missing:
            raise ValueError(f"{run_dir}: the rollout chunks lack {missing}; not a unio4 deploy log")
        summary = _read_yaml(run_dir / "summary.yaml")
        if not summary:
            notes.append(f"{run_dir.name}: no summary.yaml (the run was killed); closed with a time-out")
        stop = next((e for e in read_events(run_dir) if e.get("event") == "damping"), {})
        safety_stops.append(str(stop.get("reason", "")) if stop.get("safety_stop") else "")
        run_terminal = bool(stop.get("safety_stop")) and str(stop.get("reason", "")).startswith("tilt")
        policy_dt = control.policy_dt
        for k in range(len(log.segments)):  # one episode per stretch of consecutive steps
            segment = log.segment(k)
            terminal = run_terminal and k == len(log.segments) - 1  # earlier stretches were cut by a gap: time-outs
            rewards, estimates = recompute_rewards(segment, task, policy_dt, terminal, stance_force)
            episodes.append(
                {
                    **episode_columns(segment["observation"], segment["action"], rewards, terminal),
                    "run_index": np.full(len(rewards), len(bundles), dtype=np.int64),
                    **{key: v for key, v in segment.items() if key not in ("observation", "action")},
                    **estimates,
                }
            )
        bundles.append(str(meta.get("bundle_sha256", "")))
    metadata = {
        "robot": task.robot,
        "source": "robot",
        "runs": [str(r) for r in run_dirs],
        "bundle_sha256": bundles,
        "policy_dt": policy_dt,
        "task_config": to_dict(task),
        "estimated": [
            f"base_lin_vel, base_height (leg odometry, stance above {stance_force} N; the rewards' base_lin_vel from a tracking "
            "camera where a run logged one, tracker_lin_vel)"
        ],
        "not_measured": ["collision_force (set to 0)"],
        "notes": notes,
        "safety_stops": safety_stops,
    }
    return concatenate_episodes(episodes, metadata, "packed rollouts")
