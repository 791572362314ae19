"""Robot logs and simulated rollouts in Rerun: ``unio4 replay RUN --mode rerun`` and ``unio4 play --rerun``.

The recording's layout is :mod:`unio4.deploy.rerun_stream`'s (the robot's MJCF geoms posed per
step, joint positions/targets/torques, commanded vs measured velocity, foot forces, events). Here
the bodies are posed by MuJoCo's forward kinematics (``mj_kinematics`` on the robot's compiled
MJCF): for a robot log from the logged joint angles and orientation, the base at its leg-odometry
height (a robot measures no base position; x and y stay 0), with the measured velocity from leg
odometry and the gyro; for ``play`` from the simulator's own base pose and velocity.
:func:`read_recording` reads an .rrd back with rerun's own chunk reader.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mujoco
import numpy as np

from unio4.deploy.rerun_stream import RerunLogger, measured_velocity, open_recording, require_rerun
from unio4.deploy.rollout_log import read_events, read_log
from unio4.robots.description import RobotDescription, load_robot
from unio4.robots.mjcf_geometry import RobotGeometry
from unio4.sim.backends.mujoco_model import ModelIndex, compile_model


class MujocoPoser:
    """Body poses of the robot's MJCF from base poses and joint angles, by MuJoCo's forward kinematics."""

    def __init__(self, robot: RobotDescription, geometry: RobotGeometry) -> None:
        self.model = compile_model(robot)
        self.data = mujoco.MjData(self.model)
        self.qpos = ModelIndex.of(self.model, robot).qpos
        self.bodies = [mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_BODY, b.name) for b in geometry.bodies]

    def __call__(self, base_pos: np.ndarray, base_quat: np.ndarray, joint_pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World positions (T, bodies, 3) and (w, x, y, z) orientations (T, bodies, 4)."""
        T = len(joint_pos)
        pos, quat = np.zeros((T, len(self.bodies), 3)), np.zeros((T, len(self.bodies), 4))
        for k in range(T):
            self.data.qpos[0:3], self.data.qpos[3:7], self.data.qpos[self.qpos] = base_pos[k], base_quat[k], joint_pos[k]
            mujoco.mj_kinematics(self.model, self.data)
            pos[k], quat[k] = self.data.xpos[self.bodies], self.data.xquat[self.bodies]
        return pos, quat


@dataclass
class RerunReplay:
    steps: int
    events: int
    saved: Path | None
    notes: list[str]


def event_steps(events: list[dict[str, Any]], ticks: np.ndarray) -> list[int]:
    """The policy step of each event: the first step at or after its LowState tick; an event without a
    tick (a fault) at the next event's step that has one, else at the end."""
    steps: list[int | None] = [int(np.searchsorted(ticks, e["tick"])) if "tick" in e else None for e in events]
    last = max(len(ticks) - 1, 0)
    out: list[int] = []
    for i, s in enumerate(steps):
        if s is None:
            s = next((t for t in steps[i + 1 :] if t is not None), last)
        out.append(min(s, last))
    return out


def replay_to_rerun(run_dir: str | Path, addr: str | None = None, save: str | Path | None = None, robot_name: str = "go1") -> RerunReplay:
    """A robot log into a Rerun recording (viewer at ``addr`` and/or file ``save``): all its readable steps, its events."""
    require_rerun()
    run_dir = Path(run_dir)
    data = read_log(run_dir)
    log = data.arrays
    robot = load_robot(robot_name)
    geometry = RobotGeometry.of(robot)
    velocity, height = measured_velocity(robot, log)
    T = len(log["joint_pos"])
    base_pos = np.zeros((T, 3))
    base_pos[:, 2] = height
    pos, quat = MujocoPoser(robot, geometry)(base_pos, log["base_quat"].astype(np.float64), log["joint_pos"].astype(np.float64))
    rec = open_recording("unio4_replay", addr, save)
    logger = RerunLogger(rec, robot, geometry)
    logger.log_static()
    arrays: dict[str, np.ndarray] = {
        k: log[k] for k in ("time", "joint_pos", "joint_target", "joint_torque", "command", "foot_force") if k in log
    }
    logger.send_steps(np.arange(T), {**arrays, "velocity": velocity}, pos, quat)
    events = read_events(run_dir)
    ticks = log["tick"] if "tick" in log else np.arange(T)
    for event, step in zip(events, event_steps(events, ticks)):
        logger.log_event(step, float(log["time"][step]) if "time" in log else None, str(event.get("event")), event)
    for k, gap in enumerate(data.gaps):  # a lost chunk between two stretches: say so where it happened
        step = sum(data.segments[: k + 1])
        logger.log_event(step, None, "gap", {"missing": gap})
    rec.flush(timeout_sec=10.0)
    rec.disconnect()
    return RerunReplay(T, len(events), Path(save) if save is not None else None, data.notes)


class PlayRecorder:
    """``unio4 play --rerun``: the rollout's steps into a recording, sent every ``every`` steps."""

    def __init__(self, robot: RobotDescription, addr: str | None, save: str | Path | None, every: int = 25) -> None:
        self.geometry = RobotGeometry.of(robot)
        self.poser = MujocoPoser(robot, self.geometry)
        self.rec = open_recording("unio4_play", addr, save)
        self.logger = RerunLogger(self.rec, robot, self.geometry)
        self.logger.log_static()
        self.every, self.steps = every, 0
        self._frames: list[dict[str, np.ndarray]] = []

    def __call__(self, frame: dict[str, np.ndarray]) -> None:
        """One step: time, base_pos, base_quat, joint_pos, joint_target, joint_torque, command, velocity, foot_force."""
        self._frames.append(frame)
        if len(self._frames) >= self.every:
            self.flush()

    def flush(self) -> None:
        if not self._frames:
            return
        arrays = {k: np.stack([np.asarray(f[k], dtype=np.float64) for f in self._frames]) for k in self._frames[0]}
        pos, quat = self.poser(arrays["base_pos"], arrays["base_quat"], arrays["joint_pos"])
        n = len(self._frames)
        self.logger.send_steps(np.arange(self.steps, self.steps + n), arrays, pos, quat)
        self.steps += n
        self._frames = []

    def close(self) -> None:
        self.flush()
        self.rec.flush(timeout_sec=10.0)
        self.rec.disconnect()


def read_recording(path: str | Path) -> dict[str, dict[str, np.ndarray]]:
    """An .rrd's temporal data by entity path (no leading /): each column (``step``, ``time`` in s,
    ``Scalars:scalars``, ``Transform3D:translation``, ...) as an array in step order; text as strings."""
    require_rerun()
    from rerun.chunk import RrdReader

    columns: dict[str, dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
    for chunk in RrdReader(str(path)).stream():
        if chunk.is_static:
            continue
        import pyarrow as pa

        batch = chunk.to_record_batch()
        entity = str(chunk.entity_path).lstrip("/")
        for name, column in zip(batch.schema.names, batch.columns):
            if name == "rerun.controls.RowId" or pa.types.is_timestamp(column.type):  # row ids, log_time
                continue
            if pa.types.is_duration(column.type):  # the "time" timeline: seconds
                columns[entity][name] += [None if v is None else v * 1e-9 for v in column.cast(pa.int64()).to_pylist()]
            else:
                columns[entity][name] += column.to_pylist()
    out: dict[str, dict[str, np.ndarray]] = {}
    for entity, cols in columns.items():
        arrays: dict[str, np.ndarray] = {}
        for name, values in cols.items():
            if name == "time":
                arrays[name] = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
            elif values and isinstance(values[0], list) and len(values[0]) == 1:
                arrays[name] = np.array([v[0] for v in values], dtype=object if isinstance(values[0][0], str) else None)
            else:
                arrays[name] = np.array(values, dtype=object)
        if "step" in arrays and all(len(a) == len(arrays["step"]) for a in arrays.values()):
            order = np.argsort(arrays["step"].astype(np.int64), kind="stable")
            arrays = {k: a[order] for k, a in arrays.items()}
        out[entity] = arrays
    return out
