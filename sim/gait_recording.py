"""Record a task's steps into a :class:`unio4.sim.gait_metrics.GaitTrajectory` for the gait metrics.

Evaluation opts in (``unio4 eval``; :func:`unio4.sim.evaluate.tracking_metrics` with a recorder):
training never pays for it. Everything is derived from the state the engine already reports
(:class:`unio4.sim.backends.interface.RobotState`) and the robot description's leg kinematics, so
no engine does anything different: the feet's positions and velocities come from the base pose and
joint state, the hips' and calves' contacts from a task built with ``link_contacts=True`` (without
it only the trunk and thighs are watched). Each step's state is read before resets replace finished
robots (``task.step_state``), so a robot's last step, a fall included, is recorded too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from unio4.deploy.observations import rotate_inverse
from unio4.robots.description import RobotDescription
from unio4.robots.kinematics import foot_positions, foot_velocities
from unio4.sim.backends.interface import RobotState
from unio4.sim.gait_metrics import GaitMetrics, GaitMetricsConfig, GaitTrajectory, gait_metrics

if TYPE_CHECKING:
    from unio4.sim.task import Go1VelocityTask

CONJUGATE = np.array([1.0, -1.0, -1.0, -1.0])  # w, x, y, z: a unit quaternion's inverse


def to_world(quat: np.ndarray, vec: np.ndarray) -> np.ndarray:
    """Base-frame vectors (N, ..., 3) in the world frame, for base orientations ``quat`` (N, 4) w, x, y, z."""
    q = (quat * CONJUGATE).reshape(quat.shape[0], *([1] * (vec.ndim - 2)), 4)
    return rotate_inverse(np, q, vec)


def calf_angular_velocity(robot: RobotDescription, q: np.ndarray, dq: np.ndarray) -> np.ndarray:
    """(N, legs, 3) angular velocity of each calf relative to the base, in the base frame.

    The hip turns about the base's x axis; thigh and calf about the hip-turned y axis (0, cos, sin).
    """
    legs = len(robot.legs)
    q, dq = q.reshape(-1, legs, 3), dq.reshape(-1, legs, 3)
    hip, pitch_rate = q[..., 0], dq[..., 1] + dq[..., 2]
    return np.stack([dq[..., 0], pitch_rate * np.cos(hip), pitch_rate * np.sin(hip)], -1)


def foot_kinematics(robot: RobotDescription, s: RobotState) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """World position and velocity of each foot sphere's centre and its angular velocity, (N, legs, 3) each.

    The foot is fixed to the calf: its centre moves with the base (``v + w x p``) and the leg (``J dq``),
    and it turns with the calf (the base's and the leg joints' rotations).
    """
    names = ("base_pos", "base_quat", "base_lin_vel_world", "base_ang_vel_body", "joint_pos", "joint_vel")
    base_pos, quat, v_base, w_base, q, dq = (getattr(s, name).detach().cpu().double().numpy() for name in names)
    p = foot_positions(robot, q)
    v_centre = v_base[:, None] + to_world(quat, np.cross(w_base[:, None], p) + foot_velocities(robot, q, dq))
    w_calf = to_world(quat, w_base[:, None] + calf_angular_velocity(robot, q, dq))
    return base_pos[:, None] + to_world(quat, p), v_centre, w_calf


def contact_point_velocity(
    robot: RobotDescription, centre: np.ndarray, v_centre: np.ndarray, w_foot: np.ndarray, ground: np.ndarray
) -> np.ndarray:
    """(N, legs, 3) world velocity of the foot's material point at the ground below its centre (its lowest
    point when in the air): where a stance foot touches, so a foot rolling in place has none and only sliding
    shows. A soft engine lets a stance foot sink (MuJoCo's by about 2 cm): the point is then above the sole."""
    depth = np.clip(centre[..., 2] - ground, 0.0, robot.body.foot_radius)
    offset = np.zeros_like(centre)
    offset[..., 2] = -depth
    return v_centre + np.cross(w_foot, offset)


class GaitRecorder:
    """Collects one :class:`GaitTrajectory` from a task's steps: :meth:`start` after a reset, :meth:`record` after each step."""

    def __init__(self, task: Go1VelocityTask, cfg: GaitMetricsConfig | None = None) -> None:
        self.task, self.cfg = task, cfg or GaitMetricsConfig()
        self.rows: dict[str, list[np.ndarray]] = {}
        self._mass = self._robot_mass()

    def _robot_mass(self) -> np.ndarray:
        """(N,) kg of every robot now: the description's mass plus its randomised payload."""
        return self.task.robot.total_mass + self.task.dynamics.added_mass.detach().cpu().double().numpy()

    def start(self) -> None:
        """Forget what was recorded; the masses in effect are the (just reset) task's."""
        self.rows = {}
        self._mass = self._robot_mass()

    def record(self, actions: torch.Tensor, done: torch.Tensor) -> None:
        """The step just taken with policy ``actions`` (N, J); ``done``: the robots whose episode it ended."""
        task, cfg = self.task, self.cfg
        s = task.step_state
        centre, v_centre, w_foot = foot_kinematics(task.robot, s)
        xy = torch.as_tensor(centre[..., :2], dtype=torch.float32, device=task.device)
        ground = task.terrain.height_at(xy).cpu().double().numpy()
        base_xy = s.base_pos[:, :2]
        bodies = [s.trunk_contact[:, None], s.thigh_contact, s.link_contact]  # the last (N, 0) unless link_contacts
        values = {
            "base_height": s.base_pos[:, 2] - task.terrain.height_at(base_xy),
            "speed": torch.norm(s.base_lin_vel_world[:, :2], dim=1),
            "mass": self._mass,
            "foot_height": centre[..., 2] - task.robot.body.foot_radius - ground,
            "foot_velocity": contact_point_velocity(task.robot, centre, v_centre, w_foot, ground),
            "foot_contact": s.foot_force > cfg.foot_contact_force,
            "body_contact": torch.cat(bodies, 1) > cfg.body_contact_force,
            "joint_pos": s.joint_pos,
            "joint_vel": s.joint_vel,
            "joint_torque": s.joint_torque,
            "actions": actions.detach().clamp(-task.cfg.action_clip, task.cfg.action_clip),
            "episode_end": done,
        }
        for name, value in values.items():
            array = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value
            self.rows.setdefault(name, []).append(array)
        self._mass = self._robot_mass()  # a reset robot's new payload applies from the next step

    def trajectory(self) -> GaitTrajectory:
        """What was recorded since :meth:`start`, as arrays (T, N, ...)."""
        if not self.rows:
            raise ValueError("no step recorded: call record() after each task step")
        arrays = {name: np.stack(values) for name, values in self.rows.items()}
        floats = {name: a.astype(np.float64) if a.dtype.kind == "f" else a for name, a in arrays.items()}
        robot = self.task.robot
        return GaitTrajectory(dt=self.task.dt, default_joint_pos=robot.default_joint_pos, torque_limit=robot.torque_limits, **floats)

    def metrics(self) -> GaitMetrics:
        """:func:`unio4.sim.gait_metrics.gait_metrics` of the recording."""
        return gait_metrics(self.trajectory(), self.cfg)
