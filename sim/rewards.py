"""legged_gym-style reward terms, each a small named function of :class:`RewardInputs`, and their config.

The YAML config holds ``rewards.weights: {term: weight}``; an unknown term name is a config
error. Terms are pure functions of raw quantities, so rewards can be recomputed from logged raw
state with another reward config (robot logs, ``unio4 data pack``); :func:`reward_inputs` builds the
inputs from raw state for the task's step and for those logs alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from unio4.configs.loader import ConfigError, bounded, finite
from unio4.robots.description import RobotDescription


@dataclass(frozen=True)
class RewardConfig:
    """Weights of the terms below and the parameters they share (``rewards:`` in a task YAML)."""

    weights: dict[str, float] = finite(default_factory=dict)
    tracking_sigma: float = bounded(0.25, gt=0)
    base_height_target: float = bounded(0.27, ge=0)
    feet_air_time_target: float = bounded(0.5, ge=0)
    soft_joint_limit: float = bounded(0.9, gt=0, le=1)  # fraction of the range beyond which dof_pos_limits penalises
    soft_torque_limit: float = bounded(0.9, gt=0, le=1)  # fraction of a joint's torque limit beyond which torque_limits penalises
    contact_threshold: float = bounded(1.0, ge=0)  # N
    scale_by_dt: bool = True  # legged_gym multiplies every weight by the policy dt
    # gait_contact: each foot's stance window within a gait-clock cycle, SDK leg order (FR, FL, RR, RL).
    # Offsets 0, 1/2, 1/2, 0 with duty 1/2 is a trot (diagonal pairs), the built-in trot's phase.
    gait_duty: float = bounded(0.5, gt=0, lt=1)
    gait_offsets: tuple[float, float, float, float] = bounded((0.0, 0.5, 0.5, 0.0), ge=0, lt=1)
    gait_smoothing: float = bounded(0.07, gt=0, le=0.5)  # cycles: width of the schedule's edges
    gait_force_sigma: float = bounded(10.0, gt=0)  # N: a foot this loaded counts 63 % in contact
    gait_clearance: float = bounded(0.08, ge=0, le=0.3)  # m: peak foot lift of a swing, for gait_clearance
    only_positive: bool = False  # clip the total at zero (legged_gym option)


@dataclass
class RewardInputs:
    """Everything a reward term may read, for N envs (SDK joint order)."""

    commands: torch.Tensor  # (N, 3) vx, vy, yaw rate
    base_lin_vel: torch.Tensor  # (N, 3) base frame
    base_ang_vel: torch.Tensor  # (N, 3) base frame
    projected_gravity: torch.Tensor  # (N, 3)
    base_height: torch.Tensor  # (N,) above the terrain
    joint_pos: torch.Tensor
    joint_vel: torch.Tensor
    last_joint_vel: torch.Tensor
    joint_torque: torch.Tensor
    actions: torch.Tensor
    last_actions: torch.Tensor
    foot_force: torch.Tensor  # (N, 4) foot normal force (N in simulation; the sensor's units on a robot)
    foot_lift: torch.Tensor  # (N, 4) m each foot is raised in the base frame relative to the default pose
    first_contact: torch.Tensor  # (N, 4) bool: foot touched down this step
    air_time: torch.Tensor  # (N, 4) s in the air before this touchdown
    collision_force: torch.Tensor  # (N, 5) trunk + thighs normal force
    link_force: torch.Tensor  # (N, 8) hips + calves normal force; (N, 0) where the engine does not report them
    terminated: torch.Tensor  # (N,) bool
    soft_lower: torch.Tensor  # (12,)
    soft_upper: torch.Tensor  # (12,)
    default_joint_pos: torch.Tensor  # (12,)
    torque_limit: torch.Tensor  # (12,) Nm
    clock_cycles: torch.Tensor  # (N,) gait-clock cycles elapsed (policy time x clock frequency)
    dt: float


Term = Callable[[RewardInputs, RewardConfig], torch.Tensor]


def soft_joint_limits(lower: torch.Tensor, upper: torch.Tensor, fraction: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The central ``fraction`` of each joint range, beyond which ``dof_pos_limits`` penalises."""
    mid, half = (lower + upper) / 2, (upper - lower) / 2 * fraction
    return mid - half, mid + half


def air_time_step(air: torch.Tensor, contact: torch.Tensor, dt: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Feet air-time bookkeeping for one policy step (..., feet).

    Returns (first contact this step, air time at that touchdown, air time carried to the next step).
    """
    first_contact = (air > 0.0) & contact
    at_touchdown = air + dt
    return first_contact, at_touchdown, torch.where(contact, torch.zeros_like(at_touchdown), at_touchdown)


@dataclass(frozen=True)
class RewardConstants:
    """The fields of :class:`RewardInputs` that one robot and task fix, computed once."""

    soft_lower: torch.Tensor  # (12,)
    soft_upper: torch.Tensor  # (12,)
    default_joint_pos: torch.Tensor  # (12,)
    torque_limit: torch.Tensor  # (12,) Nm
    clock_frequency: float  # Hz: gait-clock cycles per second of policy time
    dt: float  # s per policy step

    @classmethod
    def for_robot(
        cls, robot: RobotDescription, cfg: RewardConfig, clock_frequency: float, dt: float, device: torch.device | str | None = None
    ) -> RewardConstants:
        """The constants of ``robot`` (float32) under reward config ``cfg``."""
        f32 = torch.float32
        lower = torch.tensor(robot.joint_lower, dtype=f32, device=device)
        upper = torch.tensor(robot.joint_upper, dtype=f32, device=device)
        soft_lower, soft_upper = soft_joint_limits(lower, upper, cfg.soft_joint_limit)
        default = torch.tensor(robot.default_joint_pos, dtype=f32, device=device)
        torque_limit = torch.tensor(robot.torque_limits, dtype=f32, device=device)
        return cls(soft_lower, soft_upper, default, torque_limit, clock_frequency, dt)


def body_contact_force(body_contact: tuple[torch.Tensor, torch.Tensor] | None, like: torch.Tensor) -> torch.Tensor:
    """Trunk (N,) and thigh (N, 4) normal forces as one (N, 5) tensor; zeros where unmeasured (None)."""
    if body_contact is None:
        return like.new_zeros(like.shape[0], 5)
    return torch.cat([body_contact[0].unsqueeze(1), body_contact[1]], 1)


def reward_inputs(
    constants: RewardConstants,
    *,
    commands: torch.Tensor,
    base_lin_vel: torch.Tensor,
    base_ang_vel: torch.Tensor,
    projected_gravity: torch.Tensor,
    base_height: torch.Tensor,
    joint_pos: torch.Tensor,
    joint_vel: torch.Tensor,
    joint_torque: torch.Tensor,
    foot_force: torch.Tensor,
    foot_lift: torch.Tensor,
    actions: torch.Tensor,
    last_actions: torch.Tensor,
    last_joint_vel: torch.Tensor,
    first_contact: torch.Tensor,
    air_time: torch.Tensor,
    body_contact: tuple[torch.Tensor, torch.Tensor] | None,
    terminated: torch.Tensor,
    time: torch.Tensor,
    link_contact: torch.Tensor | None = None,
) -> RewardInputs:
    """:class:`RewardInputs` of N envs (the task's step) or N logged steps (``unio4 data pack``) from raw state.

    The callers supply what they obtain differently: base velocity and height (truth or a log's estimate),
    ``foot_lift`` (float32 or float64 kinematics), the previous step (the env's or the log's row before),
    the touchdowns (:func:`air_time_step`, per step or replayed over a log), ``body_contact`` (trunk (N,),
    thighs (N, 4); None where unmeasured: zero), ``time`` (s of policy time, for the gait clock) and
    ``link_contact`` (hips and calves (N, 8); None or (N, 0) where unmeasured).
    """
    return RewardInputs(
        commands=commands,
        base_lin_vel=base_lin_vel,
        base_ang_vel=base_ang_vel,
        projected_gravity=projected_gravity,
        base_height=base_height,
        joint_pos=joint_pos,
        joint_vel=joint_vel,
        last_joint_vel=last_joint_vel,
        joint_torque=joint_torque,
        actions=actions,
        last_actions=last_actions,
        foot_force=foot_force,
        foot_lift=foot_lift,
        first_contact=first_contact,
        air_time=air_time,
        collision_force=body_contact_force(body_contact, base_height),
        link_force=link_contact if link_contact is not None else base_height.new_zeros(base_height.shape[0], 0),
        terminated=terminated,
        soft_lower=constants.soft_lower,
        soft_upper=constants.soft_upper,
        default_joint_pos=constants.default_joint_pos,
        torque_limit=constants.torque_limit,
        clock_cycles=time * constants.clock_frequency,
        dt=constants.dt,
    )


def tracking_lin_vel(x: RewardInputs, cfg: RewardConfig) -> torch.Tensor:
    err = torch.sum(torch.square(x.commands[:, :2] - x.base_lin_vel[:, :2]), dim=1)
    return torch.exp(-err / cfg.tracking_sigma)


def tracking_ang_vel(x: RewardInputs, cfg: RewardConfig) -> torch.Tensor:
    err = torch.square(x.commands[:, 2] - x.base_ang_vel[:, 2])
    return torch.exp(-err / cfg.tracking_sigma)


def lin_vel_z(x: RewardInputs, cfg: RewardConfig) -> torch.Tensor:
    return torch.square(x.base_lin_vel[:, 2])


def ang_vel_xy(x: RewardInputs, cfg: RewardConfig) -> torch.Tensor:
    return torch.sum(torch.square(x.base_ang_vel[:, :2]), dim=1)


def orientation(x: RewardInputs, cfg: RewardConfig) -> torch.Tensor:
    return torch.sum(torch.square(x.projected_gravity[:, :2]), dim=1)


def base_height(x: RewardInputs, cfg: RewardConfig) -> torch.Tensor:
    return torch.square(x.base_height - cfg.base_height_target)


def torques(x: RewardInputs, cfg: RewardConfig) -> torch.Tensor:
    return torch.sum(torch.square(x.joint_torque), dim=1)


def dof_vel(x: RewardInputs, cfg: RewardConfig) -> torch.Tensor:
    return torch.sum(torch.square(x.joint_vel), dim=1)


def dof_acc(x: RewardInputs, cfg: RewardConfig) -> torch.Tensor:
    return torch.sum(torch.square((x.joint_vel - x.last_joint_vel) / x.dt), dim=1)


def action_rate(x: RewardInputs, cfg: RewardConfig) -> torch.Tensor:
    return torch.sum(torch.square(x.actions - x.last_actions), dim=1)


def feet_air_time(x: RewardInputs, cfg: RewardConfig) -> torch.Tensor:
    reward = torch.sum((x.air_time - cfg.feet_air_time_target) * x.first_contact.float(), dim=1)
    return reward * (torch.norm(x.commands[:, :2], dim=1) > 0.1).float()


def foot_phase(x: RewardInputs, cfg: RewardConfig) -> torch.Tensor:
    """(N, 4) where each foot is in its gait cycle, in [0, 1): the clock plus the foot's offset."""
    return torch.remainder(x.clock_cycles.unsqueeze(1) + x.clock_cycles.new_tensor(cfg.gait_offsets), 1.0)


def gait_stance(x: RewardInputs, cfg: RewardConfig) -> torch.Tensor:
    """(N, 4) how much each foot is meant to be in stance now, in [0, 1], from the gait clock.

    Foot ``i`` stands while ``(cycles + offset_i) mod 1 < duty``; the edges of that window are
    smoothed with a normal CDF of width ``gait_smoothing`` (in cycles), as walk-these-ways does, so
    the target does not jump at touchdown and lift-off.
    """
    phase = foot_phase(x, cfg)
    k, d = cfg.gait_smoothing, cfg.gait_duty
    cdf = torch.special.ndtr
    return cdf(phase / k) * (1 - cdf((phase - d) / k)) + cdf((phase - 1) / k) * (1 - cdf((phase - 1 - d) / k))


def gait_contact(x: RewardInputs, cfg: RewardConfig) -> torch.Tensor:
    """How well the feet's loads follow the gait schedule of the policy's clock input, in [0, 1].

    Per foot: ``stance * (1 - exp(-F^2 / s^2)) + swing * exp(-F^2 / s^2)`` with ``s`` =
    ``gait_force_sigma`` (N): a loaded stance foot and an unloaded swing foot score 1, and a swing
    foot scores as it unloads, so shifting weight off it is rewarded before it ever lifts. Standing
    on four feet scores 1/2 and a trot in step with the clock 1: the term removes the standing
    optimum from the first update, as walk-these-ways' contact-schedule rewards do.
    """
    stance = gait_stance(x, cfg)
    unloaded = torch.exp(-torch.square(x.foot_force / cfg.gait_force_sigma))
    return (stance * (1 - unloaded) + (1 - stance) * unloaded).mean(1)


def gait_clearance(x: RewardInputs, cfg: RewardConfig) -> torch.Tensor:
    """Squared error of each swing foot's lift against a half-sine swing of height ``gait_clearance``.

    The lift is measured in the base frame from the joint angles, so the term has a gradient while
    the foot is still on the ground (a contact-based term has none until it leaves it); stance feet
    are left to the contact term. Use it with a negative weight (walk-these-ways' foot-clearance
    penalty, on the clock's schedule).
    """
    stance = gait_stance(x, cfg)
    phase = foot_phase(x, cfg)
    progress = ((phase - cfg.gait_duty) / (1.0 - cfg.gait_duty)).clamp(0.0, 1.0)
    target = cfg.gait_clearance * torch.sin(torch.pi * progress)
    return ((1.0 - stance) * torch.square(x.foot_lift - target)).sum(1)


def collision(x: RewardInputs, cfg: RewardConfig) -> torch.Tensor:
    return torch.sum((x.collision_force > cfg.contact_threshold).float(), dim=1)


def link_collision(x: RewardInputs, cfg: RewardConfig) -> torch.Tensor:
    """Hips and calves touching the ground, counted like :func:`collision` (which sees the trunk and thighs).

    The engine reports these links only when the task is built with ``link_contacts`` (the task does so
    when this term has a weight); a calf tapping the ground is otherwise invisible to training.
    """
    return torch.sum((x.link_force > cfg.contact_threshold).float(), dim=1)


def dof_pos_limits(x: RewardInputs, cfg: RewardConfig) -> torch.Tensor:
    below = (x.soft_lower - x.joint_pos).clamp(min=0.0)
    above = (x.joint_pos - x.soft_upper).clamp(min=0.0)
    return torch.sum(below + above, dim=1)


def torque_limits(x: RewardInputs, cfg: RewardConfig) -> torch.Tensor:
    """Nm above ``soft_torque_limit`` of each joint's limit, summed (legged_gym's ``_reward_torque_limits``)."""
    return torch.sum((x.joint_torque.abs() - cfg.soft_torque_limit * x.torque_limit).clamp(min=0.0), dim=1)


def stand_still(x: RewardInputs, cfg: RewardConfig) -> torch.Tensor:
    still = (torch.norm(x.commands[:, :2], dim=1) < 0.1).float()
    return torch.sum(torch.abs(x.joint_pos - x.default_joint_pos), dim=1) * still


def termination(x: RewardInputs, cfg: RewardConfig) -> torch.Tensor:
    return x.terminated.float()


TERMS: dict[str, Term] = {
    f.__name__: f
    for f in (
        tracking_lin_vel,
        tracking_ang_vel,
        lin_vel_z,
        ang_vel_xy,
        orientation,
        base_height,
        torques,
        dof_vel,
        dof_acc,
        action_rate,
        feet_air_time,
        gait_contact,
        gait_clearance,
        collision,
        link_collision,
        dof_pos_limits,
        torque_limits,
        stand_still,
        termination,
    )
}


def validate_weights(weights: dict[str, float], where: str) -> None:
    for name in weights:
        if name not in TERMS:
            raise ConfigError(f"{where}: unknown reward term {name!r} (known: {sorted(TERMS)})")


def compute_rewards(x: RewardInputs, cfg: RewardConfig) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Weighted sum of the configured terms, and each weighted term (for logging)."""
    scale = x.dt if cfg.scale_by_dt else 1.0
    total = torch.zeros_like(x.base_height)
    parts: dict[str, torch.Tensor] = {}
    for name, weight in cfg.weights.items():
        if weight == 0.0:
            continue
        value = TERMS[name](x, cfg) * (weight * scale)
        parts[name] = value
        total = total + value
    if cfg.only_positive:
        total = total.clamp(min=0.0)
    return total, parts
