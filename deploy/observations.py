"""The policy observation, computed from raw robot state by ONE implementation for sim and robot.

The functions take an array namespace ``xp`` (``numpy`` on the robot, ``torch`` in the
simulator) and use only operations both provide with the same semantics, so the deploy runtime
(numpy + onnxruntime, no torch) and the vectorised task produce identical vectors from the same
raw state. This module must never import torch.

The layout of the observation is defined here once, as named segments (:data:`FRAME_SEGMENTS`,
:meth:`ObservationConfig.layout`, :func:`privileged_layout`); everything that builds, perturbs or
slices an observation asks a :class:`Layout` where a segment sits. One frame (SDK joint order):
    gyro * ang_vel_scale (3) | projected gravity (3) | commands * command_scale (3) |
    (q - q_default) * dof_pos_scale (12) | dq * dof_vel_scale (12) | last action (12) |
    gait clock (2, only when ``clock_frequency`` > 0)
The clock (walk-these-ways' clock inputs) tells a memoryless policy where it is in a periodic gait:
two triangle waves a quarter period apart, built from exact arithmetic (floor, abs, multiply) so
numpy and torch agree bit for bit where ``sin`` would not.
With ``history_length`` H > 1 the observation is the last H frames, oldest first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from unio4.configs.loader import bounded, check_fields

# The segments of one frame, in order: (name, size), None for one value per joint. The clock is there only
# when ``clock_frequency`` > 0. A bundle's manifest lists the names as ``observation.terms``.
FRAME_SEGMENTS: tuple[tuple[str, int | None], ...] = (
    ("gyro", 3),
    ("projected_gravity", 3),
    ("commands", 3),
    ("joint_pos", None),
    ("joint_vel", None),
    ("last_action", None),
    ("clock", 2),
)


@dataclass(frozen=True)
class Layout:
    """Named segments laid end to end: where each term sits in an observation vector."""

    segments: tuple[tuple[str, int], ...]  # (name, size), in order

    @property
    def names(self) -> tuple[str, ...]:
        """The segments' names, in order."""
        return tuple(name for name, _ in self.segments)

    @property
    def size(self) -> int:
        """Values in all segments together."""
        return sum(size for _, size in self.segments)

    def span(self, name: str) -> slice:
        """Where segment ``name`` sits (``obs[..., layout.span("commands")]``)."""
        start = 0
        for segment, size in self.segments:
            if segment == name:
                return slice(start, start + size)
            start += size
        raise KeyError(f"no observation segment {name!r}; the layout has {list(self.names)}")


def privileged_layout(num_feet: int) -> Layout:
    """What a privileged critic sees after the policy observation: simulator state no robot sensor gives."""
    dynamics = (("friction", 1), ("added_mass", 1), ("motor_strength", 1), ("kp_scale", 1), ("kd_scale", 1))
    return Layout((("base_lin_vel", 3), ("base_height", 1), *dynamics, ("foot_contact", num_feet)))


@dataclass(frozen=True)
class ObservationConfig:
    """Scales, clipping, history length and gait clock of the policy observation (part of a bundle's manifest)."""

    ang_vel_scale: float = bounded(0.25, gt=0)
    dof_pos_scale: float = bounded(1.0, gt=0)
    dof_vel_scale: float = bounded(0.05, gt=0)
    command_scale: tuple[float, float, float] = bounded((2.0, 2.0, 0.25), gt=0)
    clip: float = bounded(100.0, gt=0)
    history_length: int = bounded(1, ge=1)
    clock_frequency: float = bounded(0.0, ge=0, le=20)  # Hz of the gait clock input; 0 leaves it out

    def __post_init__(self) -> None:
        check_fields(self)  # the declared ranges, for a config built in Python as for one loaded from YAML

    def terms(self) -> tuple[str, ...]:
        """The names of a frame's segments, in order."""
        return tuple(name for name, _ in FRAME_SEGMENTS if name != "clock" or self.clock_frequency > 0)

    def layout(self, num_joints: int) -> Layout:
        """The segments of one frame for a robot with ``num_joints`` joints."""
        sizes = {name: num_joints if size is None else size for name, size in FRAME_SEGMENTS}
        return Layout(tuple((name, sizes[name]) for name in self.terms()))

    def frame_size(self, num_joints: int) -> int:
        """Values in one frame for a robot with ``num_joints`` joints."""
        return self.layout(num_joints).size

    def size(self, num_joints: int) -> int:
        """Values in the whole observation (``history_length`` frames)."""
        return self.frame_size(num_joints) * self.history_length


def projected_gravity(xp: Any, quat: Any) -> Any:
    """Gravity direction (0, 0, -1) in the base frame, from a (w, x, y, z) quaternion (..., 4)."""
    w, x, y, z = quat[..., 0], quat[..., 1], quat[..., 2], quat[..., 3]
    gx = 2.0 * (w * y - x * z)
    gy = -2.0 * (w * x + y * z)
    gz = 1.0 - 2.0 * (w * w + z * z)
    return xp.stack([gx, gy, gz], -1)


def rotate_inverse(xp: Any, quat: Any, vec: Any) -> Any:
    """Rotate world vectors (..., 3) into the frame of quaternion ``quat`` (..., 4)."""
    w = quat[..., 0:1]
    u = quat[..., 1:4]
    uv = _cross(xp, u, vec)
    return vec * (2.0 * w * w - 1.0) - 2.0 * w * uv + 2.0 * u * (u * vec).sum(-1, keepdims=True)


def _cross(xp: Any, a: Any, b: Any) -> Any:
    return xp.stack(
        [
            a[..., 1] * b[..., 2] - a[..., 2] * b[..., 1],
            a[..., 2] * b[..., 0] - a[..., 0] * b[..., 2],
            a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0],
        ],
        -1,
    )


def observation_frame(
    xp: Any,
    cfg: ObservationConfig,
    quat: Any,
    gyro: Any,
    joint_pos: Any,
    joint_vel: Any,
    commands: Any,
    last_action: Any,
    default_joint_pos: Any,
    time_s: Any = None,
) -> Any:
    """One observation frame (..., frame_size) from raw state; see the module docstring.

    ``time_s`` (...,) is the time since the policy started (the episode time in simulation); it is
    needed only when the config has a gait clock.
    """
    cmd_scale = xp.asarray(cfg.command_scale, dtype=commands.dtype) if xp.__name__ == "numpy" else commands.new_tensor(cfg.command_scale)
    terms = {
        "gyro": gyro * cfg.ang_vel_scale,
        "projected_gravity": projected_gravity(xp, quat),
        "commands": commands * cmd_scale,
        "joint_pos": (joint_pos - default_joint_pos) * cfg.dof_pos_scale,
        "joint_vel": joint_vel * cfg.dof_vel_scale,
        "last_action": last_action,
    }
    if cfg.clock_frequency > 0:
        if time_s is None:
            raise ValueError("observation_frame: this config has a gait clock, so time_s is required")
        terms["clock"] = gait_clock(xp, time_s * cfg.clock_frequency)
    return xp.clip(xp.concatenate([terms[name] for name in cfg.terms()], -1), -cfg.clip, cfg.clip)


def gait_clock(xp: Any, cycles: Any) -> Any:
    """(..., 2) cos-like and sin-like triangle waves of the gait phase, from elapsed cycles (...,)."""
    phase = cycles - xp.floor(cycles)
    quarter = phase + 0.25
    return xp.stack([4.0 * xp.abs(phase - 0.5) - 1.0, 4.0 * xp.abs(quarter - xp.floor(quarter) - 0.5) - 1.0], -1)


def start_history(xp: Any, frame: Any, length: int) -> Any:
    """A fresh history (..., length * F): the first frame ``length`` times, oldest first."""
    return xp.concatenate([frame] * length, -1)


def push_history(xp: Any, history: Any, frame: Any) -> Any:
    """Drop the oldest frame of ``history`` (..., H * F) and append ``frame`` (..., F)."""
    width = frame.shape[-1]
    return xp.concatenate([history[..., width:], frame], -1)
