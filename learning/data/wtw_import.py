"""Walk-these-ways deploy logs (the Uni-O4 authors' real Go1 data among them) -> a unio4 dataset.

The Uni-O4 authors logged about an hour of a Go1 walking under a walk-these-ways policy: per file,
``actions`` (N, 12), the policy's raw output, and ``states`` (N, 58 + 18), the walk-these-ways
observation the policy saw followed by 18 values from a RealSense T265 tracking camera. This
module turns such files into the dataset ``unio4 train offline`` reads:

1. **Raw state back from the observation**: projected gravity; the commands (observation / command
   scale); joint angles ``obs / dof_pos_scale + default`` and speeds ``obs / dof_vel_scale``, moved
   from the log's leg order (FL, FR, RL, RR) to the SDK's (FR, FL, RR, RL); the gait phase from the
   clock inputs. From the T265 (world axes, x forward, z up, as the authors' reader flips them):
   yaw, and the linear and angular velocity rotated into the base frame with the orientation
   (roll and pitch from the IMU's gravity, yaw from the camera).
2. **Actions in unio4's convention**: the joint target ``default + clip(a) * scale`` (hips a further
   x ``hip_scale_reduction``) of the log, re-expressed with the robot description's default pose and
   scales; for the Go1 the two conventions agree and this is a reordering.
3. **unio4's observation** rebuilt through :func:`unio4.deploy.observations.observation_frame`, the
   function the robot runtime uses, with the gait clock set to the log's own gait phase.
4. **Rewards** recomputed with any task's reward config through :func:`unio4.learning.data.pack.recompute_rewards`.
   The log has no foot forces: the terms that read them are found by experiment and set aside; the
   torques are the PD law's (the log holds no motor torques) and the base height is estimated by
   leg kinematics over the two lowest feet. All of this is written into the dataset's metadata.

Every file is checked before use; a wrong width, a non-finite row or a log whose last-action column
disagrees with the actions names the file and row. Each file is one episode; it ends in a terminal
when its last state is tilted past the task's ``termination.max_tilt``, otherwise in a time-out.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from unio4.configs.loader import bounded, finite, to_dict
from unio4.deploy.observations import observation_frame, push_history, rotate_inverse, start_history
from unio4.learning.data.dataset import Dataset, concatenate_episodes, episode_columns
from unio4.learning.data.pack import recompute_rewards, terms_reading
from unio4.robots.description import RobotDescription, load_robot
from unio4.robots.kinematics import leg_odometry, lowest_feet_stance
from unio4.sim.config import TaskConfig

SDK_LEGS = ("FR", "FL", "RR", "RL")


@dataclass(frozen=True)
class T265Columns:
    """Where the tracking camera's values sit in a row (after the observation), in the log's axes."""

    start: int = bounded(58, ge=0)  # first column of the block
    velocity: int = bounded(3, ge=0)  # world-frame linear velocity (3), offset within the block
    rpy: int = bounded(9, ge=0)  # roll, pitch, yaw (3)
    angular_velocity: int = bounded(12, ge=0)  # world-frame angular velocity (3)
    width: int = bounded(18, ge=1)


@dataclass(frozen=True)
class WtwLogFormat:
    """The layout and control conventions of a walk-these-ways deploy log (``configs/import/``)."""

    legs: tuple[str, str, str, str] = ("FL", "FR", "RL", "RR")  # leg order of the log's joint columns
    default_joint_pos: tuple[float, ...] = finite((0.1, 0.8, -1.5, -0.1, 0.8, -1.5, 0.1, 1.0, -1.5, -0.1, 1.0, -1.5))
    policy_dt: float = bounded(0.02, gt=0)
    kp: float = bounded(20.0, ge=0)
    kd: float = bounded(0.5, ge=0)
    action_scale: float = bounded(0.25, gt=0)
    hip_scale_reduction: float = bounded(0.5, gt=0)
    clip_actions: float = bounded(10.0, gt=0)
    obs_width: int = bounded(58, ge=1)
    gravity: int = bounded(0, ge=0)  # first column of each block in the observation
    commands: int = bounded(3, ge=0)
    command_scale: tuple[float, float, float] = bounded((2.0, 2.0, 0.25), gt=0)  # vx, vy, yaw rate
    frequency_command: int = bounded(4, ge=0)  # index of the gait frequency (Hz) among the commands (scale 1)
    joint_pos: int = bounded(18, ge=0)
    dof_pos_scale: float = bounded(1.0, gt=0)
    joint_vel: int = bounded(30, ge=0)
    dof_vel_scale: float = bounded(0.05, gt=0)
    last_action: int = bounded(42, ge=0)
    clock: int = bounded(54, ge=0)  # 4 clock inputs, sin(2 pi phase_foot) in the log's leg order
    clock_reference_leg: int = bounded(1, ge=0, le=3)  # the clock input whose phase is the gait phase itself
    t265: T265Columns | None = T265Columns()

    @property
    def width(self) -> int:
        """Columns of one ``states`` row."""
        return self.obs_width + (self.t265.width if self.t265 else 0)

    def to_sdk(self) -> np.ndarray:
        """Column permutation: SDK joint ``i`` is the log's joint ``perm[i]``."""
        if sorted(self.legs) != sorted(SDK_LEGS):
            raise ValueError(f"legs: expected a permutation of {list(SDK_LEGS)}, got {list(self.legs)}")
        return np.array([3 * self.legs.index(leg) + j for leg in SDK_LEGS for j in range(3)])


class LogFormatError(ValueError):
    """A log that cannot be imported; the message names the file and row."""


def euler_to_quat(roll: np.ndarray, pitch: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    """(w, x, y, z) of the Z-Y-X (yaw, pitch, roll) rotation."""
    cr, sr, cp, sp, cy, sy = (f(a / 2) for a in (roll, pitch, yaw) for f in (np.cos, np.sin))
    return np.stack(
        [cr * cp * cy + sr * sp * sy, sr * cp * cy - cr * sp * sy, cr * sp * cy + sr * cp * sy, cr * cp * sy - sr * sp * cy], -1
    )


def gait_phase(clock: np.ndarray, frequency: np.ndarray, dt: float) -> np.ndarray:
    """Gait phase in [0, 1) from one foot's clock input ``sin(2 pi phase)`` (T,), its gait frequency (T,) Hz.

    ``sin`` alone cannot tell ``phase`` from ``1/2 - phase``; the slope across neighbouring rows
    gives the cosine: ``sin(2 pi (p + d)) - sin(2 pi (p - d)) = 2 cos(2 pi p) sin(2 pi d)``, d = f dt.
    """
    s = np.clip(clock, -1.0, 1.0)
    if len(s) < 2:
        return np.arcsin(s) / (2 * np.pi) % 1.0
    advance = np.maximum(frequency, 1e-6) * dt  # cycles per row
    slope = np.gradient(s)  # (s[t+1] - s[t-1]) / 2 inside
    step = np.sin(2 * np.pi * advance)
    phase = np.arctan2(s, slope / np.where(np.abs(step) > 1e-9, step, 1.0)) / (2 * np.pi)
    phase[0], phase[-1] = phase[1] - advance[0], phase[-2] + advance[-1]  # the ends: one row on from their neighbours
    return phase % 1.0


def _check(path: Path, states: np.ndarray, actions: np.ndarray, fmt: WtwLogFormat) -> None:
    if states.ndim != 2 or states.shape[1] != fmt.width:
        raise LogFormatError(f"{path}: states: expected (N, {fmt.width}) columns, got {states.shape}")
    if actions.ndim != 2 or actions.shape[1] != 12:
        raise LogFormatError(f"{path}: actions: expected (N, 12), got {actions.shape}")
    if len(states) != len(actions):
        raise LogFormatError(f"{path}: {len(states)} states but {len(actions)} actions")
    if len(states) < 2:
        raise LogFormatError(f"{path}: {len(states)} row(s); an episode needs at least 2")
    for name, array in (("states", states), ("actions", actions)):
        bad = ~np.isfinite(array).all(1)
        if bad.any():
            row = int(np.argmax(bad))
            column = int(np.argmax(~np.isfinite(array[row])))
            raise LogFormatError(f"{path}: row {row}: {name} column {column} is {array[row, column]} (expected a finite number)")
    gravity = np.linalg.norm(states[:, fmt.gravity : fmt.gravity + 3], axis=1)
    if (np.abs(gravity - 1.0) > 0.1).any():
        row = int(np.argmax(np.abs(gravity - 1.0) > 0.1))
        raise LogFormatError(f"{path}: row {row}: projected gravity has norm {gravity[row]:.3f} (expected 1)")
    logged = states[1:, fmt.last_action : fmt.last_action + 12]
    expected = np.clip(actions[:-1], -fmt.clip_actions, fmt.clip_actions)
    off = np.abs(logged - expected).max(1) > 1e-4
    if off.any():  # the log's own consistency: row t+1 observes the clipped action of row t
        row = int(np.argmax(off)) + 1
        raise LogFormatError(f"{path}: row {row}: the last-action columns differ from row {row - 1}'s action (rows out of order or cut?)")


@dataclass
class ImportedEpisode:
    """One episode of a log file: raw state in unio4's conventions (SDK joint order), and what was estimated."""

    log: dict[str, np.ndarray]  # joint_pos, joint_vel, joint_torque, base_quat, gyro, foot_force, command, action, time
    base_lin_vel: np.ndarray  # (T, 3) base frame
    base_height: np.ndarray  # (T,)
    gait_frequency: np.ndarray  # (T,) Hz, the log's commanded gait frequency
    terminal: bool  # the robot fell: the episode ends at the first row tilted past the task's max_tilt


def convert(
    path: Path, states: np.ndarray, actions: np.ndarray, fmt: WtwLogFormat, task: TaskConfig, robot: RobotDescription
) -> list[ImportedEpisode]:
    """The episodes of one log file (checked first): raw state, actions and estimates."""
    _check(path, states, actions, fmt)
    perm = fmt.to_sdk()
    n = len(states)
    obs = states[:, : fmt.obs_width]
    default_log = np.asarray(fmt.default_joint_pos, dtype=np.float64)
    q = (obs[:, fmt.joint_pos : fmt.joint_pos + 12] / fmt.dof_pos_scale + default_log)[:, perm]
    dq = (obs[:, fmt.joint_vel : fmt.joint_vel + 12] / fmt.dof_vel_scale)[:, perm]
    commands = obs[:, fmt.commands : fmt.commands + 3] / np.asarray(fmt.command_scale)
    frequency = obs[:, fmt.commands + fmt.frequency_command]
    gravity, quat, gyro, lin_vel = _base_motion(states, fmt)
    action, torque = _unio4_actions(actions, q, dq, fmt, robot)
    # Base height from leg kinematics, standing on the two lowest feet (the log has no foot forces).
    odometry_vel, height = leg_odometry(robot, q, dq, gyro, quat, lowest_feet_stance(robot, q, quat), 0.5)
    phase = gait_phase(obs[:, fmt.clock + fmt.clock_reference_leg], frequency, fmt.policy_dt)
    clock_hz = task.observations.clock_frequency
    log = {
        "joint_pos": q,
        "joint_vel": dq,
        "joint_torque": torque,
        "base_quat": quat,
        "gyro": gyro,
        "foot_force": np.zeros((n, 4)),
        "command": commands,
        "action": action,
        # unio4's clock runs at the task's frequency from time 0; this time puts it at the log's gait phase
        "time": phase / clock_hz if clock_hz > 0 else np.arange(n) * fmt.policy_dt,
    }
    upright = np.arccos(np.clip(-gravity[:, 2], -1.0, 1.0)) <= task.termination.max_tilt
    velocity = odometry_vel if lin_vel is None else lin_vel
    return _upright_episodes({**log, "base_lin_vel": velocity, "base_height": height, "gait_frequency": frequency}, upright)


def _base_motion(states: np.ndarray, fmt: WtwLogFormat) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Unit projected gravity, orientation quaternion, base-frame angular and linear velocity (None without a camera)."""
    n = len(states)
    gravity = states[:, : fmt.obs_width][:, fmt.gravity : fmt.gravity + 3]
    gravity = gravity / np.linalg.norm(gravity, axis=1, keepdims=True)
    roll, pitch = np.arctan2(-gravity[:, 1], -gravity[:, 2]), np.arctan2(gravity[:, 0], np.hypot(gravity[:, 1], gravity[:, 2]))
    camera = states[:, fmt.t265.start : fmt.t265.start + fmt.t265.width] if fmt.t265 else None
    yaw = camera[:, fmt.t265.rpy + 2] if camera is not None and fmt.t265 else np.zeros(n)
    quat = euler_to_quat(roll, pitch, yaw)
    if camera is not None and fmt.t265:
        gyro = rotate_inverse(np, quat, camera[:, fmt.t265.angular_velocity : fmt.t265.angular_velocity + 3])
        lin_vel = rotate_inverse(np, quat, camera[:, fmt.t265.velocity : fmt.t265.velocity + 3])
        return gravity, quat, gyro, lin_vel
    return gravity, quat, np.zeros((n, 3)), None  # no camera: no yaw rate, and leg odometry for the velocity


def _unio4_actions(
    actions: np.ndarray, q: np.ndarray, dq: np.ndarray, fmt: WtwLogFormat, robot: RobotDescription
) -> tuple[np.ndarray, np.ndarray]:
    """The log's joint targets as actions in the robot description's convention, and the PD torques toward them."""
    perm = fmt.to_sdk()
    default_log = np.asarray(fmt.default_joint_pos, dtype=np.float64)
    hips = np.zeros(12, dtype=bool)
    hips[::3] = True
    clipped = np.clip(actions.astype(np.float64), -fmt.clip_actions, fmt.clip_actions)
    log_scale = np.where(hips, fmt.action_scale * fmt.hip_scale_reduction, fmt.action_scale)
    targets = (default_log + clipped * log_scale)[:, perm]
    action = (targets - robot.default_joint_pos) / robot.action_scales
    torque = np.clip(fmt.kp * (targets - q) - fmt.kd * dq, -robot.torque_limits, robot.torque_limits)
    return action, torque


def _upright_episodes(full: dict[str, np.ndarray], upright: np.ndarray) -> list[ImportedEpisode]:
    """Episodes of the task: stretches of upright rows; rows lying on the side are left out.

    Each ends at the row where the robot is first tilted past max_tilt (a fall, terminal) or at the end of the file (a time-out).
    """
    n = len(upright)
    episodes, start = [], None
    for t in range(n + 1):
        if t < n and upright[t]:
            start = t if start is None else start
            continue
        if start is not None:
            end = min(t + 1, n)  # the first tilted row closes the episode
            if end - start >= 2:
                part = {k: v[start:end] for k, v in full.items()}
                lin, h, f = part.pop("base_lin_vel"), part.pop("base_height"), part.pop("gait_frequency")
                episodes.append(ImportedEpisode(part, lin, h, f, t < n))
            start = None
    return episodes


def observations(log: dict[str, np.ndarray], task: TaskConfig, robot: RobotDescription) -> np.ndarray:
    """unio4's policy observations (T, size) of one episode, by the robot runtime's own function."""
    last = np.concatenate([np.zeros((1, 12)), np.clip(log["action"][:-1], -task.action_clip, task.action_clip)])
    frames = observation_frame(
        np, task.observations, log["base_quat"], log["gyro"], log["joint_pos"], log["joint_vel"], log["command"], last,
        robot.default_joint_pos, log["time"],
    )  # fmt: skip
    length = task.observations.history_length
    if length == 1:
        return frames.astype(np.float32)
    history, out = start_history(np, frames[0], length), []
    for frame in frames:  # the runtime's history: the first frame repeated, then one push per step
        history = push_history(np, history, frame)
        out.append(history)
    return np.asarray(out, dtype=np.float32)


def read_log_file(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``states`` and ``actions`` of one HDF5 log."""
    try:
        with h5py.File(path, "r") as f:
            missing = [k for k in ("states", "actions") if k not in f]
            if missing:
                raise LogFormatError(f"{path}: no {missing} dataset(s) (expected 'states' and 'actions'; has {sorted(f.keys())})")
            return np.asarray(f["states"], dtype=np.float64), np.asarray(f["actions"], dtype=np.float64)
    except OSError as exc:
        raise LogFormatError(f"{path}: not a readable HDF5 file ({exc})") from None


def log_files(paths: list[Path]) -> list[Path]:
    """The ``.hdf5``/``.h5`` files named, or found under the directories named, in a stable order."""
    found: list[Path] = []
    for p in paths:
        if p.is_dir():
            found += sorted(x for x in p.rglob("*") if x.suffix in (".hdf5", ".h5") and x.is_file())
        elif p.is_file():
            found.append(p)
        else:
            raise LogFormatError(f"{p}: no such file or directory")
    if not found:
        raise LogFormatError(f"no .hdf5/.h5 log files in {[str(p) for p in paths]}")
    return found


def import_logs(paths: list[Path], fmt: WtwLogFormat, task: TaskConfig, progress: Any = None) -> Dataset:
    """One dataset from walk-these-ways log files (each file one episode), rewards from ``task``."""
    robot = load_robot(task.robot)
    files = log_files(paths)
    episodes, rows = [], 0
    for path in files:
        states, actions = read_log_file(path)
        rows += len(states)
        episodes += convert(path, states, actions, fmt, task, robot)
        if progress is not None:
            progress(path)
    # Terms that read the foot forces the log lacks: set aside, for every episode alike.
    probe = episodes[max(range(len(episodes)), key=lambda i: len(episodes[i].log["action"]))]
    motion = (probe.base_lin_vel, probe.base_height)
    set_aside = terms_reading(probe.log, "foot_force", task, fmt.policy_dt, base_motion=motion)
    columns: list[dict[str, np.ndarray]] = []
    for index, ep in enumerate(episodes):
        rewards, estimates = recompute_rewards(
            ep.log, task, fmt.policy_dt, ep.terminal, base_motion=(ep.base_lin_vel, ep.base_height), set_aside=set_aside
        )
        columns.append(
            {
                **episode_columns(observations(ep.log, task, robot), ep.log["action"], rewards, ep.terminal),
                "run_index": np.full(len(rewards), index, dtype=np.int64),  # the episode
                "gait_frequency": ep.gait_frequency.astype(np.float32),
                **{k: v.astype(np.float32) for k, v in ep.log.items() if k not in ("action", "foot_force")},
                **estimates,
            }
        )
    dropped = rows - sum(len(ep.log["action"]) for ep in episodes)
    frequency = np.concatenate([ep.gait_frequency for ep in episodes])
    off_clock = float(np.mean(np.abs(frequency - task.observations.clock_frequency) > 0.05))
    metadata = {
        "robot": task.robot,
        "source": "robot (walk-these-ways deploy logs)",
        "runs": [str(p) for p in files],
        "policy_dt": fmt.policy_dt,
        "task_config": to_dict(task),
        "import_format": to_dict(fmt),
        "estimated": [
            "base_lin_vel, gyro: tracking camera (world frame) rotated into the base frame"
            if fmt.t265
            else "base_lin_vel: leg odometry over the two lowest feet; gyro: not measured (0)",
            "base_height: leg kinematics over the two lowest feet",
            f"joint_torque: PD law of the log (Kp {fmt.kp}, Kd {fmt.kd}) at the logged targets",
        ],
        "not_measured": ["foot_force (no foot sensors in the log)", "collision_force (set to 0)"],
        "set_aside_terms": set_aside,
        "notes": [
            f"{len(files)} files, {len(episodes)} episodes, {sum(ep.terminal for ep in episodes)} of them end in a fall (tilt "
            f"past {task.termination.max_tilt} rad); {dropped} of {rows} rows (the robot on its side) are left out",
            f"{100 * off_clock:.1f} % of rows command a gait frequency more than 0.05 Hz from the task's clock",
        ],
    }
    return concatenate_episodes(columns, metadata, "imported logs")
