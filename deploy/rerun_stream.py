"""Runs in Rerun: a recording of a run's steps, and a streamer that feeds one from the control loop without ever blocking it.

What a recording holds (the same for ``unio4 deploy --rerun``, ``replay --mode rerun`` and ``play --rerun``):

- ``robot/<body>``: each body's pose (Transform3D) per step, and under it the body's visual geoms from the
  MJCF as coloured primitives (Boxes3D, Capsules3D, Cylinders3D, Ellipsoids3D), logged once (static);
- ``joints/<joint>/position``, ``.../target``, ``.../torque``: scalar time series, one entity per joint;
- ``velocity/<vx|vy|yaw_rate>/command`` and ``.../measured``; ``foot_force/<leg>``;
- ``events``: safety events and phase changes as text-log markers (a fault at level ERROR);
- timelines ``step`` (policy step) and ``time`` (policy time, s).

:class:`RerunStreamer` is the deploy runtime's side: ``put`` (one policy step) and ``event`` only
try to enqueue on a bounded queue and return at once; when the queue is full the frame is dropped
and counted, never waited for. A background thread drains the queue every ``interval_s`` and hands
the batch to a sink (:func:`rerun_sink`: forward kinematics of the legs relative to the trunk, leg
odometry for the measured velocity, then Rerun's columnar API). rerun-sdk is imported only here and
only when a recording is opened: the deploy path without ``--rerun`` never imports it.
"""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from unio4.robots.description import RobotDescription
from unio4.robots.kinematics import STANCE_FORCE, leg_odometry
from unio4.robots.mjcf_geometry import RobotGeometry, quat_rotate

RERUN_MISSING = "--rerun needs rerun-sdk: pip install 'unio4[rerun]'"
DEFAULT_PORT = 9876  # the Rerun viewer's gRPC port
VELOCITY_NAMES = ("vx", "vy", "yaw_rate")
SWITCH_INTERVAL_S = 0.0001  # GIL hand-over while streaming (see open_stream)
EVENT_LEVELS = {"fault": "ERROR", "warning": "WARN", "damping": "WARN"}


def require_rerun() -> ModuleType:
    """rerun-sdk, or the one-line error the CLI prints (exit 2)."""
    try:
        import rerun
    except ImportError:
        raise ImportError(RERUN_MISSING) from None
    return rerun


def grpc_url(addr: str) -> str:
    """``HOST[:PORT]`` (default port 9876) or a full ``rerun+http://...`` URL, as the URL the viewer listens on."""
    if "://" in addr:
        return addr
    host, _, port = addr.rpartition(":") if ":" in addr else (addr, "", str(DEFAULT_PORT))
    if not port.isdigit():
        raise ValueError(f"--rerun {addr!r}: expected HOST[:PORT] of a Rerun viewer (port {DEFAULT_PORT} by default)")
    return f"rerun+http://{host or '127.0.0.1'}:{port}/proxy"


def open_recording(app_id: str, addr: str | None = None, save: str | Path | None = None) -> Any:
    """A Rerun recording stream to a viewer at ``addr``, into the file ``save`` (.rrd), or both."""
    rr = require_rerun()
    if addr is None and save is None:
        raise ValueError("a Rerun recording needs a viewer address (--rerun ADDR) or a file (--rerun-save FILE.rrd)")
    rec = rr.RecordingStream(app_id)
    sinks: list[Any] = []
    if save is not None:
        Path(save).parent.mkdir(parents=True, exist_ok=True)
        sinks.append(rr.FileSink(str(save)))
    if addr is not None:
        sinks.append(rr.GrpcSink(grpc_url(addr)))
    rec.set_sinks(*sinks)
    return rec


def _xyzw(quat_wxyz: np.ndarray) -> np.ndarray:
    return np.asarray(quat_wxyz, dtype=np.float64)[..., [1, 2, 3, 0]]


class RerunLogger:
    """Writes a run into one recording: the robot's geometry once, then steps as columns (see the module docstring)."""

    def __init__(self, rec: Any, robot: RobotDescription, geometry: RobotGeometry | None = None) -> None:
        self.rr = require_rerun()
        self.rec, self.robot = rec, robot
        self.geometry = geometry if geometry is not None else RobotGeometry.of(robot)
        self.joints = robot.joint_short_names

    def log_static(self) -> None:
        """The geoms of every body, the series' names and a layout for the viewer."""
        rr = self.rr
        rec = self.rec
        for g in self.geometry.drawn:  # the visual geoms, in their colours (not the collision shapes)
            path = f"robot/{self.geometry.bodies[g.body].name}/{g.name}"
            xyzw, colors = [_xyzw(g.quat)], [np.round(np.clip(g.rgba, 0.0, 1.0) * 255).astype(np.uint8)]
            if g.kind == "box":
                box = rr.Boxes3D(half_sizes=[g.size], centers=[g.pos], quaternions=xyzw, fill_mode="solid", colors=colors)
                rec.log(path, box, static=True)
            elif g.kind == "capsule":
                start = g.pos - quat_rotate(g.quat, np.array([0.0, 0.0, g.size[1]]))  # Rerun's capsule starts at its origin
                capsule = rr.Capsules3D(lengths=[2 * g.size[1]], radii=[g.size[0]], translations=[start], quaternions=xyzw, colors=colors)
                rec.log(path, capsule, static=True)
            elif g.kind == "cylinder":
                cylinder = rr.Cylinders3D(lengths=[2 * g.size[1]], radii=[g.size[0]], centers=[g.pos], quaternions=xyzw, colors=colors)
                rec.log(path, cylinder, static=True)
            else:
                rec.log(path, rr.Ellipsoids3D(half_sizes=[[g.size[0]] * 3], centers=[g.pos], fill_mode="solid", colors=colors), static=True)
        for name in self.joints:
            for series in ("position", "target", "torque"):
                rec.log(f"joints/{name}/{series}", rr.SeriesLines(names=series), static=True)
        for name in VELOCITY_NAMES:
            for series in ("command", "measured"):
                rec.log(f"velocity/{name}/{series}", rr.SeriesLines(names=f"{series} {name}"), static=True)
        for leg in self.robot.legs:
            rec.log(f"foot_force/{leg}", rr.SeriesLines(names=leg), static=True)
        rec.send_blueprint(self.blueprint())

    def blueprint(self) -> Any:
        """The viewer's layout: the robot, velocity, foot forces and events left; the joints, one column per leg, right."""
        import rerun.blueprint as rrb

        per_leg = [
            rrb.Vertical(*(rrb.TimeSeriesView(origin=f"joints/{j}", name=j) for j in self.joints[3 * i : 3 * i + 3]))
            for i in range(len(self.robot.legs))
        ]
        return rrb.Blueprint(
            rrb.Horizontal(
                rrb.Vertical(
                    rrb.Spatial3DView(origin="robot", name="robot", background=rrb.BackgroundKind.GradientBright),  # a dark robot
                    rrb.TimeSeriesView(origin="velocity", name="velocity: command vs measured"),
                    rrb.TimeSeriesView(origin="foot_force", name="foot forces"),
                    rrb.TextLogView(origin="events", name="events"),
                ),
                rrb.Horizontal(*per_leg),
                column_shares=[2, 3],
            ),
            collapse_panels=True,
        )

    def send_steps(self, steps: np.ndarray, arrays: dict[str, np.ndarray], body_pos: np.ndarray, body_quat: np.ndarray) -> None:
        """Steps ``steps`` (T,) of ``arrays`` (time, joint_pos, joint_target, joint_torque, command, velocity,
        foot_force; each (T, ...), any may be absent) and body poses (T, bodies, 3|4), in columns.
        """
        rr, rec = self.rr, self.rec
        index = [rr.TimeColumn("step", sequence=np.asarray(steps, dtype=np.int64))]
        if "time" in arrays:
            index.append(rr.TimeColumn("time", duration=np.asarray(arrays["time"], dtype=np.float64)))

        def scalars(path: str, values: np.ndarray) -> None:
            rec.send_columns(path, indexes=index, columns=rr.Scalars.columns(scalars=np.asarray(values, dtype=np.float64)))

        for i, body in enumerate(self.geometry.bodies):
            rec.send_columns(
                f"robot/{body.name}",
                indexes=index,
                columns=rr.Transform3D.columns(translation=body_pos[:, i], quaternion=_xyzw(body_quat[:, i])),
            )
        for key, series in (("joint_pos", "position"), ("joint_target", "target"), ("joint_torque", "torque")):
            if key in arrays:
                for j, name in enumerate(self.joints):
                    scalars(f"joints/{name}/{series}", arrays[key][:, j])
        for key, series in (("command", "command"), ("velocity", "measured")):
            if key in arrays:
                for j, name in enumerate(VELOCITY_NAMES):
                    scalars(f"velocity/{name}/{series}", arrays[key][:, j])
        if "foot_force" in arrays:
            for j, leg in enumerate(self.robot.legs):
                scalars(f"foot_force/{leg}", arrays["foot_force"][:, j])

    def log_event(self, step: int, t: float | None, kind: str, fields: dict[str, Any]) -> None:
        """One event as a text-log marker at policy step ``step``."""
        rr, rec = self.rr, self.rec
        rec.set_time("step", sequence=int(step))
        if t is not None:
            rec.set_time("time", duration=float(t))
        detail = ", ".join(f"{k}={v}" for k, v in fields.items() if k not in ("time", "event"))
        level = "ERROR" if kind == "damping" and fields.get("safety_stop") else EVENT_LEVELS.get(kind, "INFO")
        rec.log("events", rr.TextLog(f"{kind}: {detail}" if detail else kind, level=level))


def measured_velocity(robot: RobotDescription, arrays: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """What a robot log says of the base: (vx, vy, yaw rate) (T, 3) from leg odometry and the gyro, and the base height (T,)."""
    q, dq, gyro, quat = (np.asarray(arrays[k], dtype=np.float64) for k in ("joint_pos", "joint_vel", "gyro", "base_quat"))
    vel, height = leg_odometry(robot, q, dq, gyro, quat, arrays["foot_force"], STANCE_FORCE)
    return np.concatenate([vel[:, :2], gyro[:, 2:3]], -1), height


# ---- the deploy side: a bounded queue between the control loop and Rerun ----

Item = tuple[str, int, dict[str, Any]]  # ("step", index, record) or ("event", index, {"event": kind, ...})
Sink = Callable[[list[Item]], None]


@dataclass
class StreamStats:
    """What became of the frames a deploy offered the streamer (also in summary.yaml under ``rerun``)."""

    steps: int = 0  # frames the loop offered
    sent: int = 0  # frames the sink took
    dropped: int = 0  # frames dropped because the queue was full (the viewer or network behind)
    dropped_events: int = 0
    error: str | None = None  # the sink's first failure; later frames are dropped


class RerunStreamer:
    """A bounded queue drained by a background thread: ``put``/``event`` never block the caller.

    ``sink`` gets lists of items, in order, at most every ``interval_s``. With the sink stalled,
    the queue fills to ``maxsize`` and every later frame is dropped (counted in ``stats``).
    """

    def __init__(self, sink: Sink, maxsize: int = 100, interval_s: float = 0.5, on_close: Callable[[], None] | None = None) -> None:
        self._sink, self._interval, self._on_close = sink, interval_s, on_close
        self._queue: queue.Queue[Item] = queue.Queue(maxsize=maxsize)
        self.stats = StreamStats()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._drain, name="rerun-stream", daemon=True)
        self._thread.start()

    def put(self, record: dict[str, Any]) -> bool:
        """Offer one policy step (the rollout log's record; not modified); False when it was dropped."""
        index = self.stats.steps
        self.stats.steps += 1
        try:
            self._queue.put_nowait(("step", index, record))
            return True
        except queue.Full:
            self.stats.dropped += 1
            return False

    def event(self, kind: str, **fields: Any) -> bool:
        """Offer one event, placed at the current step; False when it was dropped."""
        try:
            self._queue.put_nowait(("event", self.stats.steps, {"event": kind, **fields}))
            return True
        except queue.Full:
            self.stats.dropped_events += 1
            return False

    def _drain(self) -> None:
        while True:
            closing = self._closing.is_set()
            batch: list[Item] = []
            while True:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if batch:
                if self.stats.error is None:
                    try:
                        self._sink(batch)
                        self.stats.sent += sum(1 for kind, _, _ in batch if kind == "step")
                    except Exception as exc:  # noqa: BLE001 - a viewer problem must never reach the robot's loop
                        self.stats.error = f"{type(exc).__name__}: {exc}"
                if self.stats.error is not None:
                    self.stats.dropped += sum(1 for kind, _, _ in batch if kind == "step")
            elif closing:
                return
            if not closing:
                self._closing.wait(self._interval)

    def close(self, timeout_s: float = 10.0) -> StreamStats:
        """Send what is queued (waiting at most ``timeout_s`` for the sink) and flush the recording."""
        self._closing.set()
        self._thread.join(timeout_s)
        if not self._thread.is_alive() and self._on_close is not None:
            try:
                self._on_close()
            except Exception as exc:  # noqa: BLE001
                self.stats.error = self.stats.error or f"{type(exc).__name__}: {exc}"
        return self.stats


def rerun_sink(logger: RerunLogger) -> Sink:
    """Items into ``logger``'s recording: the legs posed relative to the trunk (a robot knows no base
    position; the trunk stays at the origin), measured velocity from leg odometry and the gyro.
    """
    geometry = logger.geometry
    last_time: list[float | None] = [None]  # policy time of the last step sent: where the next event goes

    def sink(batch: list[Item]) -> None:
        steps = [(i, r) for kind, i, r in batch if kind == "step"]
        if steps:
            records = [r for _, r in steps]
            keys = ("time", "joint_pos", "joint_vel", "joint_target", "joint_torque", "command", "foot_force", "gyro", "base_quat")
            arrays = {k: np.stack([np.asarray(r[k], dtype=np.float64) for r in records]) for k in keys if k in records[0]}
            if all(k in arrays for k in ("joint_vel", "gyro", "base_quat", "foot_force")):
                arrays["velocity"], _ = measured_velocity(logger.robot, arrays)
            n = len(records)
            identity = np.tile([1.0, 0.0, 0.0, 0.0], (n, 1))
            pos, quat = geometry.body_poses(np.zeros((n, 3)), identity, arrays["joint_pos"])
            logger.send_steps(np.array([i for i, _ in steps]), arrays, pos, quat)
        for kind, i, r in batch:
            if kind == "step":
                last_time[0] = float(r.get("time", 0.0))
            else:
                logger.log_event(i, last_time[0], r["event"], r)

    return sink


def open_stream(robot: RobotDescription, addr: str | None = None, save: str | Path | None = None, maxsize: int = 100) -> RerunStreamer:
    """A :class:`RerunStreamer` into a new recording (``unio4 deploy --rerun ADDR`` / ``--rerun-save FILE``)."""
    # The sink's Python work holds the GIL; by default the control thread could wait 5 ms for it
    # (sys.getswitchinterval) and miss 500 Hz ticks. Switching every 0.1 ms keeps its wait short.
    sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL_S))
    rec = open_recording("unio4_deploy", addr, save)
    logger = RerunLogger(rec, robot)
    logger.log_static()

    def finish() -> None:
        rec.flush(timeout_sec=5.0)
        rec.disconnect()

    return RerunStreamer(rerun_sink(logger), maxsize=maxsize, on_close=finish)
