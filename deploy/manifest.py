"""A bundle's ``manifest.yaml``, typed and checked: the contract between a policy and the robot runtime.

:func:`parse_manifest` turns the YAML mapping into :class:`Manifest` (every field present, of the
right type, finite and in range, the per-joint lists as long as the robot has joints), with a
one-line error naming the file and the field. :func:`check_against_robot` then compares what the
manifest says about the robot with the robot description (``robots/<robot>/<robot>.yaml``), the
authority: a bundle whose gains, limits, default pose, action scales or rates disagree beyond the
tolerances below is refused. Joint and torque limits may be tighter than the description's, never
wider. numpy + PyYAML only (the robot side).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from unio4.configs.loader import ConfigError, bounded, bounds, check_fields, finite, from_dict
from unio4.deploy.observations import ObservationConfig
from unio4.robots.description import RobotDescription

SUPPORTED_FORMAT = 2  # 2: SHA256SUMS covers every file of the bundle, the manifest included

# How far a manifest may differ from the robot description.
POSE_TOLERANCE = 1e-4  # rad: default pose
LIMIT_TOLERANCE = 1e-6  # rad or N m: joint range and torque limits may only be tighter than this
RELATIVE_TOLERANCE = 1e-6  # gains and action scales, relative
RATE_TOLERANCE = 1e-9  # s: policy and SDK periods


@dataclass(frozen=True)
class PolicyFileSpec:
    """The ONNX graph: its file name and its input and output shapes."""

    file: str
    input: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ObservationSpec:
    """What the policy observes: sizes, term names and the observation config."""

    size: int = field(metadata=bounds(ge=1))
    frame_size: int = field(metadata=bounds(ge=1))
    config: ObservationConfig
    terms: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_fields(self)  # the declared ranges, for a manifest built in Python as for one parsed from YAML


@dataclass(frozen=True)
class ActionSpec:
    """How actions become joint targets: ``q_default + scale * clip(action)``."""

    size: int = field(metadata=bounds(ge=1))
    clip: float = field(metadata=bounds(gt=0))
    scales: tuple[float, ...] = field(metadata=bounds(gt=0))
    target: str = "q_default + scale * clip(action)"

    def __post_init__(self) -> None:
        check_fields(self)  # the declared ranges, for a manifest built in Python as for one parsed from YAML


@dataclass(frozen=True)
class JointSpec:
    """Joint order, default pose and limits the policy was trained with (SDK order)."""

    order: tuple[str, ...]
    default_pos: tuple[float, ...] = field(metadata=bounds(ge=-6.3, le=6.3))
    lower: tuple[float, ...] = field(metadata=bounds(ge=-6.3, le=6.3))
    upper: tuple[float, ...] = field(metadata=bounds(ge=-6.3, le=6.3))
    torque_limit: tuple[float, ...] = field(metadata=bounds(gt=0))

    def __post_init__(self) -> None:
        check_fields(self)  # the declared ranges, for a manifest built in Python as for one parsed from YAML


@dataclass(frozen=True)
class ControlSpec:
    """PD gains, damping gain and the policy and SDK periods."""

    kp: float = field(metadata=bounds(gt=0))
    kd: float = field(metadata=bounds(ge=0))
    policy_dt: float = field(metadata=bounds(gt=0, le=1))
    sdk_dt: float = field(metadata=bounds(gt=0, le=0.1))
    damping_kd: float = field(metadata=bounds(gt=0))

    def __post_init__(self) -> None:
        check_fields(self)  # the declared ranges, for a manifest built in Python as for one parsed from YAML
        # across fields: the policy period is a whole number of SDK periods
        ratio = self.policy_dt / self.sdk_dt
        if abs(ratio - round(ratio)) > 1e-6 or round(ratio) < 1:
            raise ValueError(f"policy_dt {self.policy_dt} is not a whole multiple of sdk_dt {self.sdk_dt}")

    @property
    def decimation(self) -> int:
        """SDK ticks per policy step."""
        return round(self.policy_dt / self.sdk_dt)


@dataclass(frozen=True)
class CommandSpec:
    """The command ranges the policy was trained on (the task's ``commands``)."""

    lin_vel_x: tuple[float, float] = finite((-1.0, 1.0))
    lin_vel_y: tuple[float, float] = finite((-1.0, 1.0))
    ang_vel_yaw: tuple[float, float] = finite((-1.0, 1.0))
    resample_time_s: float = bounded(10.0, gt=0)
    zero_below: float = bounded(0.0, ge=0)

    def __post_init__(self) -> None:
        check_fields(self)  # the declared ranges, for a manifest built in Python as for one parsed from YAML
        for name in ("lin_vel_x", "lin_vel_y", "ang_vel_yaw"):  # across the two bounds of a range
            lo, hi = getattr(self, name)
            if lo > hi:
                raise ValueError(f"{name}: lower bound {lo} > upper bound {hi}")

    @property
    def max_abs(self) -> np.ndarray:
        """The largest |vx|, |vy|, |yaw rate| of the ranges (what a full stick deflection asks for)."""
        return np.array([max(abs(lo), abs(hi)) for lo, hi in (self.lin_vel_x, self.lin_vel_y, self.ang_vel_yaw)])


@dataclass(frozen=True)
class Manifest:
    """The whole manifest; see the module docstring."""

    format: int
    robot: str
    policy: PolicyFileSpec
    observation: ObservationSpec
    action: ActionSpec
    joints: JointSpec
    control: ControlSpec
    commands: CommandSpec = field(default_factory=CommandSpec)
    files: dict[str, str] = field(default_factory=dict)
    lineage: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_fields(self)  # nothing declared here yet; the sections check themselves
        # one supported value, refused with advice (re-export) that a range's message would not give
        if self.format != SUPPORTED_FORMAT:
            hint = "; re-export it with unio4 export" if self.format < SUPPORTED_FORMAT else ""
            raise ValueError(f"format is {self.format}, this runtime reads format {SUPPORTED_FORMAT}{hint}")
        n = self.action.size  # across sections: every per-joint list has one value per action
        for name, values in (
            ("action.scales", self.action.scales),
            ("joints.order", self.joints.order),
            ("joints.default_pos", self.joints.default_pos),
            ("joints.lower", self.joints.lower),
            ("joints.upper", self.joints.upper),
            ("joints.torque_limit", self.joints.torque_limit),
        ):
            if len(values) != n:
                raise ValueError(f"{name}: {len(values)} values, action.size is {n}")
        if any(lo >= hi for lo, hi in zip(self.joints.lower, self.joints.upper)):
            raise ValueError("joints: every lower limit must be below its upper limit")
        if self.observation.config.size(n) != self.observation.size:
            raise ValueError(f"observation.size is {self.observation.size}, observation.config gives {self.observation.config.size(n)}")
        if self.policy.file not in self.files:
            raise ValueError(f"files has no sha256 for {self.policy.file}")


def parse_manifest(data: Any, where: str) -> Manifest:
    """The typed manifest of YAML data ``data`` read from ``where``; :class:`ConfigError` names what is wrong."""
    return from_dict(Manifest, data, where=where)


def check_against_robot(m: Manifest, robot: RobotDescription, where: str) -> None:
    """Raise :class:`ConfigError` naming the field where ``m`` disagrees with the robot description."""

    def refuse(name: str, got: Any, expected: str) -> None:
        raise ConfigError(f"{where}: {name} is {got}, the {robot.name} description needs {expected}")

    if m.robot != robot.name:
        refuse("robot", repr(m.robot), repr(robot.name))
    if tuple(m.joints.order) != tuple(robot.joint_names):
        refuse("joints.order", list(m.joints.order), f"the SDK order {list(robot.joint_names)}")
    c, rc = m.control, robot.control
    for name, got, want in (("control.kp", c.kp, rc.kp), ("control.kd", c.kd, rc.kd), ("control.damping_kd", c.damping_kd, rc.damping_kd)):
        if abs(got - want) > RELATIVE_TOLERANCE * max(abs(want), 1.0):
            refuse(name, got, f"{want}")
    for name, got, want in (("control.policy_dt", c.policy_dt, rc.policy_dt), ("control.sdk_dt", c.sdk_dt, rc.sdk_dt)):
        if abs(got - want) > RATE_TOLERANCE:
            refuse(name, got, f"{want} s")
    pose = np.asarray(m.joints.default_pos)
    if np.max(np.abs(pose - robot.default_joint_pos)) > POSE_TOLERANCE:
        refuse("joints.default_pos", list(pose), f"{list(robot.default_joint_pos)} within {POSE_TOLERANCE} rad")
    scales = np.asarray(m.action.scales)
    if np.max(np.abs(scales - robot.action_scales) / robot.action_scales) > RELATIVE_TOLERANCE:
        refuse("action.scales", list(scales), f"{list(robot.action_scales)}")
    if np.any(np.asarray(m.joints.lower) < robot.joint_lower - LIMIT_TOLERANCE):
        refuse("joints.lower", list(m.joints.lower), f"limits no wider than {list(robot.joint_lower)}")
    if np.any(np.asarray(m.joints.upper) > robot.joint_upper + LIMIT_TOLERANCE):
        refuse("joints.upper", list(m.joints.upper), f"limits no wider than {list(robot.joint_upper)}")
    if np.any(np.asarray(m.joints.torque_limit) > robot.torque_limits + LIMIT_TOLERANCE):
        refuse("joints.torque_limit", list(m.joints.torque_limit), f"limits no larger than {list(robot.torque_limits)}")
