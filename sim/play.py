"""``unio4 play``: watch a policy walk: a deterministic rollout rendered to MP4, or MuJoCo's viewer.

The policy is made for the rollout's task by a factory: a bundle (:func:`bundle_factory`, run by
onnxruntime exactly as on the robot) or a training checkpoint's actor (the CLI's, from
``learning``). One robot runs the task with a fixed command and, by default, without domain
randomisation, so the video shows the policy and not the dice. Each frame is MuJoCo's offscreen
render of the robot's state with a camera that follows the base, the commanded and measured
velocities written on it, and beside it a trace of both over the rollout so far
(:mod:`unio4.sim.trace_panel`). MP4 needs ffmpeg (the ``imageio-ffmpeg`` package carries one);
without it the frames go to a GIF.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from unio4.sim.backends.interface import RobotState
from unio4.sim.config import TaskConfig
from unio4.sim.policies import Policy, bundle_policy
from unio4.sim.render import PoseRenderer, write_animation
from unio4.sim.task import Go1VelocityTask
from unio4.sim.trace_panel import TracePanel, beside


@dataclass
class PlayResult:
    """What the rollout did: the measured velocity against the command, falls, and where the video went."""

    mean_velocity: np.ndarray  # (3,) vx, vy in the base frame, yaw rate
    command: np.ndarray  # (3,)
    falls: int
    video: Path | None
    frames: int


def play_config(cfg: TaskConfig, command: tuple[float, float, float], randomize: bool) -> TaskConfig:
    """``cfg`` commanding exactly ``command`` the whole time, without randomisation unless asked."""
    vx, vy, yaw = command
    commands = replace(
        cfg.commands, lin_vel_x=(vx, vx), lin_vel_y=(vy, vy), ang_vel_yaw=(yaw, yaw), zero_below=0.0, curriculum=False, resample_time_s=1e9
    )
    rnd = cfg.randomization if randomize else replace(cfg.randomization, enabled=False)
    return replace(cfg, commands=commands, randomization=rnd)


def bundle_factory(path: str | Path) -> PolicyFactory:
    """A bundle as the policy of the rollout's task (its spec is checked against the task's)."""
    return lambda task: bundle_policy(path, task)


def _annotate(frame: np.ndarray, lines: list[str]) -> np.ndarray:
    from PIL import Image, ImageDraw

    image = Image.fromarray(frame)
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((10, 8 + 16 * i), line, fill=(255, 255, 255))
    return np.asarray(image)


PolicyFactory = Callable[[Go1VelocityTask], Policy]


@torch.no_grad()
def play(
    make_policy: PolicyFactory,
    cfg: TaskConfig,
    command: tuple[float, float, float],
    seconds: float,
    video: Path | None,
    randomize: bool = False,
    seed: int = 0,
    size: tuple[int, int] = (640, 480),
    fps: int = 25,
    on_step: Callable[[dict[str, np.ndarray]], None] | None = None,
) -> PlayResult:
    """Roll out ``make_policy(task)`` for ``seconds``; write ``video`` (MP4, or GIF when the name says so or ffmpeg is missing):
    frames of ``size`` pixels with a command-vs-measured trace half as wide beside them.

    ``on_step`` (``play --rerun``) gets every step's time, base pose, joint positions, targets and
    torques, command, measured velocity and foot forces, as numpy arrays."""
    task = Go1VelocityTask(play_config(cfg, command, randomize), 1, seed=seed, num_threads=1)
    policy = make_policy(task)
    frames: list[np.ndarray] = []
    every = max(1, round(1.0 / (fps * task.dt)))
    renderer = _renderer(task, size) if video is not None else None
    panel = TracePanel(size[0] // 2, size[1], seconds)
    obs, _ = task.reset(seed=seed)
    steps = int(round(seconds / task.dt))
    velocities, falls = [], 0
    for k in range(steps):
        obs, _, terminated, _, _ = task.step(policy(obs))
        falls += int(terminated.sum())
        measured = _measured_velocity(task.state)
        velocities.append(measured)
        if on_step is not None:
            on_step(_step_arrays(task, k, command, measured))
        if renderer is not None and k % every == 0:
            picture = _frame(renderer, task.state, _overlay(k * task.dt, falls, command, measured))
            frames.append(beside(picture, panel.draw(np.array(velocities), command, task.dt)))
    task.close()
    written = None
    if renderer is not None and video is not None:
        renderer.close()
        written = write_video(frames, video, fps=1.0 / (every * task.dt))
    settled = np.array(velocities[len(velocities) // 4 :]) if velocities else np.zeros((1, 3))
    return PlayResult(settled.mean(0), np.array(command), falls, written, len(frames))


def _renderer(task: Go1VelocityTask, size: tuple[int, int]) -> PoseRenderer:
    """An offscreen renderer of the task's robot, ``size`` pixels, its camera following the base from 1.6 m."""
    return PoseRenderer(task.robot.name, width=size[0], height=size[1], distance=1.6, terrain=task.terrain)


def _measured_velocity(s: RobotState) -> np.ndarray:
    """Robot 0's (vx, vy) in its base frame and yaw rate: what the command asks of it."""
    v = s.base_lin_vel_body()[0]
    return np.array([float(v[0]), float(v[1]), float(s.base_ang_vel_body[0, 2])])


def _step_arrays(task: Go1VelocityTask, k: int, command: tuple[float, float, float], measured: np.ndarray) -> dict[str, np.ndarray]:
    """Step ``k`` of robot 0 as the numpy arrays ``on_step`` gets."""
    s = task.state
    return {
        "time": np.asarray(k * task.dt),
        "base_pos": s.base_pos[0].numpy(),
        "base_quat": s.base_quat[0].numpy(),
        "joint_pos": s.joint_pos[0].numpy(),
        "joint_target": task.last_targets[0].cpu().numpy(),
        "joint_torque": s.joint_torque[0].numpy(),
        "command": np.asarray(command, dtype=np.float64),
        "velocity": measured,
        "foot_force": s.foot_force[0].numpy(),
    }


def _overlay(t: float, falls: int, command: tuple[float, float, float], measured: np.ndarray) -> list[str]:
    """The lines written on a frame: time, falls, and the commanded against the measured velocity."""
    return [
        f"t {t:5.2f} s   falls {falls}",
        f"command   vx {command[0]:+.2f}  vy {command[1]:+.2f}  yaw {command[2]:+.2f}",
        f"measured  vx {measured[0]:+.2f}  vy {measured[1]:+.2f}  yaw {measured[2]:+.2f}",
    ]


def _frame(renderer: PoseRenderer, s: RobotState, text: list[str]) -> np.ndarray:
    """Robot 0's pose rendered, with ``text`` written on the picture."""
    return _annotate(renderer.render(s.base_pos[0].numpy(), s.base_quat[0].numpy(), s.joint_pos[0].numpy()), text)


def write_video(frames: list[np.ndarray], path: Path, fps: float) -> Path:
    """MP4 through ffmpeg (imageio-ffmpeg), or an animated GIF for a .gif name or without ffmpeg."""
    import imageio.v3 as iio

    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() != ".gif":
        try:
            import imageio_ffmpeg  # noqa: F401 - the ffmpeg binary imageio's pyav-free MP4 writer uses

            iio.imwrite(path, np.stack(frames), fps=fps, codec="libx264", plugin="FFMPEG", macro_block_size=8)
            return path
        except ImportError:
            path = path.with_suffix(".gif")
    return write_animation(frames, path, fps)


def launch_viewer(make_policy: PolicyFactory, cfg: TaskConfig, command: tuple[float, float, float], seconds: float) -> None:
    """MuJoCo's interactive viewer on a live rollout (needs a display)."""
    import os
    import time

    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        raise OSError("--viewer needs a display (DISPLAY is not set); write a video with --out instead")
    import mujoco
    import mujoco.viewer

    from unio4.sim.render import PoseRenderer

    task = Go1VelocityTask(play_config(cfg, command, False), 1, num_threads=1)
    act = make_policy(task)
    shown = PoseRenderer(task.robot.name, terrain=task.terrain)  # its model and data are what the viewer shows
    obs, _ = task.reset()
    with mujoco.viewer.launch_passive(shown.model, shown.data) as viewer:
        for _ in range(int(round(seconds / task.dt))):
            if not viewer.is_running():
                break
            obs, *_ = task.step(act(obs))
            s = task.state
            shown.data.qpos[0:3], shown.data.qpos[3:7] = s.base_pos[0].numpy(), s.base_quat[0].numpy()
            shown.data.qpos[shown.qpos_index] = s.joint_pos[0].numpy()
            mujoco.mj_kinematics(shown.model, shown.data)
            viewer.sync()
            time.sleep(task.dt)
    task.close()
