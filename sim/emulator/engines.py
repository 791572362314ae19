"""The engines an emulated Go1 runs in, by name, and what the server needs of one.

An engine is imported only when chosen: PyBullet is optional, and the robot install has neither.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import numpy as np

    from unio4.robots.description import RobotDescription

ENGINES = ("mujoco", "pybullet")


class Go1Engine(Protocol):
    """One Go1 at the SDK period, driven by per-motor PD terms; raw state in SDK joint order."""

    def reset_lying(self) -> None:
        """The robot on its belly with folded legs, motors passive, settled for 1 s."""

    def step(self, q: np.ndarray, dq: np.ndarray, tau: np.ndarray, kp: np.ndarray, kd: np.ndarray) -> None:
        """One tick of the motors' PD law ``tau + kp (q - q_now) + kd (dq - dq_now)``, saturated at the torque limits."""

    def push(self, delta_vel_world: np.ndarray, delta_ang_vel_body: np.ndarray | None = None) -> None:
        """Add a velocity impulse to the base (linear: world frame; angular: body frame)."""

    @property
    def base_pos(self) -> np.ndarray: ...

    @property
    def base_quat(self) -> np.ndarray: ...

    @property
    def base_lin_vel_world(self) -> np.ndarray: ...

    @property
    def gyro(self) -> np.ndarray: ...

    @property
    def accelerometer(self) -> np.ndarray: ...

    @property
    def joint_pos(self) -> np.ndarray: ...

    @property
    def joint_vel(self) -> np.ndarray: ...

    @property
    def joint_torque(self) -> np.ndarray: ...

    @property
    def foot_force(self) -> np.ndarray: ...


def check_engine(name: str) -> None:
    """Refuse an engine name that is not in :data:`ENGINES`."""
    if name not in ENGINES:
        raise ValueError(f"emulator physics {name!r} is not available; choose one of {sorted(ENGINES)}")


def make_engine(name: str, robot: RobotDescription, dt: float) -> Go1Engine:
    """Engine ``name`` simulating ``robot`` at period ``dt``."""
    check_engine(name)
    if name == "pybullet":
        from unio4.sim.emulator.pybullet_engine import PybulletGo1

        return PybulletGo1(robot, dt)
    from unio4.sim.emulator.mujoco_engine import MujocoGo1

    return MujocoGo1(robot, dt)
