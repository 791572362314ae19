"""A rollout log (unio4 deploy --out) as an MCAP file that Foxglove opens: ``unio4 replay RUN --mode mcap``.

Every message is JSON (``message_encoding="json"``) with a JSON schema (``encoding="jsonschema"``), so
no protobuf is needed. One message per channel per policy step, plus the events:

==================  ======================  ==========================================================
topic               schema                  from the log
==================  ======================  ==========================================================
``/joint_states``   ``unio4.JointState``    ``joint_pos``, ``joint_vel``, ``joint_torque``, ``joint_target``
                                            (ROS ``sensor_msgs/JointState`` layout + ``target``)
``/imu``            ``unio4.Imu``           ``base_quat`` (w, x, y, z in the log), ``gyro``, ``accelerometer``
                                            (ROS ``sensor_msgs/Imu`` layout)
``/base_pose``      ``foxglove.PoseInFrame``  ``base_pos`` if logged (else the origin) and ``base_quat``
``/command``        ``unio4.VelocityCommand``  ``command``: ``values`` as logged; ``linear``/``angular``
                                            (a Twist: vx, vy, yaw rate) when it has 3 values
``/foot_force``     ``unio4.FootForce``     ``foot_force``, named by the robot's legs
``/policy``         ``unio4.PolicyStep``    ``time``, ``tick`` and every other logged key (observation,
                                            action, action_mean, action_log_std, log_prob, ...)
``/events``         ``foxglove.Log``        ``events.jsonl`` (message ``"<event> <fields as JSON>"``) and
                                            the log's gaps (lost chunks) as warnings
==================  ======================  ==========================================================

Times: a step's ``log_time`` is the wall time of the run's ``policy_start`` event plus the step's
``time`` (seconds since the policy started); without that event, the first event's time; without
events, 0. Events sit at their own wall ``time``. Floats are written with repr precision, so they
read back exactly; NaN and infinities (not JSON) are written as ``null``. ``meta.yaml`` and
``summary.yaml`` go into the file's metadata record ``unio4``. numpy + mcap only (no torch).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from unio4.deploy.rollout_log import RolloutData, read_events, read_log

MCAP_HINT = "pip install 'unio4[mcap]'"

_TIME = {"type": "object", "properties": {"sec": {"type": "integer"}, "nsec": {"type": "integer"}}}
_HEADER = {"type": "object", "properties": {"stamp": _TIME, "frame_id": {"type": "string"}}}
_NUMBERS = {"type": "array", "items": {"type": ["number", "null"]}}
_XYZ = {"type": "object", "properties": {k: {"type": "number"} for k in "xyz"}}
_XYZW = {"type": "object", "properties": {k: {"type": "number"} for k in "xyzw"}}
_STRINGS = {"type": "array", "items": {"type": "string"}}


def _schema(title: str, properties: dict[str, Any], extra: bool = False) -> dict[str, Any]:
    schema = {"title": title, "type": "object", "properties": properties}
    return schema | ({"additionalProperties": True} if extra else {})


SCHEMAS: dict[str, dict[str, Any]] = {
    "unio4.JointState": _schema(
        "unio4.JointState",
        {
            "header": _HEADER,
            "name": _STRINGS,
            "position": _NUMBERS,
            "velocity": _NUMBERS,
            "effort": _NUMBERS,
            "target": _NUMBERS,
        },
    ),
    "unio4.Imu": _schema("unio4.Imu", {"header": _HEADER, "orientation": _XYZW, "angular_velocity": _XYZ, "linear_acceleration": _XYZ}),
    "foxglove.PoseInFrame": _schema(
        "foxglove.PoseInFrame",
        {
            "timestamp": _TIME,
            "frame_id": {"type": "string"},
            "pose": {"type": "object", "properties": {"position": _XYZ, "orientation": _XYZW}},
        },
    ),
    "unio4.VelocityCommand": _schema("unio4.VelocityCommand", {"timestamp": _TIME, "values": _NUMBERS, "linear": _XYZ, "angular": _XYZ}),
    "unio4.FootForce": _schema("unio4.FootForce", {"timestamp": _TIME, "name": _STRINGS, "force": _NUMBERS}),
    "unio4.PolicyStep": _schema("unio4.PolicyStep", {"timestamp": _TIME, "time": {"type": "number"}}, extra=True),
    "foxglove.Log": _schema(
        "foxglove.Log",
        {
            "timestamp": _TIME,
            "level": {"type": "integer", "description": "0 UNKNOWN, 1 DEBUG, 2 INFO, 3 WARNING, 4 ERROR, 5 FATAL"},
            "message": {"type": "string"},
            "name": {"type": "string"},
            "file": {"type": "string"},
            "line": {"type": "integer"},
        },
    ),
}
TOPICS = {
    "/joint_states": "unio4.JointState",
    "/imu": "unio4.Imu",
    "/base_pose": "foxglove.PoseInFrame",
    "/command": "unio4.VelocityCommand",
    "/foot_force": "unio4.FootForce",
    "/policy": "unio4.PolicyStep",
    "/events": "foxglove.Log",
}
# log keys that a dedicated channel carries; /policy carries the rest
_CHANNEL_KEYS = {
    "joint_pos",
    "joint_vel",
    "joint_torque",
    "joint_target",
    "base_quat",
    "gyro",
    "accelerometer",
    "base_pos",
    "command",
    "foot_force",
}
LOG_LEVELS = {"INFO": 2, "WARNING": 3, "ERROR": 4}


@dataclass
class McapExport:
    """What :func:`export_mcap` wrote."""

    path: Path
    steps: int
    events: int
    topics: dict[str, int]  # messages per topic


def json_value(value: Any) -> Any:
    """A numpy scalar or array as JSON: floats at repr precision, NaN/Inf as ``None``."""
    array = np.asarray(value)
    if array.ndim:
        return [json_value(v) for v in array]
    item = array.item()
    if isinstance(item, float) and not math.isfinite(item):
        return None
    return item


def _stamp(ns: int) -> dict[str, int]:
    return {"sec": ns // 1_000_000_000, "nsec": ns % 1_000_000_000}


def _names(meta: dict[str, Any], joints: int, feet: int) -> tuple[list[str], list[str]]:
    """Joint names (the manifest's order, else the robot's) and leg names for the foot forces."""
    manifest: dict[str, Any] = meta["manifest"] if isinstance(meta.get("manifest"), dict) else {}
    joints_spec = manifest.get("joints")
    joint_names = list((joints_spec.get("order") if isinstance(joints_spec, dict) else None) or [])
    legs: list[str] = []
    robot = manifest.get("robot")
    if isinstance(robot, str):
        try:
            from unio4.robots.description import load_robot

            description = load_robot(robot)
            joint_names = joint_names or list(description.joint_names)
            legs = list(description.legs)
        except (OSError, ValueError, KeyError):  # an unknown robot: numbered names
            pass
    if len(joint_names) != joints:
        joint_names = [f"joint_{i}" for i in range(joints)]
    if len(legs) != feet:
        legs = [f"foot_{i}" for i in range(feet)]
    return joint_names, legs


def _event_level(event: dict[str, Any]) -> int:
    kind = event.get("event")
    if kind == "fault" or event.get("safety_stop") is True:
        return LOG_LEVELS["ERROR"]
    if kind == "warning":
        return LOG_LEVELS["WARNING"]
    return LOG_LEVELS["INFO"]


def event_message(event: dict[str, Any]) -> str:
    """``"<event> <the other fields as JSON>"``: what a foxglove.Log message of a logged event says."""
    fields = {k: v for k, v in event.items() if k != "event"}
    return f"{event.get('event', '?')} {json.dumps(fields)}"


def _time_origin(events: list[dict[str, Any]]) -> float:
    """Wall time of step time 0: the policy_start event's, else the first event's, else 0."""
    timed = [e for e in events if isinstance(e.get("time"), (int, float))]
    start = [e for e in timed if e.get("event") == "policy_start"]
    if start:
        return float(start[0]["time"])
    return float(timed[0]["time"]) if timed else 0.0


def _event_messages(events: list[dict[str, Any]], origin_ns: int) -> list[tuple[int, str, dict[str, Any]]]:
    """events.jsonl as foxglove.Log messages at their own wall time (the log's origin when they have none)."""
    messages = []
    for line, event in enumerate(events, start=1):
        t = event.get("time")
        ns = max(0, round(float(t) * 1e9)) if isinstance(t, (int, float)) else origin_ns
        message = {
            "timestamp": _stamp(ns),
            "level": _event_level(event),
            "message": event_message(event),
            "name": "unio4.events",
            "file": "events.jsonl",
            "line": line,
        }
        messages.append((ns, "/events", message))
    return messages


def _gap_messages(log: RolloutData, log_ns: list[int]) -> list[tuple[int, str, dict[str, Any]]]:
    """A warning for each lost chunk, at the first step after it (a gap lies before segment k + 1)."""
    messages = []
    for k, gap in enumerate(log.gaps):
        ns = log_ns[sum(log.segments[: k + 1])]
        gap_message = {"timestamp": _stamp(ns), "level": LOG_LEVELS["WARNING"], "message": f"gap in the log: {gap}", "name": "unio4.log"}
        messages.append((ns, "/events", gap_message | {"file": "", "line": 0}))
    return messages


_Message = tuple[int, str, dict[str, Any]]  # (log_time ns, topic, message)


def step_messages(run_dir: str | Path) -> tuple[list[_Message], dict[str, Any], int]:
    """Every message of the MCAP file as (log_time ns, topic, message), in time order, and the log's meta."""
    run_dir = Path(run_dir)
    log = read_log(run_dir)
    events = read_events(run_dir)
    meta = _read_meta(run_dir)
    arrays = log.arrays
    steps = len(log)
    origin_ns = round(_time_origin(events) * 1e9)
    times = np.asarray(arrays["time"], dtype=np.float64) if "time" in arrays else np.arange(steps, dtype=np.float64)
    log_ns = [max(0, origin_ns + round(float(t) * 1e9)) for t in times]
    joints = arrays["joint_pos"].shape[1] if "joint_pos" in arrays else 0
    feet = arrays["foot_force"].shape[1] if "foot_force" in arrays else 0
    joint_names, legs = _names(meta, joints, feet)
    messages: list[_Message] = []
    for k in range(steps):
        messages += _messages_of_step(arrays, k, log_ns[k], float(times[k]), joint_names, legs)
    messages += _event_messages(events, origin_ns) + _gap_messages(log, log_ns)
    messages.sort(key=lambda m: m[0])  # stable: per-step order kept
    return messages, meta, steps


def _read_meta(run_dir: Path) -> dict[str, Any]:
    """The run's ``meta.yaml`` (empty when it is missing or empty): joint names and the file's metadata come from it."""
    meta_path = run_dir / "meta.yaml"
    return (yaml.safe_load(meta_path.read_text()) or {}) if meta_path.is_file() else {}


def _value(arrays: dict[str, np.ndarray], key: str, k: int) -> Any:
    """Step ``k`` of ``key`` as JSON; an empty list when the log has no such key."""
    return json_value(arrays[key][k]) if key in arrays else []


def _xyz(values: list[Any]) -> dict[str, Any]:
    """A logged 3-vector as the ``{x, y, z}`` object the ROS layouts use."""
    return dict(zip("xyz", values))


def _messages_of_step(
    arrays: dict[str, np.ndarray], k: int, ns: int, time: float, joint_names: list[str], legs: list[str]
) -> list[_Message]:
    """Step ``k`` on every channel whose data the log holds, in topic order; /policy carries the other keys."""
    stamp = _stamp(ns)
    header = {"stamp": stamp, "frame_id": "base"}
    messages: list[_Message] = []
    if joint_names:
        messages.append((ns, "/joint_states", _joint_state(arrays, k, header, joint_names)))
    quat = _value(arrays, "base_quat", k)
    orientation = dict(zip("wxyz", quat))
    if quat or "gyro" in arrays or "accelerometer" in arrays:
        messages.append((ns, "/imu", _imu(arrays, k, header, orientation)))
    if quat:
        position = _xyz(_value(arrays, "base_pos", k)) if "base_pos" in arrays else {"x": 0.0, "y": 0.0, "z": 0.0}
        pose = {"timestamp": stamp, "frame_id": "world", "pose": {"position": position, "orientation": orientation}}
        messages.append((ns, "/base_pose", pose))
    if "command" in arrays:
        messages.append((ns, "/command", _command(_value(arrays, "command", k), stamp)))
    if legs:
        messages.append((ns, "/foot_force", {"timestamp": stamp, "name": legs, "force": _value(arrays, "foot_force", k)}))
    policy = {"timestamp": stamp, "time": time}
    policy |= {key: _value(arrays, key, k) for key in arrays if key not in _CHANNEL_KEYS and key != "time"}
    messages.append((ns, "/policy", policy))
    return messages


def _joint_state(arrays: dict[str, np.ndarray], k: int, header: dict[str, Any], joint_names: list[str]) -> dict[str, Any]:
    """A ``unio4.JointState``: ROS ``sensor_msgs/JointState`` with the PD target beside the measurements."""
    return {
        "header": header,
        "name": joint_names,
        "position": _value(arrays, "joint_pos", k),
        "velocity": _value(arrays, "joint_vel", k),
        "effort": _value(arrays, "joint_torque", k),
        "target": _value(arrays, "joint_target", k),
    }


def _imu(arrays: dict[str, np.ndarray], k: int, header: dict[str, Any], orientation: dict[str, Any]) -> dict[str, Any]:
    """A ``unio4.Imu`` (ROS ``sensor_msgs/Imu`` layout) holding only the IMU fields the log has."""
    imu: dict[str, Any] = {"header": header}
    if orientation:
        imu["orientation"] = orientation
    if "gyro" in arrays:
        imu["angular_velocity"] = _xyz(_value(arrays, "gyro", k))
    if "accelerometer" in arrays:
        imu["linear_acceleration"] = _xyz(_value(arrays, "accelerometer", k))
    return imu


def _command(values: list[Any], stamp: dict[str, int]) -> dict[str, Any]:
    """A ``unio4.VelocityCommand``: the logged values, and as a Twist (vx, vy, yaw rate) when there are 3."""
    command: dict[str, Any] = {"timestamp": stamp, "values": values}
    if len(values) == 3:
        command["linear"] = {"x": values[0], "y": values[1], "z": 0.0}
        command["angular"] = {"x": 0.0, "y": 0.0, "z": values[2]}
    return command


def export_mcap(run_dir: str | Path, out: str | Path) -> McapExport:
    """Write rollout log ``run_dir`` to ``out`` (an .mcap file), replacing it atomically."""
    try:
        from mcap.writer import Writer
    except ImportError as err:
        raise ImportError(f"replay --mode mcap needs the mcap package: {MCAP_HINT}") from err
    run_dir, out = Path(run_dir), Path(out)
    messages, meta, steps = step_messages(run_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    counts = dict.fromkeys(TOPICS, 0)
    for _, topic, _ in messages:
        counts[topic] += 1
    with tmp.open("wb") as fh:
        writer = Writer(fh)
        writer.start(profile="", library="unio4")
        channels: dict[str, int] = {}
        for topic, schema_name in TOPICS.items():
            if counts[topic]:
                schema_id = writer.register_schema(schema_name, "jsonschema", json.dumps(SCHEMAS[schema_name]).encode())
                channels[topic] = writer.register_channel(topic, "json", schema_id)
        sequence = dict.fromkeys(TOPICS, 0)
        for ns, topic, message in messages:
            data = json.dumps(message, allow_nan=False, separators=(",", ":")).encode()
            writer.add_message(channels[topic], log_time=ns, data=data, publish_time=ns, sequence=sequence[topic])
            sequence[topic] += 1
        record = {"run": str(run_dir.resolve()), "meta.yaml": yaml.safe_dump(meta, sort_keys=False)}
        if (run_dir / "summary.yaml").is_file():
            record["summary.yaml"] = (run_dir / "summary.yaml").read_text()
        writer.add_metadata("unio4", record)
        writer.finish()
    tmp.replace(out)
    return McapExport(out, steps, counts["/events"], {t: n for t, n in counts.items() if n})
