"""Gait quality of a recorded walk: what tracking errors and falls do not see.

A policy can track its commands and never fall while it drags its knees, slides its feet or
vibrates its joints; none of that shows in :mod:`unio4.sim.evaluate`'s tracking numbers. The
functions here score the gait itself from a :class:`GaitTrajectory` (arrays over time x robots,
SI units, world frame), one function per metric and :func:`gait_metrics` for all of them, and
:func:`format_gait_table` prints them one row per engine. Definitions, units and published
reference figures: docs/gait.md.

numpy only. The same functions score a simulated evaluation (:class:`unio4.sim.gait_recording.GaitRecorder`
records the trajectory) and a robot or emulator log (:func:`log_gait_metrics`: the subset that joint
state, torques, actions and foot forces allow). A metric without the data it needs, or without a
sample to average, is NaN: "n/a" in the table, ``null`` in JSON.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from unio4.configs.loader import bounded, check_fields
from unio4.deploy.rollout_log import RolloutData, read_log
from unio4.robots.description import RobotDescription
from unio4.robots.kinematics import STANCE_FORCE

NAN = float("nan")


@dataclass(frozen=True)
class GaitMetricsConfig:
    """Thresholds of the gait metrics (docs/gait.md)."""

    foot_contact_force: float = bounded(1.0, gt=0)  # N: a foot pressing harder is in contact (the task's contact_threshold)
    body_contact_force: float = bounded(1.0, gt=0)  # N: a trunk, hip, thigh or calf pressing harder touches the ground
    torque_fraction: float = bounded(0.9, gt=0, le=1)  # of a joint's torque limit: "at the limit" above it
    min_speed: float = bounded(0.1, gt=0)  # m/s: a mean base speed below this leaves the cost of transport n/a
    gravity: float = bounded(9.81, gt=0)  # m/s^2, the engines' gravity
    log_foot_contact_force: float = bounded(STANCE_FORCE, gt=0)  # a robot log's foot-force units (robots.kinematics)

    def __post_init__(self) -> None:
        check_fields(self)  # the declared ranges, for a config built in Python too


@dataclass
class GaitTrajectory:
    """A recorded walk: every array time-major, (T steps, N robots, ...), one sample per policy step.

    Joints (J) and feet (F) are in SDK order. The optional fields are what a robot log lacks (it
    measures neither the base's height and speed nor the feet's positions); their metrics are NaN.
    """

    dt: float  # s between samples
    joint_pos: np.ndarray  # (T, N, J) rad
    joint_vel: np.ndarray  # (T, N, J) rad/s
    joint_torque: np.ndarray  # (T, N, J) N m, applied
    actions: np.ndarray  # (T, N, J) policy actions, as applied (clipped)
    foot_contact: np.ndarray  # (T, N, F) bool: the foot touched the ground during the step
    episode_end: np.ndarray  # (T, N) bool: the robot's episode ended at step t (t + 1 starts a new one)
    default_joint_pos: np.ndarray  # (J,) rad
    torque_limit: np.ndarray  # (J,) N m
    base_height: np.ndarray | None = None  # (T, N) m, trunk origin above the ground below it
    speed: np.ndarray | None = None  # (T, N) m/s, the base's horizontal speed |v_xy|
    mass: np.ndarray | None = None  # (T, N) kg, the robot with any added payload
    foot_height: np.ndarray | None = None  # (T, N, F) m, each foot's lowest point above the ground (negative: sunk in)
    foot_velocity: np.ndarray | None = None  # (T, N, F, 3) m/s, world velocity of the foot's point at the ground (contact point)
    body_contact: np.ndarray | None = None  # (T, N, K) bool: non-foot link k touched the ground during the step


@dataclass(frozen=True)
class GaitMetrics:
    """One evaluation's gait numbers (NaN: not measurable from what was recorded)."""

    base_height: float  # m, mean trunk height above the ground
    base_height_std: float  # m
    swing_apex: float  # m, mean over swings of the foot's highest point above the ground
    foot_slip: float  # m/s, mean horizontal speed of feet in stance
    body_contacts_per_minute: float  # non-foot ground-contact onsets per robot-minute
    joint_deviation: float  # rad, mean |q - q_default|
    action_rate: float  # action units per policy step, mean |a_t - a_(t-1)|
    torque_saturation: float  # fraction of robot-steps with a joint above torque_fraction of its limit
    power: float  # W, mean positive mechanical power sum_j max(tau_j dq_j, 0)
    cost_of_transport: float  # power / (m g v), dimensionless
    duty_factor: float  # fraction of time a foot is in contact
    step_frequency: float  # Hz, touchdowns per foot per second
    contact_links: int  # non-foot links watched: 13 (trunk, hips, thighs, calves) or 5 (trunk, thighs)

    def as_dict(self) -> dict[str, float | int | None]:
        """JSON-ready: NaN becomes None (JSON has no NaN)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in values.items()}


# ---- one function per metric ----------------------------------------------------------------------
def _mean(x: np.ndarray) -> float:
    """Mean of ``x``, NaN (not a warning) when empty."""
    return float(x.mean()) if x.size else NAN


def base_height_stats(height: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation (m) of the trunk's height above the ground over all samples."""
    return (_mean(height), float(height.std()) if height.size else NAN)


def continues(episode_end: np.ndarray) -> np.ndarray:
    """(T - 1, N) bool: sample t + 1 is the same episode as sample t (no reset in between)."""
    return ~episode_end[:-1]


def contact_onsets(contact: np.ndarray, episode_end: np.ndarray) -> np.ndarray:
    """(T - 1, N, ...) bool: contact begins at t + 1 (no contact at t, same episode)."""
    same = continues(episode_end).reshape(*episode_end[:-1].shape, *([1] * (contact.ndim - 2)))
    return contact[1:] & ~contact[:-1] & same


def swing_apex(foot_height: np.ndarray, foot_contact: np.ndarray, episode_end: np.ndarray) -> float:
    """Mean over swing phases of the foot's highest point above the ground (m).

    A swing is a run of samples without contact between two samples with contact of the same
    episode; runs cut by the recording's ends or a reset are left out (their apex is unknown).
    """
    apexes: list[float] = []
    _, n, f = foot_contact.shape
    for robot in range(n):
        for foot in range(f):
            contact, height = foot_contact[:, robot, foot], foot_height[:, robot, foot]
            for start, stop in _false_runs(contact):
                if start > 0 and stop < len(contact) and not episode_end[start - 1 : stop, robot].any():
                    apexes.append(float(height[start:stop].max()))
    return float(np.mean(apexes)) if apexes else NAN


def _false_runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """``[start, stop)`` of every maximal run of False in a 1-D bool array."""
    padded = np.concatenate([[True], flags.astype(bool), [True]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def foot_slip(foot_velocity: np.ndarray, foot_contact: np.ndarray, episode_end: np.ndarray) -> float:
    """Mean horizontal speed (m/s) of the feet's contact points over stance samples but each stance's last.

    A contact flag covers the whole policy step (any substep touching), so the last flagged sample
    of a stance often holds a foot that lifted off during the step and moves at swing speed.
    """
    stance = foot_contact[:-1] & foot_contact[1:] & continues(episode_end)[..., None]
    speed = np.linalg.norm(foot_velocity[:-1, ..., :2], axis=-1)
    return _mean(speed[stance])


def contacts_per_minute(contact: np.ndarray, episode_end: np.ndarray, dt: float) -> float:
    """Contact onsets (any link) per robot-minute."""
    minutes = contact.shape[0] * contact.shape[1] * dt / 60.0
    return float(contact_onsets(contact, episode_end).sum() / minutes) if minutes > 0 else NAN


def joint_deviation(joint_pos: np.ndarray, default_joint_pos: np.ndarray) -> float:
    """Mean |q - q_default| (rad) over samples and joints: how far the posture strays from the default."""
    return _mean(np.abs(joint_pos - default_joint_pos))


def action_rate(actions: np.ndarray, episode_end: np.ndarray) -> float:
    """Mean |a_t - a_(t-1)| per joint (action units) over consecutive samples of one episode: vibration."""
    change = np.abs(np.diff(actions, axis=0))
    return _mean(change[continues(episode_end)])


def torque_saturation(joint_torque: np.ndarray, torque_limit: np.ndarray, fraction: float) -> float:
    """Fraction of robot-steps on which any joint's |tau| exceeds ``fraction`` of its limit."""
    return _mean((np.abs(joint_torque) > fraction * torque_limit).any(-1))


def positive_power(joint_torque: np.ndarray, joint_vel: np.ndarray) -> np.ndarray:
    """(T, N) W: sum over joints of max(tau dq, 0), the motors' positive mechanical work rate."""
    return np.clip(joint_torque * joint_vel, 0.0, None).sum(-1)


def cost_of_transport(power: np.ndarray, mass: np.ndarray, speed: np.ndarray, gravity: float, min_speed: float) -> float:
    """Mean power over (g * mean of m v), energy per weight per distance; NaN when the mean speed is below ``min_speed``."""
    if not speed.size or float(speed.mean()) < min_speed:
        return NAN
    return float(power.mean() / (gravity * float((mass * speed).mean())))


def duty_factor(foot_contact: np.ndarray) -> float:
    """Fraction of samples a foot is in contact, mean over feet."""
    return _mean(foot_contact.astype(np.float64))


def step_frequency(foot_contact: np.ndarray, episode_end: np.ndarray, dt: float) -> float:
    """Touchdowns per foot per second (Hz): one per gait cycle for each foot in a periodic gait."""
    t, n, f = foot_contact.shape
    seconds = t * n * f * dt
    return float(contact_onsets(foot_contact, episode_end).sum() / seconds) if seconds > 0 else NAN


# ---- all of them -------------------------------------------------------------------------------------
def gait_metrics(traj: GaitTrajectory, cfg: GaitMetricsConfig | None = None) -> GaitMetrics:
    """Every metric of ``traj``; those whose inputs the trajectory lacks are NaN."""
    cfg = cfg or GaitMetricsConfig()
    ends, power = traj.episode_end, positive_power(traj.joint_torque, traj.joint_vel)
    height = base_height_stats(traj.base_height) if traj.base_height is not None else (NAN, NAN)
    apex = swing_apex(traj.foot_height, traj.foot_contact, ends) if traj.foot_height is not None else NAN
    slip = foot_slip(traj.foot_velocity, traj.foot_contact, ends) if traj.foot_velocity is not None else NAN
    body = traj.body_contact
    cot = NAN
    if traj.mass is not None and traj.speed is not None:
        cot = cost_of_transport(power, traj.mass, traj.speed, cfg.gravity, cfg.min_speed)
    return GaitMetrics(
        base_height=height[0],
        base_height_std=height[1],
        swing_apex=apex,
        foot_slip=slip,
        body_contacts_per_minute=contacts_per_minute(body, ends, traj.dt) if body is not None else NAN,
        joint_deviation=joint_deviation(traj.joint_pos, traj.default_joint_pos),
        action_rate=action_rate(traj.actions, ends),
        torque_saturation=torque_saturation(traj.joint_torque, traj.torque_limit, cfg.torque_fraction),
        power=_mean(power),
        cost_of_transport=cot,
        duty_factor=duty_factor(traj.foot_contact),
        step_frequency=step_frequency(traj.foot_contact, ends, traj.dt),
        contact_links=body.shape[-1] if body is not None else 0,
    )


# ---- the table ---------------------------------------------------------------------------------------
def gait_columns(cfg: GaitMetricsConfig | None = None) -> list[str]:
    """Headers of the gait table, after the row name."""
    near = f"|tau|>{(cfg or GaitMetricsConfig()).torque_fraction:.0%} lim"
    return ["height m", "apex m", "slip m/s", "body hits/min", "|q-q0| rad", "act rate", near, "power W", "CoT", "duty", "step Hz"]


def gait_cells(m: GaitMetrics) -> list[str]:
    """One row of the gait table (the cells under :func:`gait_columns`); NaN shows as n/a."""

    def num(value: float, spec: str) -> str:
        return "n/a" if math.isnan(value) else format(value, spec)

    height = "n/a" if math.isnan(m.base_height) else f"{m.base_height:.3f}±{m.base_height_std:.3f}"
    return [
        height,
        num(m.swing_apex, ".3f"),
        num(m.foot_slip, ".3f"),
        num(m.body_contacts_per_minute, ".1f"),
        num(m.joint_deviation, ".3f"),
        num(m.action_rate, ".3f"),
        num(m.torque_saturation, ".3f"),
        num(m.power, ".1f"),
        num(m.cost_of_transport, ".2f"),
        num(m.duty_factor, ".2f"),
        num(m.step_frequency, ".2f"),
    ]


def format_gait_table(rows: Mapping[str, GaitMetrics], cfg: GaitMetricsConfig | None = None) -> str:
    """The gait table as aligned plain text, one row per name (an engine, a log)."""
    table = [["", *gait_columns(cfg)], *([name, *gait_cells(m)] for name, m in rows.items())]
    widths = [max(len(row[k]) for row in table) for k in range(len(table[0]))]
    return "\n".join("  ".join(cell.rjust(w) for cell, w in zip(row, widths)).rstrip() for row in table)


# ---- a robot or emulator log ---------------------------------------------------------------------------
LOG_KEYS = ("time", "action", "joint_pos", "joint_vel", "joint_torque", "foot_force")


def log_trajectory(data: RolloutData, robot: RobotDescription, cfg: GaitMetricsConfig | None = None) -> GaitTrajectory:
    """The part of a :class:`GaitTrajectory` a deploy log holds (one robot; its segments are episodes).

    A log has joint state, estimated torques, the policy's actions and foot forces (in the robot's
    units, thresholded at ``log_foot_contact_force``); not the base's height and speed nor the feet's
    positions, so height, apex, slip, body contacts and cost of transport stay NaN.
    """
    cfg = cfg or GaitMetricsConfig()
    missing = [k for k in LOG_KEYS if k not in data.arrays]
    if missing:
        raise ValueError(f"the log lacks {', '.join(missing)}: no gait metrics from it")
    a = data.arrays
    ends = np.zeros(len(data), dtype=bool)
    ends[np.cumsum(data.segments) - 1] = True
    steps = np.diff(np.asarray(a["time"], dtype=np.float64))[~ends[:-1]]
    dt = float(np.median(steps)) if steps.size else robot.control.policy_dt

    def one_robot(x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=np.float64)[:, None]

    return GaitTrajectory(
        dt=dt,
        joint_pos=one_robot(a["joint_pos"]),
        joint_vel=one_robot(a["joint_vel"]),
        joint_torque=one_robot(a["joint_torque"]),
        actions=one_robot(a["action"]),
        foot_contact=one_robot(a["foot_force"]) > cfg.log_foot_contact_force,
        episode_end=ends[:, None],
        default_joint_pos=robot.default_joint_pos,
        torque_limit=robot.torque_limits,
    )


def log_gait_metrics(run_dir: str | Path, robot: RobotDescription, cfg: GaitMetricsConfig | None = None) -> GaitMetrics:
    """:func:`gait_metrics` of a deploy log (``unio4 deploy --out``, robot or emulator): the subset it allows."""
    return gait_metrics(log_trajectory(read_log(run_dir), robot, cfg), cfg)
