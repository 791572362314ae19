"""Leg kinematics and leg odometry from joint state and IMU: what a robot log can tell about the base.

A robot measures joint angles and rates, body angular rate and orientation, and foot forces, but
not its base velocity or height, which the tracking and height rewards need. Leg odometry recovers
them: a foot in stance does not move, so the base moves opposite to that foot's velocity relative
to the base, ``v_base = -(J(q) dq + w x p_foot)``, averaged over the feet in contact; the base
height is the stance feet's depth below the base in the world frame. numpy only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from unio4.robots.description import RobotDescription

# Foot force (in the robot's foot-force units) above which a foot counts as stance and carries the
# odometry: light touches slip. Checked against the emulator's ground truth in MuJoCo and PyBullet
# (docs/benchmarks/deploy.md, "Deploy end to end").
STANCE_FORCE = 20.0


def foot_positions(robot: RobotDescription, q: Any, xp: Any = np) -> Any:
    """Foot centres in the base frame, (..., legs, 3), from joint angles (..., 12) in SDK order.

    ``xp`` is the array namespace: numpy (float64, the robot side and log packing) or torch (the
    simulator's reward terms), so one function serves both.
    """
    b = robot.body
    legs = len(robot.legs)
    if xp is np:
        q = np.asarray(q, dtype=np.float64)
    q = q.reshape(*q.shape[:-1], legs, 3)
    hip, thigh, calf = q[..., 0], q[..., 1], q[..., 2]
    const = np.asarray if xp is np else q.new_tensor
    offsets = const([list(b.hip_offsets[leg]) for leg in robot.legs])
    signs = const([robot.leg_sign(leg) * b.thigh_offset_y for leg in robot.legs])
    x = -b.thigh_length * xp.sin(thigh) - b.calf_length * xp.sin(thigh + calf)
    y = signs + 0.0 * x
    z = -b.thigh_length * xp.cos(thigh) - b.calf_length * xp.cos(thigh + calf)
    c, s = xp.cos(hip), xp.sin(hip)
    return offsets + xp.stack([x, y * c - z * s, y * s + z * c], -1)


def foot_velocities(robot: RobotDescription, q: np.ndarray, dq: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Foot velocities relative to the base, in the base frame, (..., legs, 3): ``J(q) dq``.

    Each foot depends only on its own leg's joints, so one central difference along ``dq`` gives
    every leg's ``J dq`` at once.
    """
    q, dq = np.asarray(q, dtype=np.float64), np.asarray(dq, dtype=np.float64)
    return (foot_positions(robot, q + eps * dq) - foot_positions(robot, q - eps * dq)) / (2 * eps)


def world_z_row(quat: np.ndarray) -> np.ndarray:
    """The third row of the base rotation matrix (..., 3): world z of a base-frame vector."""
    w, x, y, z = (quat[..., i] for i in range(4))
    return np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1)


def leg_odometry(
    robot: RobotDescription,
    q: np.ndarray,
    dq: np.ndarray,
    gyro: np.ndarray,
    quat: np.ndarray,
    foot_force: np.ndarray,
    contact_threshold: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Base linear velocity in the base frame (T, 3) and base height (T,) for T samples.

    Samples with no foot in contact carry the previous estimate forward (zero at the start).
    """
    p = foot_positions(robot, q)
    v = foot_velocities(robot, q, dq) + np.cross(np.asarray(gyro)[:, None, :], p)
    stance = np.asarray(foot_force) > contact_threshold
    count = stance.sum(-1)
    vel = -(v * stance[..., None]).sum(-2) / np.maximum(count, 1)[:, None]
    depth = -(p @ world_z_row(np.asarray(quat))[..., None])[..., 0]
    height = (depth * stance).sum(-1) / np.maximum(count, 1) + robot.body.foot_radius
    for t in range(len(count)):
        if count[t] == 0:
            vel[t] = vel[t - 1] if t else 0.0
            height[t] = height[t - 1] if t else robot.control.nominal_base_height
    return vel, height


def lowest_feet_stance(robot: RobotDescription, q: np.ndarray, quat: np.ndarray, feet: int = 2) -> np.ndarray:
    """(T, 4) 1.0 for the ``feet`` feet lowest in the world (a trot stands on two), 0.0 for the others.

    A stand-in for contact sensing where a log has no foot forces: with it, :func:`leg_odometry`
    estimates the base height (and velocity) from joint angles and orientation alone.
    """
    depth = -(foot_positions(robot, np.asarray(q)) @ world_z_row(np.asarray(quat))[..., None])[..., 0]
    stance = np.zeros(depth.shape)
    np.put_along_axis(stance, np.argsort(-depth, axis=-1)[..., :feet], 1.0, axis=-1)
    return stance
