"""What the Go1's IMU reports, from an engine's raw state."""

from __future__ import annotations

import math

import numpy as np

from unio4.deploy.observations import rotate_inverse
from unio4.sim.backends.pybullet_world import GRAVITY


def specific_force(quat: np.ndarray, vel: np.ndarray, prev_vel: np.ndarray, dt: float) -> np.ndarray:
    """What an IMU's accelerometer reads, in the body frame: acceleration minus gravity (+g up at rest)."""
    return rotate_inverse(np, quat, (vel - prev_vel) / dt + np.array([0.0, 0.0, GRAVITY]))


def quat_to_rpy(q: np.ndarray) -> np.ndarray:
    """Roll, pitch, yaw (ZYX) of a (w, x, y, z) quaternion."""
    w, x, y, z = q
    roll = math.atan2(2 * (w * x + y * z), 1 - 2 * (x * x + y * y))
    pitch = math.asin(max(-1.0, min(1.0, 2 * (w * y - z * x))))
    yaw = math.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))
    return np.array([roll, pitch, yaw])
