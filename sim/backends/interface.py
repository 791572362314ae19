"""The small physics-backend interface the Go1 task is written against.

A backend simulates ``num_envs`` independent robots. It knows nothing of rewards, commands or
observations: it resets robots to given states, holds PD joint targets over ``decimation``
physics substeps (targets may change per substep, which is how action latency is modelled),
reports raw state, and applies per-env dynamics randomisation and pushes. All joint-indexed
tensors are in SDK motor order (FR, FL, RR, RL x hip, thigh, calf); each backend maps to its own
joint order internally through :meth:`unio4.robots.description.RobotDescription.sdk_to_backend`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Protocol

import torch

from unio4.deploy.observations import rotate_inverse


@dataclass
class RobotState:
    """Raw state of every env after a policy step (torch, float32, SDK joint order)."""

    base_pos: torch.Tensor  # (N, 3) world
    base_quat: torch.Tensor  # (N, 4) w, x, y, z
    base_lin_vel_world: torch.Tensor  # (N, 3)
    base_ang_vel_body: torch.Tensor  # (N, 3) what the IMU gyro measures
    joint_pos: torch.Tensor  # (N, 12)
    joint_vel: torch.Tensor  # (N, 12)
    joint_torque: torch.Tensor  # (N, 12) applied PD torque, last substep
    foot_force: torch.Tensor  # (N, 4) normal force, max over the substeps
    trunk_contact: torch.Tensor  # (N,) normal force on the trunk, max over the substeps
    thigh_contact: torch.Tensor  # (N, 4) normal force on the thighs, max over the substeps
    # (N, 8) normal force on the hips then the calves (SDK leg order), max over the substeps, from a backend
    # built with ``link_contacts`` (evaluation's gait metrics; MuJoCo and PyBullet); (N, 0) from any other
    link_contact: torch.Tensor

    def base_lin_vel_body(self) -> torch.Tensor:
        """(N, 3) the trunk's velocity in its own frame: what a velocity command asks of it."""
        return rotate_inverse(torch, self.base_quat, self.base_lin_vel_world)

    def select(self, ids: torch.Tensor) -> RobotState:
        """The rows ``ids`` of every field."""
        return RobotState(**{f.name: getattr(self, f.name)[ids] for f in fields(self)})

    def to(self, device: torch.device) -> RobotState:
        """Every field on ``device`` (no copy for fields already there)."""
        return RobotState(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})


@dataclass
class Dynamics:
    """Per-env dynamics parameters applied by :meth:`PhysicsBackend.set_dynamics`."""

    friction: torch.Tensor  # (n,) foot/ground sliding friction coefficient
    added_mass: torch.Tensor  # (n,) kg added to the trunk
    kp_scale: torch.Tensor  # (n,)
    kd_scale: torch.Tensor  # (n,)
    motor_strength: torch.Tensor  # (n,) multiplies the PD torque
    # (n,) 0: the foot pads' soft contact with torsional and rolling friction; 1: a stiff contact with
    # sliding friction only, as PyBullet's. None: the pads as built. Only MuJoCo CPU reads it; the other
    # engines keep their own contact model.
    foot_contact: torch.Tensor | None = None


class PhysicsBackend(Protocol):
    """What the task needs from an engine."""

    num_envs: int
    decimation: int

    def reset(
        self,
        env_ids: torch.Tensor,
        base_pos: torch.Tensor,
        base_quat: torch.Tensor,
        base_lin_vel_world: torch.Tensor,
        base_ang_vel_body: torch.Tensor,
        joint_pos: torch.Tensor,
        joint_vel: torch.Tensor,
    ) -> None:
        """Put envs ``env_ids`` into the given state (SDK joint order)."""

    def step(self, joint_targets: torch.Tensor) -> RobotState:
        """Advance every env by ``decimation`` substeps holding ``joint_targets`` (N, decimation, 12)."""

    def state(self) -> RobotState:
        """The current raw state without stepping."""

    def set_dynamics(self, env_ids: torch.Tensor, dynamics: Dynamics) -> None:
        """Apply per-env friction, added mass, PD gain scales and motor strength."""

    def push(self, env_ids: torch.Tensor, delta_lin_vel_world: torch.Tensor) -> None:
        """Add a velocity impulse (N, 3) to the base of envs ``env_ids``."""

    def close(self) -> None:
        """Release threads and native resources."""
