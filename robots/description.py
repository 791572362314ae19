"""Robot description: physical parameters, joint constants and per-backend joint maps.

One YAML file per robot (``robots/<name>/<name>.yaml``) is the single source of truth. The MJCF
and the URDF are generated from it (:mod:`unio4.robots.mjcf`, :mod:`unio4.robots.urdf`), and both the
simulator and the deploy runtime read joint order, default pose, gains and rates from it. This
module imports numpy only, so the robot runtime can use it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from unio4.configs.loader import ConfigError, bounds, check_fields, did_you_mean, from_dict, read_yaml

ROBOTS_DIR = Path(__file__).resolve().parent
JOINT_PARTS = ("hip", "thigh", "calf")
Vec3 = tuple[float, float, float]


@dataclass(frozen=True)
class Inertial:
    """Mass, centre of mass and principal inertia with its orientation (w, x, y, z)."""

    mass: float = field(metadata=bounds(gt=0))
    com: Vec3 = field(metadata=bounds())
    inertia: Vec3 = field(metadata=bounds(gt=0))
    quat: tuple[float, float, float, float] = field(metadata=bounds())

    def __post_init__(self) -> None:
        check_fields(self)  # the declared ranges, for a description built in Python as for one loaded from YAML

    def inertia_matrix(self) -> np.ndarray:
        """Full 3x3 inertia about the COM in the body frame."""
        rot = quat_to_matrix(np.asarray(self.quat, dtype=np.float64))
        return rot @ np.diag(self.inertia) @ rot.T


@dataclass(frozen=True)
class Cylinder:
    radius: float = field(metadata=bounds(gt=0))
    half_length: float = field(metadata=bounds(gt=0))
    y: float = field(default=0.0, metadata=bounds())

    def __post_init__(self) -> None:
        check_fields(self)  # the declared ranges, for a description built in Python as for one loaded from YAML


@dataclass(frozen=True)
class Capsule:
    radius: float = field(metadata=bounds(gt=0))
    start: Vec3 = field(metadata=bounds())
    end: Vec3 = field(metadata=bounds())

    def __post_init__(self) -> None:
        check_fields(self)  # the declared ranges, for a description built in Python as for one loaded from YAML


@dataclass(frozen=True)
class BodyParams:
    trunk: Inertial
    trunk_box_half_size: Vec3 = field(metadata=bounds(gt=0))
    trunk_cylinder: Cylinder
    hip_offsets: dict[str, Vec3] = field(metadata=bounds())
    hip: dict[str, Inertial]
    hip_cylinder: Cylinder
    thigh_offset_y: float = field(metadata=bounds())
    thigh_right: Inertial
    thigh_left: Inertial
    thigh_capsule: Capsule
    thigh_length: float = field(metadata=bounds(gt=0))
    calf: Inertial
    calf_capsule: Capsule
    calf_length: float = field(metadata=bounds(gt=0))
    foot_radius: float = field(metadata=bounds(gt=0))
    foot_friction: float = field(metadata=bounds(gt=0))
    geom_friction: float = field(metadata=bounds(gt=0))

    def __post_init__(self) -> None:
        check_fields(self)  # the declared ranges, for a description built in Python as for one loaded from YAML


@dataclass(frozen=True)
class VisualParams:
    """Visual-only geometry: what renderers and the Rerun view draw (no contact, no mass; :mod:`unio4.robots.mjcf`).

    Cylinders' ``y`` is an offset along the body's y axis for a left leg, mirrored on the right legs.
    The thigh box runs from the thigh joint to the knee and the calf capsule from the knee to the foot,
    so their lengths are the links' (``body.thigh_length``, ``body.calf_length``).
    """

    trunk_half_size: Vec3 = field(metadata=bounds(gt=0))
    hip_motor: Cylinder  # the abduction motor's housing: axis x, at the hip joint
    thigh_motor: Cylinder  # the thigh (and knee) motors' housing: axis y, at the thigh joint
    knee: Cylinder  # axis y, at the calf joint
    thigh_half_width: tuple[float, float] = field(metadata=bounds(gt=0))  # (fore-aft, sideways) of the thigh box
    calf_radius: float = field(metadata=bounds(gt=0))
    body_rgba: tuple[float, float, float, float] = field(metadata=bounds(ge=0, le=1))  # trunk and links
    joint_rgba: tuple[float, float, float, float] = field(metadata=bounds(ge=0, le=1))  # motors, knees and feet

    def __post_init__(self) -> None:
        check_fields(self)  # the declared ranges, for a description built in Python as for one loaded from YAML


@dataclass(frozen=True)
class JointParams:
    range: dict[str, tuple[float, float]] = field(metadata=bounds(ge=-6.3, le=6.3))
    torque_limit: dict[str, float] = field(metadata=bounds(gt=0))
    velocity_limit: dict[str, float] = field(metadata=bounds(gt=0))
    damping: dict[str, float] = field(metadata=bounds(ge=0))
    armature: float = field(metadata=bounds(ge=0))
    frictionloss: float = field(metadata=bounds(ge=0))

    def __post_init__(self) -> None:
        check_fields(self)  # the declared ranges, for a description built in Python as for one loaded from YAML
        for table in (self.range, self.torque_limit, self.velocity_limit, self.damping):  # dict keys: no range expresses them
            if set(table) != set(JOINT_PARTS):
                raise ValueError(f"joint tables need exactly the keys {list(JOINT_PARTS)}, got {sorted(table)}")
        for part, (lo, hi) in self.range.items():  # across the two bounds of a range
            if lo >= hi:
                raise ValueError(f"range.{part}: lower bound {lo} >= upper bound {hi}")


@dataclass(frozen=True)
class ControlParams:
    default_pose: dict[str, tuple[float, float, float]] = field(metadata=bounds(ge=-6.3, le=6.3))
    kp: float = field(metadata=bounds(gt=0))
    kd: float = field(metadata=bounds(ge=0))
    action_scale: float = field(metadata=bounds(gt=0))
    hip_action_scale_factor: float = field(metadata=bounds(gt=0))
    sim_dt: float = field(metadata=bounds(gt=0, le=0.1))
    decimation: int = field(metadata=bounds(ge=1))
    sdk_dt: float = field(metadata=bounds(gt=0, le=0.1))
    nominal_base_height: float = field(metadata=bounds(gt=0))
    spawn_height: float = field(metadata=bounds(gt=0))
    damping_kd: float = field(metadata=bounds(gt=0))
    # The largest gains a command to this robot may carry: the deploy runtime's last check refuses
    # (and replaces with damping) any LowCmd above them, whatever a bundle's manifest says.
    max_kp: float = field(metadata=bounds(gt=0))
    max_kd: float = field(metadata=bounds(gt=0))
    lying_pose: tuple[float, float, float] = field(
        metadata=bounds(ge=-6.3, le=6.3)
    )  # rad (hip, thigh, calf): where a Go1 in low-level mode lies
    lying_height: float = field(metadata=bounds(gt=0))  # m, base height of the lying robot

    def __post_init__(self) -> None:
        check_fields(self)  # the declared ranges, for a description built in Python as for one loaded from YAML

    @property
    def policy_dt(self) -> float:
        return self.sim_dt * self.decimation


@dataclass(frozen=True)
class RobotDescription:
    """Everything known about one robot: body, joints, control constants, its look, backend joint maps."""

    name: str
    legs: tuple[str, ...]
    body: BodyParams
    joints: JointParams
    control: ControlParams
    visual: VisualParams
    backend_joint_order: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_fields(self)  # nothing declared here yet; the parts check themselves
        # across fields: the default pose and the backend joint orders must name this robot's legs and joints
        if set(self.control.default_pose) != set(self.legs):
            raise ValueError(f"control.default_pose must name the legs {list(self.legs)}")
        for backend, order in self.backend_joint_order.items():
            if sorted(order) != sorted(self.joint_short_names):
                raise ValueError(f"backend_joint_order.{backend}: must be a permutation of {self.joint_short_names}")

    # ---- joint order (SDK order is the canonical order everywhere in unio4) ----
    @cached_property
    def joint_short_names(self) -> list[str]:
        return [f"{leg}_{part}" for leg in self.legs for part in JOINT_PARTS]

    @cached_property
    def joint_names(self) -> list[str]:
        return [f"{n}_joint" for n in self.joint_short_names]

    @property
    def num_joints(self) -> int:
        return len(self.joint_short_names)

    def joint_part(self, index: int) -> str:
        return JOINT_PARTS[index % len(JOINT_PARTS)]

    def per_joint(self, table: dict[str, float]) -> np.ndarray:
        """Expand a {hip, thigh, calf} table to a vector in SDK order."""
        return np.array([table[self.joint_part(i)] for i in range(self.num_joints)], dtype=np.float64)

    @cached_property
    def default_joint_pos(self) -> np.ndarray:
        return np.array([q for leg in self.legs for q in self.control.default_pose[leg]], dtype=np.float64)

    @cached_property
    def lying_joint_pos(self) -> np.ndarray:
        """The folded pose the robot lies in before a low-level program stands it up (SDK order)."""
        return np.array([q * (self.leg_sign(leg) if i == 0 else 1.0) for leg in self.legs for i, q in enumerate(self.control.lying_pose)])

    @cached_property
    def joint_lower(self) -> np.ndarray:
        return np.array([self.joints.range[self.joint_part(i)][0] for i in range(self.num_joints)])

    @cached_property
    def joint_upper(self) -> np.ndarray:
        return np.array([self.joints.range[self.joint_part(i)][1] for i in range(self.num_joints)])

    @cached_property
    def torque_limits(self) -> np.ndarray:
        return self.per_joint(self.joints.torque_limit)

    @cached_property
    def velocity_limits(self) -> np.ndarray:
        """Rated top speed of each motor (rad/s, SDK order)."""
        return self.per_joint(self.joints.velocity_limit)

    @cached_property
    def action_scales(self) -> np.ndarray:
        """Per-joint action scale (hips scaled by ``hip_action_scale_factor``)."""
        scale = np.full(self.num_joints, self.control.action_scale)
        scale[0 :: len(JOINT_PARTS)] *= self.control.hip_action_scale_factor
        return scale

    def sdk_to_backend(self, backend: str) -> np.ndarray:
        """``idx[i]`` = the backend's joint index of SDK motor ``i``."""
        if backend not in self.backend_joint_order:
            raise KeyError(f"robot {self.name!r} has no joint order for backend {backend!r}")
        order = list(self.backend_joint_order[backend])
        return np.array([order.index(n) for n in self.joint_short_names], dtype=np.int64)

    def backend_to_sdk(self, backend: str) -> np.ndarray:
        """``idx[j]`` = the SDK motor index of the backend's joint ``j``."""
        return np.argsort(self.sdk_to_backend(backend))

    @cached_property
    def total_mass(self) -> float:
        """kg: trunk plus every leg's hip, thigh and calf."""
        b = self.body
        legs = sum(b.hip[leg].mass + (b.thigh_left if self.leg_sign(leg) > 0 else b.thigh_right).mass + b.calf.mass for leg in self.legs)
        return b.trunk.mass + legs

    def leg_sign(self, leg: str) -> float:
        """+1 for left legs, -1 for right legs (the y side of the hip)."""
        return 1.0 if leg.endswith("L") else -1.0


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """Rotation matrix of a unit quaternion (w, x, y, z)."""
    w, x, y, z = q / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def format_numbers(values: object) -> str:
    """A number or a sequence of numbers as MJCF/URDF attribute text."""
    if isinstance(values, (int, float)):
        return f"{values:.9g}"
    return " ".join(f"{float(v):.9g}" for v in values)  # type: ignore[attr-defined]


def robot_file(name: str) -> Path:
    return ROBOTS_DIR / name / f"{name}.yaml"


def load_robot(name_or_path: str | Path = "go1") -> RobotDescription:
    """Load a robot by name (``go1``) or from a YAML path."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml") and ("/" in str(name_or_path) or path.suffix):
        raise ConfigError(f"{path}: not a robot description; give a robot name (go1) or a .yaml file")
    if path.suffix not in (".yaml", ".yml"):
        path = robot_file(str(name_or_path))
        if not path.is_file():
            known = sorted(p.name for p in ROBOTS_DIR.iterdir() if (p / f"{p.name}.yaml").is_file())
            raise ConfigError(f"{path}: robot file not found (known robots: {known}){did_you_mean(str(name_or_path), known)}")
    return from_dict(RobotDescription, read_yaml(path), where=str(path))
