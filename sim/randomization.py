"""Domain randomisation of the Go1 task: what is drawn per episode, per step, and how.

Per episode (at every reset): ground friction, payload added to the trunk, motor strength, Kp and
Kd scales (:class:`unio4.sim.backends.interface.Dynamics`, applied by the backend), action latency in
physics substeps, and the initial joint pose as a scale of the default pose. Per step: uniform
observation noise in the units of the raw quantities and, every ``push_interval_s``, a horizontal
velocity kick. Every draw uses the task's seeded generator, so a seed fixes the whole sequence.
With ``enabled: false`` every robot gets the nominal robot (the description's foot friction, no
payload, unit gains, no latency, the default pose) and no noise or pushes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from unio4.configs.loader import bounded
from unio4.robots.description import RobotDescription
from unio4.sim.backends.interface import Dynamics

Range = tuple[float, float]


@dataclass(frozen=True)
class NoiseConfig:
    """Uniform observation noise, in the units of the raw quantities (before obs scaling)."""

    enabled: bool = True
    gyro: float = bounded(0.2, ge=0)
    gravity: float = bounded(0.05, ge=0)
    joint_pos: float = bounded(0.01, ge=0)
    joint_vel: float = bounded(1.5, ge=0)


@dataclass(frozen=True)
class RandomizationConfig:
    enabled: bool = True
    friction: Range = bounded((0.5, 1.25), ge=0)
    added_mass: Range = bounded((-1.0, 3.0), ge=-5, le=20)
    motor_strength: Range = bounded((0.9, 1.1), gt=0)
    kp_scale: Range = bounded((0.9, 1.1), gt=0)
    kd_scale: Range = bounded((0.9, 1.1), ge=0)
    latency_s: Range = bounded((0.0, 0.02), ge=0, le=0.1)
    push_interval_s: float = bounded(15.0, gt=0)
    push_max_vel: float = bounded(1.0, ge=0)
    init_joint_scale: Range = bounded((0.5, 1.5), gt=0)
    # Foot contact from the pads' soft, twist-resisting contact (0) to a stiff point contact (1), PyBullet's
    # kind (docs/benchmarks/time-to-walk.md, "What the PyBullet yaw gap is made of"); read by MuJoCo CPU only.
    foot_contact: Range = bounded((0.0, 0.0), ge=0, le=1)
    noise: NoiseConfig = field(default_factory=NoiseConfig)


def uniform(gen: torch.Generator, lo: float, hi: float, shape: tuple[int, ...]) -> torch.Tensor:
    """Samples of U(lo, hi) with ``shape`` on the generator's device."""
    return lo + (hi - lo) * torch.rand(shape, generator=gen, device=gen.device)


def sample_dynamics(cfg: RandomizationConfig, robot: RobotDescription, n: int, gen: torch.Generator) -> Dynamics:
    """Per-episode dynamics of ``n`` robots (the nominal robot when randomisation is off)."""
    if cfg.enabled:
        return Dynamics(
            friction=uniform(gen, *cfg.friction, (n,)),
            added_mass=uniform(gen, *cfg.added_mass, (n,)),
            kp_scale=uniform(gen, *cfg.kp_scale, (n,)),
            kd_scale=uniform(gen, *cfg.kd_scale, (n,)),
            motor_strength=uniform(gen, *cfg.motor_strength, (n,)),
            # drawn last and only when asked for, so that every other draw stays where it was
            foot_contact=uniform(gen, *cfg.foot_contact, (n,)) if cfg.foot_contact[1] > 0 else None,
        )
    ones = torch.ones(n, device=gen.device)
    return Dynamics(
        friction=ones * robot.body.foot_friction, added_mass=ones * 0.0, kp_scale=ones, kd_scale=ones.clone(), motor_strength=ones.clone()
    )


def sample_latency_substeps(cfg: RandomizationConfig, robot: RobotDescription, n: int, gen: torch.Generator) -> torch.Tensor:
    """Action latency of ``n`` robots in physics substeps, at most one policy step (0 when off)."""
    if not cfg.enabled:
        return torch.zeros(n, dtype=torch.long, device=gen.device)
    substeps = uniform(gen, *cfg.latency_s, (n,)) / robot.control.sim_dt
    return substeps.round().long().clamp(0, robot.control.decimation)


def initial_joint_scale(cfg: RandomizationConfig, n: int, gen: torch.Generator) -> torch.Tensor:
    """(n, 1) factors on the default joint pose at reset (1 when off)."""
    return uniform(gen, *cfg.init_joint_scale, (n, 1)) if cfg.enabled else torch.ones(n, 1, device=gen.device)


def push_velocities(cfg: RandomizationConfig, n: int, gen: torch.Generator) -> torch.Tensor:
    """(n, 3) world-frame velocity kicks, horizontal, each axis U(-push_max_vel, push_max_vel)."""
    kick = torch.zeros(n, 3, device=gen.device)
    kick[:, :2] = uniform(gen, -cfg.push_max_vel, cfg.push_max_vel, (n, 2))
    return kick


def pushes_enabled(cfg: RandomizationConfig) -> bool:
    return cfg.enabled and cfg.push_max_vel > 0


def noise_enabled(cfg: RandomizationConfig) -> bool:
    return cfg.enabled and cfg.noise.enabled


def observation_noise(scale: torch.Tensor, shape: torch.Size, gen: torch.Generator) -> torch.Tensor:
    """Uniform noise in [-scale, scale] per observation value."""
    return scale * (2.0 * torch.rand(shape, generator=gen, device=gen.device) - 1.0)
