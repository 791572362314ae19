"""System identification: fit the simulator's dynamics to a robot's logs, so fine-tuning can happen in simulation.

Closing a sim-to-real gap by PPO on robot data needs far more robot time than a robot gives (a
session's 5000 steps per iteration move the policy a little). The gap is mostly in a few physical
parameters; robot time is better spent measuring them. :func:`identify` does that:

1. the robot walks with the bundle's mean action at a few forward commands (``unio4 deploy
   --command VX,0,0``, 10 s each: well under a minute of robot time);
2. from each log, :func:`log_features` measures what the parameters show in: the forward speed
   actually held (leg odometry; a tracking camera's where one read every walk, compared then with the
   simulator's own speed rather than its odometry's), and how far the thigh and calf joints lag their PD targets (a
   weaker motor or a heavier robot lets them sag), over the steady part of the run;
3. the same bundle walks in the simulator at the same commands, one robot per candidate
   (motor strength x added trunk mass x actuation latency, a grid), randomisation off; the candidate whose features are
   nearest the robot's (each feature in units of its ``FeatureScales``) is the estimate.

Each parameter is reported with the range of grid values still consistent with the walks: candidates
within ``confidence`` units of mismatch of the best (more when even the best fit misses by more than its
number of features allows: the units are then scaled by that misfit), plus the mismatch the walks' own
noise explains (the two halves of each walk measured apart). A parameter whose range covers the whole grid is not
identified: the walks say nothing about it, and the fine-tune keeps the task's prior range for it. With
several ``latency_ms`` candidates (the default), the tracking delay (the shift of the joints behind their
targets) joins the features.

The estimate becomes task overrides (``randomization.motor_strength``, ``added_mass`` and, when fitted,
``latency_s`` and ``friction`` ranges: the consistent range, widened by half a grid step), and PPO
fine-tunes the policy in simulation on that robot: a new bundle costs simulator time, not robot time.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from unio4.configs.loader import bounded, check_fields
from unio4.learning.data.dataset import Dataset
from unio4.learning.data.pack import pack_runs
from unio4.robots.description import load_robot
from unio4.robots.kinematics import STANCE_FORCE, leg_odometry
from unio4.sim.backends.interface import Dynamics
from unio4.sim.config import TaskConfig
from unio4.sim.policies import Policy, bundle_policy
from unio4.sim.task import Go1VelocityTask

FEATURES = ("forward_speed", "thigh_lag", "calf_lag")
DELAY_FEATURE = "tracking_delay"  # compared only when latency is fitted
PARAMETERS = ("motor_strength", "added_mass", "latency_ms", "friction_scale")
MAX_SHIFT = 8  # policy steps searched for the joints' tracking delay


@dataclass(frozen=True)
class FeatureScales:
    """How much of each feature counts as one unit of mismatch."""

    forward_speed: float = bounded(0.05, gt=0)  # m/s
    thigh_lag: float = bounded(0.02, gt=0)  # rad, mean |q* - q|
    calf_lag: float = bounded(0.02, gt=0)  # rad
    tracking_delay: float = bounded(0.1, gt=0)  # policy steps


@dataclass(frozen=True)
class IdentifyConfig:
    """The candidate grid and what is compared."""

    motor_strength: tuple[float, ...] = bounded((0.6, 0.7, 0.8, 0.9, 1.0, 1.1), gt=0, le=2)
    added_mass: tuple[float, ...] = bounded((-1.0, 0.0, 1.0, 2.0, 3.0, 4.0), ge=-5, le=20)
    # actuation latency (ms, rounded to the physics step; one value: not fitted, the task's prior range stays). Without
    # it a late robot reads as a weak or heavy one (docs/benchmarks/go1-sessions.md, "Latency in the fit")
    latency_ms: tuple[float, ...] = bounded((0.0, 5.0, 10.0, 15.0, 20.0), ge=0, le=20)
    friction_scale: tuple[float, ...] = bounded((1.0,), gt=0, le=3)  # x the description's foot friction; one value: not fitted
    skip_s: float = bounded(2.0, ge=0)  # the start of each run (stand-up transient) is not compared
    confidence: float = bounded(1.0, ge=0)  # units of mismatch above the best that a consistent candidate may add
    # Where a tracking camera read at least this share of every walk's steady steps, the forward speed compared is the
    # camera's on the robot and the simulator's own in simulation: odometry's error depends on the floor (a slipping foot)
    min_tracked: float = bounded(0.9, gt=0, le=1)
    scales: FeatureScales = dataclasses.field(default_factory=FeatureScales)

    def __post_init__(self) -> None:
        check_fields(self)

    def grids(self) -> tuple[tuple[float, ...], ...]:
        """The candidate values of each of PARAMETERS, in order."""
        return self.motor_strength, self.added_mass, self.latency_ms, self.friction_scale

    def features(self) -> tuple[str, ...]:
        """The features compared: the tracking delay too when latency is fitted."""
        return FEATURES + ((DELAY_FEATURE,) if len(self.latency_ms) > 1 else ())


@dataclass(frozen=True)
class ParameterFit:
    """One parameter's estimate and the grid values still consistent with the walks."""

    value: float
    low: float
    high: float
    half_step: float  # half the grid's spacing: how far a training range reaches past the consistent values
    identified: bool  # False: every grid value is consistent (the walks say nothing about it)

    def training_range(self) -> tuple[float, float]:
        """The range fine-tuning randomises over: the consistent values and half a grid step past them."""
        return self.low - self.half_step, self.high + self.half_step


Candidate = tuple[float, float, float, float]  # motor strength, added mass (kg), latency (ms), friction scale
PerCommand = dict[float, dict[str, float]]  # commanded forward speed -> feature -> value
# parameter -> the randomisation range it sets, the unit it is multiplied by (None: the robot's foot friction),
# and the lowest value that range may start at (None: no bound; a trunk may be lighter than the description's)
OVERRIDES = {
    "motor_strength": ("motor_strength", 1.0, 0.0),
    "added_mass": ("added_mass", 1.0, None),
    "latency_ms": ("latency_s", 1e-3, 0.0),
    "friction_scale": ("friction", None, 0.0),
}


@dataclass
class Identification:
    """The estimate, each parameter's consistent range, the robot's features and the grid's distances."""

    fits: dict[str, ParameterFit]  # PARAMETERS -> fit
    robot: PerCommand
    best: PerCommand  # the chosen candidate's simulated features
    distances: dict[Candidate, float]
    threshold: float  # the distance under which a candidate counts as consistent
    foot_friction: float  # the robot description's, which friction_scale multiplies
    speed: str = "leg odometry"  # what read the forward speeds compared: "leg odometry" or "tracking camera"

    @property
    def motor_strength(self) -> float:
        """The best candidate's motor strength."""
        return self.fits["motor_strength"].value

    @property
    def added_mass(self) -> float:
        """The best candidate's added trunk mass (kg)."""
        return self.fits["added_mass"].value

    def task_overrides(self) -> list[str]:
        """Randomisation ranges over what the walks allow, for each identified parameter (the rest keep the task's)."""
        out = []
        for name, fit in self.fits.items():
            if fit.identified:
                field, unit, floor = OVERRIDES[name]
                unit = self.foot_friction if unit is None else unit
                low, high = fit.training_range()
                low = low if floor is None else max(low, floor)
                out.append(f"randomization.{field}=[{low * unit:.4g},{high * unit:.4g}]")
        return out

    def record(self) -> dict[str, Any]:
        """The estimate as plain data (identify.yaml, ``unio4 identify -o``)."""
        fits = {k: {"value": f.value, "range": [f.low, f.high], "identified": f.identified} for k, f in self.fits.items()}
        return {
            "motor_strength": self.motor_strength,
            "added_mass": self.added_mass,
            "fits": fits,
            "best_distance": min(self.distances.values()),
            "threshold": self.threshold,
            "forward_speed_from": self.speed,
            "task_overrides": self.task_overrides(),
        }


def recorded_candidate(record: dict[str, Any]) -> Candidate:
    """The best candidate of an :meth:`Identification.record` (a parameter it does not name: its grid's default)."""
    fits, grid = record.get("fits", {}), IdentifyConfig()
    latency = float(fits.get("latency_ms", {}).get("value", grid.latency_ms[0]))
    friction = float(fits.get("friction_scale", {}).get("value", grid.friction_scale[0]))
    return float(record["motor_strength"]), float(record["added_mass"]), latency, friction


def _features(vx: np.ndarray, targets: np.ndarray, q: np.ndarray) -> dict[str, float]:
    """Feature values from forward speeds (T,), the PD targets set at each policy step and the joint angles
    measured at the next (T, 12), SDK order.
    """
    lag = np.abs(targets[:-1] - q[1:])  # a state is measured against the target set one policy step before
    return {
        "forward_speed": float(np.nanmean(vx)),  # a camera's speed is NaN where it had no fresh reading
        "thigh_lag": float(np.mean(lag[:, 1::3])),
        "calf_lag": float(np.mean(lag[:, 2::3])),
        DELAY_FEATURE: tracking_delay(targets, q),
    }


def tracking_delay(targets: np.ndarray, q: np.ndarray) -> float:
    """How many policy steps the thighs' and calves' motion trails their targets' motion: the shift s that
    maximises the correlation of target[t + 1] - target[t] with q[t + 1 + s] - q[t + s], refined between
    steps by a parabola through its neighbours. Differences, so the PD sag (a steady offset) does not count;
    on the Go1 the mechanical response alone is 3-4 steps, and a few ms of latency or torque lag add to it.
    """
    legs = [j for j in range(targets.shape[1]) if j % 3 != 0]  # thighs and calves: the hips barely move
    dt, dq = np.diff(targets[:, legs], axis=0), np.diff(q[:, legs], axis=0)
    dt, dq = dt - dt.mean(0), dq - dq.mean(0)
    n = len(dt) - MAX_SHIFT
    if n < 2:
        return float("nan")
    corr = np.array([np.mean(dt[:n] * dq[s : s + n]) for s in range(MAX_SHIFT + 1)])
    k = int(np.argmax(corr))
    if 0 < k < MAX_SHIFT:
        curvature = corr[k - 1] - 2 * corr[k] + corr[k + 1]
        if curvature < 0:
            return k + 0.5 * float(corr[k - 1] - corr[k + 1]) / float(curvature)
    return float(k)


class LogFeatures(NamedTuple):
    """One deploy log's commanded forward speed, its features over the steady part, how far the features of that
    part's two halves lie apart (half the difference: the walk's own noise, per feature), and whether its forward
    speed is a tracking camera's (else leg odometry's).
    """

    command: float
    features: dict[str, float]
    noise: dict[str, float]
    tracked: bool


def log_features(run: Path, task: TaskConfig, skip_s: float, min_tracked: float) -> LogFeatures:
    """The features of one deploy log after its first ``skip_s``; the forward speed the tracking camera's where it
    read at least ``min_tracked`` of those steps.
    """
    data = pack_runs([run], task)
    vx_cmd, keep = _steady_part(data, skip_s)
    if keep is None:  # nothing steady to measure
        nan = dict.fromkeys((*FEATURES, DELAY_FEATURE), float("nan"))
        return LogFeatures(vx_cmd, nan, nan, False)
    robot = load_robot(task.robot)
    q = data.infos["joint_pos"].numpy()[keep]
    actions = np.clip(data.actions.numpy(), -task.action_clip, task.action_clip)
    targets = (robot.default_joint_pos + actions * robot.action_scales)[keep]
    vx, tracked = _forward_speed(data, keep, min_tracked)
    half = len(q) // 2
    halves = [_features(vx[part], targets[part], q[part]) for part in (slice(None, half), slice(half, None))]
    noise = {f: float(np.nan_to_num(abs(halves[0][f] - halves[1][f]) / 2)) for f in halves[0]}  # a half too short: 0
    return LogFeatures(vx_cmd, _features(vx, targets, q), noise, tracked)


def _forward_speed(data: Dataset, keep: slice, min_tracked: float) -> tuple[np.ndarray, bool]:
    """The steady steps' forward speed: the tracking camera's (NaN where it had no fresh reading) where it read at
    least ``min_tracked`` of them, else leg odometry's; and whether it is the camera's.
    """
    camera = _camera(data, keep, min_tracked)
    if camera is not None:
        return camera[:, 0], True
    return data.infos["base_lin_vel_estimate"].numpy()[keep][:, 0], False


def _camera(data: Dataset, keep: slice, min_tracked: float) -> np.ndarray | None:
    """The tracking camera's base velocity over the steady steps (T, 3; NaN rows where it had no fresh reading),
    or None where the log has no camera or it read fewer than ``min_tracked`` of those steps.
    """
    if "tracker_lin_vel" not in data.infos:
        return None
    camera = data.infos["tracker_lin_vel"].numpy()[keep].astype(np.float64)
    return camera if np.all(np.isfinite(camera), axis=1).mean() >= min_tracked else None


class HeldMotion(NamedTuple):
    """What one deploy log's robot held over its steady part, against its command."""

    command: np.ndarray  # (vx, vy, yaw rate): the median of each
    odometry: np.ndarray  # (T, 3): leg odometry's base-frame (vx, vy) and the gyro's yaw rate (T = 0: it stopped before)
    # (T', 3): the tracking camera's (vx, vy) and yaw rate (the gyro's where the camera sends no rates), its fresh
    # readings only; None: not tracked
    tracked: np.ndarray | None
    dt: float  # the policy step, s


def held_motion(run: Path, task: TaskConfig, skip_s: float, min_tracked: float) -> HeldMotion:
    """One deploy log's command and what the robot held after its first ``skip_s``, read by leg odometry and, where
    the log has a tracking camera's readings for at least ``min_tracked`` of those steps, by the camera: its yaw
    rate too where it sent one at every reading, as it is free of the gyro's bias.
    """
    data = pack_runs([run], task)
    command = np.median(data.infos["command"].numpy()[:, :3], axis=0)
    dt = float(data.metadata["policy_dt"])
    _, keep = _steady_part(data, skip_s)
    if keep is None:
        return HeldMotion(command, np.zeros((0, 3)), None, dt)
    yaw_rate = data.infos["gyro"].numpy()[keep][:, 2:3]
    odometry = np.concatenate([data.infos["base_lin_vel_estimate"].numpy()[keep][:, :2], yaw_rate], axis=1).astype(np.float64)
    camera = _camera(data, keep, min_tracked)
    if camera is None:
        return HeldMotion(command, odometry, None, dt)
    fresh = np.all(np.isfinite(camera), axis=1)
    return HeldMotion(command, odometry, np.concatenate([camera[fresh, :2], _camera_yaw(data, keep, fresh, yaw_rate)], axis=1), dt)


def _camera_yaw(data: Dataset, keep: slice, fresh: np.ndarray, gyro_yaw: np.ndarray) -> np.ndarray:
    """The yaw rate at the camera's fresh steps (T', 1): the camera's where it sent rates at all of them, else the gyro's."""
    if "tracker_ang_vel" in data.infos:
        rates = data.infos["tracker_ang_vel"].numpy()[keep][fresh][:, 2:3].astype(np.float64)
        if np.all(np.isfinite(rates)):
            return rates
    return gyro_yaw[fresh]


def steady_motions(runs: list[Path], task: TaskConfig, skip_s: float, min_tracked: float) -> list[HeldMotion]:
    """:func:`held_motion` of each walk that reached its steady part (the others are left out)."""
    return [h for h in (held_motion(run, task, skip_s, min_tracked) for run in runs) if len(h.odometry)]


def all_tracked(helds: list[HeldMotion]) -> bool:
    """Whether the tracking camera read every one of ``helds`` (and there is one)."""
    return bool(helds) and all(h.tracked is not None and len(h.tracked) for h in helds)


def _steady_part(data: Dataset, skip_s: float) -> tuple[float, slice | None]:
    """The log's commanded forward speed (median) and its steps after the first ``skip_s`` (None: too short)."""
    vx_cmd = float(np.median(data.infos["command"].numpy()[:, 0]))
    skip = int(round(skip_s / float(data.metadata["policy_dt"])))
    return vx_cmd, (slice(skip, None) if len(data.actions) > skip + 1 else None)


def simulate_features(
    bundle: Path, task_cfg: TaskConfig, commands: list[float], candidates: list[Candidate], seconds: float, skip_s: float
) -> dict[Candidate, PerCommand]:
    """Features of ``bundle`` in simulation, one robot per (candidate, command), randomisation off. The forward
    speed is leg odometry's, as on the robot (a foot that slips reads as speed in both); ``true_speed``, not
    compared with the robot, is the simulator's own.
    """
    pairs = [(candidate, (vx, 0.0, 0.0)) for candidate, vx in itertools.product(candidates, commands)]
    walks, odometry = _steady_walks(bundle, task_cfg, pairs, seconds, skip_s)
    out: dict[Candidate, PerCommand] = {}
    for i, (candidate, (vx, _, _)) in enumerate(pairs):
        # the simulator's own speed too: leg odometry's error depends on the gait (a gate compares bundles by it)
        features = _features(odometry[i][:, 0], walks["target"][i], walks["q"][i])
        out.setdefault(candidate, {})[vx] = features | {"true_speed": float(np.mean(walks["vel"][i][:, 0]))}
    return out


def simulate_held(
    bundle: Path, task_cfg: TaskConfig, commands: np.ndarray, candidate: Candidate, seconds: float, skip_s: float
) -> dict[str, np.ndarray]:
    """What ``bundle`` holds in simulation at each of ``commands`` (n, 3) on ``candidate``'s robot, randomisation off:
    ``true``, the simulator's (vx, vy, yaw rate) in the base frame, and ``odometry``, leg odometry's (vx, vy) and the
    gyro's yaw rate, as the robot reads them; means over each walk after its first ``skip_s`` (n, 3).
    """
    pairs = [(candidate, (float(c[0]), float(c[1]), float(c[2]))) for c in commands]
    walks, odometry = _steady_walks(bundle, task_cfg, pairs, seconds, skip_s)
    yaw = walks["gyro"][..., 2].mean(axis=1)
    true = np.concatenate([walks["vel"].mean(axis=1), yaw[:, None]], axis=1)
    read = np.stack([np.append(odometry[i][:, :2].mean(axis=0), yaw[i]) for i in range(len(pairs))])
    return {"true": true, "odometry": read}


Pair = tuple[Candidate, tuple[float, float, float]]  # a simulated robot: its dynamics and its command (vx, vy, yaw rate)


def _steady_walks(
    bundle: Path, task_cfg: TaskConfig, pairs: list[Pair], seconds: float, skip_s: float
) -> tuple[dict[str, np.ndarray], list[np.ndarray]]:
    """``bundle`` walking in simulation, one robot per pair, randomisation off: :func:`_walk`'s arrays after the
    first ``skip_s``, and each robot's leg-odometry base velocity (T, 3).
    """
    cfg = dataclasses.replace(
        task_cfg,
        randomization=dataclasses.replace(task_cfg.randomization, enabled=False),
        commands=dataclasses.replace(task_cfg.commands, resample_time_s=max(seconds + 1.0, task_cfg.commands.resample_time_s)),
        episode_length_s=max(seconds + 1.0, task_cfg.episode_length_s),
    )
    task = Go1VelocityTask(cfg, len(pairs), seed=0)
    try:
        policy = bundle_policy(bundle, task)
        obs, _ = task.reset()
        _set_candidates(task, pairs)
        walks = _walk(task, policy, obs, int(round(seconds / task.dt)), int(round(skip_s / task.dt)))
    finally:
        task.close()
    q, dq, gyro, quat, foot = (walks[k] for k in ("q", "dq", "gyro", "quat", "foot"))
    odometry = [leg_odometry(task.robot, q[i], dq[i], gyro[i], quat[i], foot[i], STANCE_FORCE)[0] for i in range(len(pairs))]
    return walks, odometry


def _walk(task: Go1VelocityTask, policy: Policy, obs: torch.Tensor, steps: int, skip: int) -> dict[str, np.ndarray]:
    """Every robot's targets, the state the policy saw and its true (vx, vy) (base frame) at each step after
    the first ``skip``: (n, T, ...) arrays.
    """
    default = torch.as_tensor(task.robot.default_joint_pos, dtype=torch.float32)
    scales = torch.as_tensor(task.robot.action_scales, dtype=torch.float32)
    rows: dict[str, list[np.ndarray]] = {k: [] for k in ("target", "q", "dq", "gyro", "quat", "foot", "vel")}
    for k in range(steps):
        actions = policy(obs)
        s = task.state  # what the policy saw: a log's row at this step
        if k >= skip:
            rows["target"].append((default + actions.clamp(-task.cfg.action_clip, task.cfg.action_clip) * scales).numpy())
            for key, value in (
                ("q", s.joint_pos),
                ("dq", s.joint_vel),
                ("gyro", s.base_ang_vel_body),
                ("quat", s.base_quat),
                ("foot", s.foot_force),
            ):
                rows[key].append(value.numpy().astype(np.float64))
            rows["vel"].append(s.base_lin_vel_body()[:, :2].numpy().astype(np.float64))
        obs, _, _, _, _ = task.step(actions)
    return {k: np.stack(v, 1) for k, v in rows.items()}


def _set_candidates(task: Go1VelocityTask, pairs: list[Pair]) -> None:
    """Give robot i the dynamics of pair i's candidate and its command."""
    n = len(pairs)
    ones = torch.ones(n)
    strength = torch.tensor([c[0] for c, _ in pairs], dtype=torch.float32)
    mass = torch.tensor([c[1] for c, _ in pairs], dtype=torch.float32)
    friction = torch.tensor([c[3] for c, _ in pairs], dtype=torch.float32) * task.robot.body.foot_friction
    task.set_dynamics(torch.arange(n), Dynamics(friction, mass, ones.clone(), ones.clone(), strength))
    sim_dt_ms = task.robot.control.sim_dt * 1e3
    latency = torch.tensor([round(c[2] / sim_dt_ms) for c, _ in pairs], dtype=torch.long)
    task.latency_substeps[:] = latency.clamp(0, task.decimation)
    task.commands[:] = 0.0
    task.commands[:, :3] = torch.tensor([command for _, command in pairs], dtype=torch.float32)


def identify(runs: list[Path], bundle: Path, task: TaskConfig, cfg: IdentifyConfig, seconds: float = 10.0) -> Identification:
    """The grid candidate whose simulated features are nearest the robot's logs, and the range of each
    parameter over the candidates still consistent with them.
    """
    robot, noise, tracked = _robot_features(runs, task, cfg)
    candidates: list[Candidate] = list(itertools.product(*cfg.grids()))  # type: ignore[arg-type]  # four grids: 4-tuples
    simulated = simulate_features(bundle, task, sorted(robot), candidates, seconds, cfg.skip_s)
    if tracked:  # the camera measures the trunk's own speed: compare the simulator's, not its odometry's
        simulated = {c: {vx: f | {"forward_speed": f["true_speed"]} for vx, f in per.items()} for c, per in simulated.items()}
    result = fit_candidates(robot, noise, simulated, cfg, load_robot(task.robot).body.foot_friction)
    result.speed = "tracking camera" if tracked else "leg odometry"
    return result


def fit_candidates(
    robot: PerCommand, noise: PerCommand, simulated: dict[Candidate, PerCommand], cfg: IdentifyConfig, foot_friction: float
) -> Identification:
    """The best of the ``simulated`` candidates against the ``robot``'s features, and each parameter's consistent range."""
    features = cfg.features()
    scale = {name: getattr(cfg.scales, name) for name in features}
    distances = {c: _distance(sim, robot, scale) for c, sim in simulated.items()}
    best = min(distances, key=distances.__getitem__)
    # the walks' own noise moves the distance by about this much: each feature off by its half-difference
    noise_distance = _distance(noise, {vx: dict.fromkeys(noise[vx], 0.0) for vx in noise}, scale)
    # a best fit worse than its features' count says the scales understate the model's error: widen by that ratio
    terms = len(robot) * len(features) - sum(len(set(g)) > 1 for g in cfg.grids())
    misfit = max(1.0, distances[best] / max(terms, 1))
    threshold = distances[best] + cfg.confidence * misfit + noise_distance
    consistent = [c for c, d in distances.items() if d <= threshold]
    columns = enumerate(zip(PARAMETERS, cfg.grids(), strict=True))
    fits = {name: _parameter_fit(best[i], [c[i] for c in consistent], grid) for i, (name, grid) in columns}
    return Identification(fits, robot, simulated[best], distances, threshold, foot_friction)


def _distance(a: PerCommand, b: PerCommand, scale: dict[str, float]) -> float:
    """Squared mismatch of features ``a`` against ``b`` over b's commands and ``scale``'s features, in scale units."""
    return float(sum(((a[vx][f] - b[vx][f]) / scale[f]) ** 2 for vx in b for f in scale))


def _robot_features(runs: list[Path], task: TaskConfig, cfg: IdentifyConfig) -> tuple[PerCommand, PerCommand, bool]:
    """Per commanded speed: the robot's features and their noise (a run that stopped too early is left out), and
    whether a tracking camera read every run's speed (else all are read by leg odometry, alike).
    """
    logs = [log_features(run, task, cfg.skip_s, cfg.min_tracked) for run in runs]
    if any(log.tracked for log in logs) and not all(log.tracked for log in logs):
        logs = [log_features(run, task, cfg.skip_s, min_tracked=math.inf) for run in runs]  # leg odometry for all
    robot, noise = {}, {}
    for run, log in zip(runs, logs, strict=True):
        if not all(np.isfinite(v) for v in log.features.values()):  # stopped before its steady part (a safety stop)
            print(f"identify: {run}: no steps after the first {cfg.skip_s:g} s; left out")
            continue
        robot[round(log.command, 3)], noise[round(log.command, 3)] = log.features, log.noise
    if not robot:
        raise ValueError(f"identify: none of the {len(runs)} runs has steps after the first {cfg.skip_s:g} s to compare")
    return robot, noise, all(log.tracked for log in logs)


def _parameter_fit(value: float, consistent: list[float], grid: tuple[float, ...]) -> ParameterFit:
    """A parameter's estimate and range; identified unless the range covers the whole grid of several values."""
    values = sorted(set(grid))
    half_step = min((b - a for a, b in itertools.pairwise(values)), default=0.0) / 2
    low, high = min(consistent), max(consistent)
    identified = len(values) > 1 and not (low <= values[0] and high >= values[-1])
    return ParameterFit(value, low, high, half_step, identified)
