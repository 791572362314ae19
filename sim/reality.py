"""Reality-gap profiles for ``unio4 emulate``: a robot that differs from the one the policy trained on.

The emulator is the training simulator's robot unless a profile says otherwise. A profile
(``configs/reality/<name>.yaml``, :class:`RealityConfig`) changes what a real Go1 plausibly gets
wrong, in four groups:

- **body**: a payload (mass and where it sits), and ground friction;
- **motors** (:class:`MotorModel`): output strength, a first-order lag of the torque, the
  torque-speed limit of the motor (available torque falling linearly to zero at the no-load
  speed), and extra joint friction and damping;
- **sensors** (:class:`SensorModel`): latency in 2 ms ticks, noise, gyro bias, an IMU mounted
  tilted, and foot-force sensors that report raw counts rather than Newtons;
- **engine**: MuJoCo or PyBullet.

Body, friction and joint friction/damping change the robot description the engine is built from
(so both engines get them); the motor model turns the emulator's PD law explicit, so strength, lag
and the torque-speed limit act on the torque each tick; the sensor model acts on the LowState
before it is encoded. The default profile changes nothing.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from unio4.configs.loader import bounded, check_fields, finite
from unio4.robots.description import Inertial, RobotDescription

Vec3 = tuple[float, float, float]


@dataclass(frozen=True)
class MotorModel:
    """How the motors differ from the ideal PD torque source of the training simulator."""

    strength: float = bounded(1.0, gt=0, le=2)  # output torque (and its limit) x this
    leg_strength: tuple[float, float, float, float] = bounded((1.0, 1.0, 1.0, 1.0), gt=0, le=2)  # x strength, per leg (FR, FL, RR, RL)
    lag_s: float = bounded(0.0, ge=0, le=0.1)  # time constant of a first-order lag on the torque
    torque_speed: bool = False  # available torque falls linearly from the limit at rest to 0 at the no-load speed
    no_load_speed_scale: float = bounded(1.5, gt=0, le=10)  # no-load speed = this x the rated velocity limit
    joint_friction_scale: float = bounded(1.0, ge=0, le=20)  # x the description's joint friction loss
    joint_damping_scale: float = bounded(1.0, ge=0, le=20)  # x the description's joint damping

    @property
    def explicit(self) -> bool:
        """Whether the torque needs computing per tick (strength, lag or torque-speed differ from ideal)."""
        return self.strength != 1.0 or self.lag_s > 0 or self.torque_speed or self.leg_strength != (1.0, 1.0, 1.0, 1.0)

    def joint_strength(self) -> np.ndarray:
        """Each joint's torque factor (SDK order: three joints per leg): ``strength`` x its leg's."""
        return self.strength * np.repeat(np.asarray(self.leg_strength, dtype=float), 3)


@dataclass(frozen=True)
class SensorModel:
    """How the LowState differs from the true state."""

    latency_ticks: int = bounded(0, ge=0, le=50)  # states leave this many 2 ms ticks late
    joint_pos_noise: float = bounded(0.0, ge=0, le=0.5)  # rad (std)
    joint_vel_noise: float = bounded(0.0, ge=0, le=20)  # rad/s (std)
    gyro_noise: float = bounded(0.0, ge=0, le=5)  # rad/s (std)
    gyro_bias: Vec3 = bounded((0.0, 0.0, 0.0), ge=-1, le=1)  # rad/s
    imu_tilt: tuple[float, float] = bounded((0.0, 0.0), ge=-0.3, le=0.3)  # rad: roll, pitch of the IMU's mounting error
    foot_force_scale: float = bounded(1.0, ge=0, le=100)  # reported = scale x force (N) + offset
    foot_force_offset: float = finite(0.0)


@dataclass(frozen=True)
class RealityConfig:
    """A reality-gap profile (``configs/reality/``); every field's default is "as trained"."""

    physics: Literal["mujoco", "pybullet"] | None = None  # the engine; None: the emulator's --physics
    payload_kg: float = bounded(0.0, ge=0, le=10)
    payload_position: Vec3 = bounded((0.0, 0.0, 0.0), ge=-0.5, le=0.5)  # m, base frame, where the payload's mass sits
    friction_scale: float = bounded(1.0, gt=0, le=3)  # x the feet's and the ground's friction
    motor: MotorModel = field(default_factory=MotorModel)
    sensors: SensorModel = field(default_factory=SensorModel)

    def __post_init__(self) -> None:
        check_fields(self)  # the declared ranges and choices, for a config built in Python as for one loaded from YAML

    def apply(self, robot: RobotDescription) -> RobotDescription:
        """The description the emulated robot is built from: payload, friction, joint friction and damping."""
        body = robot.body
        if self.payload_kg > 0:
            body = dataclasses.replace(body, trunk=add_point_mass(body.trunk, self.payload_kg, np.asarray(self.payload_position)))
        body = dataclasses.replace(
            body, foot_friction=body.foot_friction * self.friction_scale, geom_friction=body.geom_friction * self.friction_scale
        )
        m, j = self.motor, robot.joints
        joints = dataclasses.replace(
            j,
            frictionloss=j.frictionloss * m.joint_friction_scale,
            damping={k: v * m.joint_damping_scale for k, v in j.damping.items()},
            torque_limit={k: v * m.strength for k, v in j.torque_limit.items()},
        )
        return dataclasses.replace(robot, body=body, joints=joints)


def add_point_mass(body: Inertial, mass: float, position: np.ndarray) -> Inertial:
    """``body`` with a point mass rigidly attached at ``position`` (body frame): new mass, COM and inertia."""
    total = body.mass + mass
    com = (body.mass * np.asarray(body.com) + mass * position) / total

    def shift(m: float, r: np.ndarray) -> np.ndarray:  # parallel axis: a mass m at r from the new COM
        return m * (float(r @ r) * np.eye(3) - np.outer(r, r))

    inertia = body.inertia_matrix() + shift(body.mass, np.asarray(body.com) - com) + shift(mass, position - com)
    principal, axes = np.linalg.eigh(inertia)
    if np.linalg.det(axes) < 0:
        axes[:, 0] = -axes[:, 0]
    return Inertial(mass=total, com=tuple(com.tolist()), inertia=tuple(principal.tolist()), quat=matrix_to_quat(axes))


def matrix_to_quat(r: np.ndarray) -> tuple[float, float, float, float]:
    """(w, x, y, z) of a rotation matrix (Shepperd's method)."""
    trace = np.trace(r)
    if trace > 0:
        s = 2.0 * np.sqrt(trace + 1.0)
        q = (0.25 * s, (r[2, 1] - r[1, 2]) / s, (r[0, 2] - r[2, 0]) / s, (r[1, 0] - r[0, 1]) / s)
    else:
        i = int(np.argmax(np.diag(r)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * np.sqrt(1.0 + r[i, i] - r[j, j] - r[k, k])
        v = [0.0, 0.0, 0.0]
        v[i], v[j], v[k] = 0.25 * s, (r[j, i] + r[i, j]) / s, (r[k, i] + r[i, k]) / s
        q = ((r[k, j] - r[j, k]) / s, *v)
    w, x, y, z = (float(c) for c in q)
    return (w, x, y, z) if w >= 0 else (-w, -x, -y, -z)


class MotorDrive:
    """The motor model of a profile, applied to the PD torque each tick (when :attr:`MotorModel.explicit`)."""

    def __init__(self, model: MotorModel, robot: RobotDescription, dt: float) -> None:
        self.model = model
        self.strength = model.joint_strength()
        self.limit = robot.torque_limits * np.asarray(np.repeat(model.leg_strength, 3))  # already x strength (RealityConfig.apply)
        self.no_load = robot.velocity_limits * model.no_load_speed_scale
        self.alpha = 1.0 if model.lag_s <= 0 else dt / (model.lag_s + dt)
        self.torque = np.zeros(robot.num_joints)

    def reset(self) -> None:
        self.torque[:] = 0.0

    def __call__(self, command: np.ndarray, joint_vel: np.ndarray) -> np.ndarray:
        """The torque the motors deliver this tick for the commanded PD torque ``command``."""
        m = self.model
        self.torque += self.alpha * (self.strength * command - self.torque)
        limit = self.limit * np.clip(1.0 - np.abs(joint_vel) / self.no_load, 0.0, 1.0) if m.torque_speed else self.limit
        return np.clip(self.torque, -limit, limit)


def tilt_quat(quat: np.ndarray, roll: float, pitch: float) -> np.ndarray:
    """The orientation an IMU mounted rolled and pitched by (roll, pitch) reports: ``quat * q_mount``."""
    cr, sr, cp, sp = np.cos(roll / 2), np.sin(roll / 2), np.cos(pitch / 2), np.sin(pitch / 2)
    mount = np.array([cr * cp, sr * cp, cr * sp, -sr * sp])  # Ry(pitch) Rx(roll)
    w1, x1, y1, z1 = quat
    w2, x2, y2, z2 = mount
    return np.array(
        [
            w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
            w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
            w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
            w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
        ]
    )
