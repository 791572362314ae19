"""``unio4 replay``: what a robot log says, and how far the simulator agrees with it.

- ``sim``: open-loop replay of the logged joint targets in a physics backend, from the logged
  initial state (joints, orientation, gyro; base height and velocity from leg odometry, as the
  robot has no other sensor for them). Writes sim-vs-log joint trajectories (PNG) and an error
  summary: RMS joint-angle error per leg over the first second and over the whole log, and the
  roll/pitch error. Open-loop replay drifts by nature; the first second is the model-fidelity
  number, the whole log shows how fast the drift grows.
- ``plot``: the log alone: joint positions and targets, command, orientation, foot forces.

Robot-side replay (logged targets through the safety layer at reduced gains) is :mod:`unio4.deploy.replay`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

from unio4.deploy.observations import rotate_inverse
from unio4.deploy.rollout_log import read_log
from unio4.robots.description import RobotDescription, load_robot
from unio4.robots.kinematics import STANCE_FORCE, leg_odometry
from unio4.sim.backends import make_backend
from unio4.sim.terrain import TerrainConfig, make_terrain


@dataclass
class ReplayResult:
    sim_joint_pos: np.ndarray  # (T, 12) after each replayed policy step
    log_joint_pos: np.ndarray  # (T, 12) the logged state after the same step
    rms_first_second: dict[str, float]  # per leg and "all", rad
    rms_all: dict[str, float]
    roll_pitch_rms: float  # rad, over the whole log
    plot: Path
    strip: Path | None = None  # log | sim pictures over time (with render=True)
    animation: Path | None = None  # the same as a GIF


def roll_pitch(quat: np.ndarray) -> np.ndarray:
    """Roll and pitch (T, 2) of (w, x, y, z) quaternions (T, 4)."""
    gravity = rotate_inverse(np, quat, np.array([0.0, 0.0, -1.0]))
    return np.stack([np.arctan2(gravity[:, 1], -gravity[:, 2]), np.arcsin(np.clip(-gravity[:, 0], -1, 1))], -1)


def _rms(err: np.ndarray, robot: RobotDescription) -> dict[str, float]:
    out = {leg: float(np.sqrt(np.mean(err[:, 3 * i : 3 * i + 3] ** 2))) for i, leg in enumerate(robot.legs)}
    out["all"] = float(np.sqrt(np.mean(err**2)))
    return out


def replay_in_sim(
    run_dir: str | Path, out_dir: str | Path, backend: str = "mujoco", robot_name: str = "go1", render: bool = False
) -> ReplayResult:
    """Replay a log's targets open loop in ``backend``; with ``render``, also pictures of log | sim side by side
    (the log's robot at its leg-odometry height, each camera following its own base)."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    log = read_log(run_dir).first_stretch(run_dir)  # open loop across a lost stretch would be nonsense
    if len(log["joint_target"]) < 2:
        raise ValueError(f"{run_dir}: the log holds {len(log['joint_target'])} policy step(s); replay needs at least 2")
    robot = load_robot(robot_name)
    q, dq, quat, gyro = (log[k].astype(np.float64) for k in ("joint_pos", "joint_vel", "base_quat", "gyro"))
    vel_body, height = leg_odometry(robot, q, dq, gyro, quat, log["foot_force"], STANCE_FORCE)
    sim = make_backend(backend, robot, 1, make_terrain(TerrainConfig(type="flat")))
    t = torch.tensor
    world_vel = rotate_inverse(np, quat[0] * np.array([1.0, -1.0, -1.0, -1.0]), vel_body[0])  # body -> world
    sim.reset(
        torch.tensor([0]),
        t([[0.0, 0.0, float(height[0])]]).float(),
        t(quat[:1]).float(),
        t(world_vel[None]).float(),
        t(gyro[:1]).float(),
        t(q[:1]).float(),
        t(dq[:1]).float(),
    )
    steps = len(q) - 1
    sim_q, sim_quat, sim_pos = np.zeros((steps, robot.num_joints)), np.zeros((steps, 4)), np.zeros((steps, 3))
    targets = torch.from_numpy(log["joint_target"].astype(np.float32))
    for k in range(steps):
        state = sim.step(targets[k].expand(1, sim.decimation, -1))
        sim_q[k], sim_quat[k], sim_pos[k] = state.joint_pos[0].numpy(), state.base_quat[0].numpy(), state.base_pos[0].numpy()
    sim.close()
    log_q = q[1:]
    err = sim_q - log_q
    policy_dt = float(np.median(np.diff(log["time"]))) if len(log["time"]) > 1 else 0.02
    first = max(1, int(round(1.0 / policy_dt)))
    rp_err = roll_pitch(sim_quat) - roll_pitch(quat[1:])
    out_dir.mkdir(parents=True, exist_ok=True)
    plot = plot_joints(np.arange(steps) * policy_dt, {"log": log_q, f"sim ({backend})": sim_q}, robot, out_dir / "replay_sim.png")
    result = ReplayResult(sim_q, log_q, _rms(err[:first], robot), _rms(err, robot), float(np.sqrt(np.mean(rp_err**2))), plot)
    if render:
        from unio4.sim.render import PoseRenderer, write_animation, write_strip

        renderer = PoseRenderer(robot_name)
        every = max(1, int(round(0.08 / policy_dt)))  # 12.5 frames per second of log
        frames = []
        for k in range(0, steps, every):
            logged = renderer.render(np.array([0.0, 0.0, height[k + 1]]), quat[k + 1], log_q[k])
            frames.append(np.concatenate([logged, renderer.render(sim_pos[k], sim_quat[k], sim_q[k])], axis=1))
        renderer.close()
        result.strip = write_strip(frames, out_dir / "replay_strip.png")
        result.animation = write_animation(frames, out_dir / "replay.gif", fps=1.0 / (every * policy_dt))
    return result


def plot_joints(time: np.ndarray, series: dict[str, np.ndarray], robot: RobotDescription, out: Path) -> Path:
    """One panel per joint (SDK order), one line per series."""
    fig, axes = plt.subplots(4, 3, figsize=(12, 9), sharex=True)
    for j, ax in enumerate(axes.flat):
        for name, values in series.items():
            ax.plot(time, values[:, j], label=name, lw=1)
        ax.set_title(robot.joint_names[j], fontsize=8)
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7)
    for ax in axes[-1]:
        ax.set_xlabel("s")
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def plot_log(run_dir: str | Path, out_dir: str | Path, robot_name: str = "go1") -> list[Path]:
    """The log's joint positions vs targets, and its command, orientation and foot forces."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    data = read_log(run_dir)
    for note in data.notes:
        print(f"plot: {run_dir}: {note}", file=sys.stderr)
    log = data.arrays
    robot = load_robot(robot_name)
    out_dir.mkdir(parents=True, exist_ok=True)
    time = log["time"] - log["time"][0]
    joints = plot_joints(time, {"position": log["joint_pos"], "target": log["joint_target"]}, robot, out_dir / "log_joints.png")
    fig, axes = plt.subplots(3, 1, figsize=(10, 7), sharex=True)
    for i, name in enumerate(("vx", "vy", "yaw rate")):
        axes[0].plot(time, log["command"][:, i], label=f"command {name}")
    rp = roll_pitch(log["base_quat"].astype(np.float64))
    axes[1].plot(time, rp[:, 0], label="roll")
    axes[1].plot(time, rp[:, 1], label="pitch")
    for i, leg in enumerate(robot.legs):
        axes[2].plot(time, log["foot_force"][:, i], label=leg, lw=0.8)
    for ax, label in zip(axes, ("command", "rad", "foot force")):
        ax.set_ylabel(label)
        ax.legend(fontsize=7, ncol=4)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("s")
    fig.tight_layout()
    body = out_dir / "log_body.png"
    fig.savefig(body, dpi=90)
    plt.close(fig)
    return [joints, body]
