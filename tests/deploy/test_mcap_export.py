"""`unio4 replay RUN --mode mcap`: a rollout log as MCAP (JSON + JSON schema), read back value for value."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from mcap.reader import make_reader

from unio4.cli import main
from unio4.deploy.mcap_export import TOPICS, event_message
from unio4.deploy.rollout_log import RolloutLog, read_events, read_log

START = 1_754_000_000.123456  # wall time of the policy_start event


def _manifest_meta() -> dict[str, Any]:
    from unio4.robots.description import load_robot

    robot = load_robot("go1")
    return {"source": "robot", "manifest": {"robot": "go1", "joints": {"order": list(robot.joint_names)}}}


def write_log(run: Path, steps: int = 23, chunk_steps: int = 5) -> None:
    """A deploy-shaped log: the runtime's record keys, a NaN, and a safety stop at the end."""
    rng = np.random.default_rng(7)
    f32 = np.float32
    log = RolloutLog(run, _manifest_meta(), chunk_steps=chunk_steps)
    log.event("connected", time=START - 1.0, tick=100)
    log.event("policy_start", time=START, tick=1100)
    for k in range(steps):
        torque = rng.normal(0, 5, 12).astype(f32)
        if k == 3:
            torque[2] = np.nan  # a sensor glitch: written as null
        log.append(
            {
                "time": k * 0.02,
                "tick": 1100 + 20 * k,
                "observation": rng.normal(size=47).astype(f32),
                "action": rng.normal(size=12).astype(f32),
                "action_mean": rng.normal(size=12).astype(f32),
                "action_log_std": rng.normal(size=12).astype(f32),
                "log_prob": float(rng.normal()),
                "command": np.array([0.5, 0.0, rng.normal()], f32),
                "joint_target": rng.normal(size=12).astype(f32),
                "joint_pos": rng.normal(size=12).astype(f32),
                "joint_vel": rng.normal(size=12).astype(f32),
                "joint_torque": torque,
                "base_quat": (q := rng.normal(size=4)).astype(f32) / f32(np.linalg.norm(q)),
                "gyro": rng.normal(size=3).astype(f32),
                "accelerometer": rng.normal(size=3).astype(f32),
                "foot_force": rng.uniform(0, 80, 4).astype(f32),
            }
        )
        if k == 11:
            log.event("warning", time=START + k * 0.02, message="late tick")
    log.event("fault", time=START + steps * 0.02, reason="tilt 0.71 rad > 0.60")
    log.event("damping", time=START + steps * 0.02, reason="tilt 0.71 rad > 0.60", safety_stop=True, tick=1100 + 20 * steps)
    log.close({"reason": "tilt", "safety_stop": True})


def read_mcap(path: Path) -> tuple[dict[str, list[tuple[int, dict[str, Any]]]], dict[str, str], dict[str, dict[str, str]]]:
    """Messages by topic (log_time, decoded JSON), schema name and encodings by topic, metadata records."""
    by_topic: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    schemas: dict[str, str] = {}
    with path.open("rb") as fh:
        reader = make_reader(fh)
        for schema, channel, message in reader.iter_messages():
            assert schema is not None and schema.encoding == "jsonschema" and channel.message_encoding == "json"
            assert json.loads(schema.data)["title"] == schema.name
            schemas[channel.topic] = schema.name
            by_topic.setdefault(channel.topic, []).append((message.log_time, json.loads(message.data)))
        metadata = {m.name: dict(m.metadata) for m in reader.iter_metadata()}
    return by_topic, schemas, metadata


def same(read: Any, logged: np.ndarray) -> None:
    """JSON values equal the logged array exactly (null is NaN), in the logged dtype."""
    values = np.asarray([math.nan if v is None else v for v in np.ravel(read)], dtype=np.float64)
    np.testing.assert_array_equal(values.astype(logged.dtype), np.ravel(logged), strict=True)


def test_mcap_holds_every_logged_value(tmp_path: Path) -> None:
    run, out = tmp_path / "run", tmp_path / "run.mcap"
    write_log(run)
    assert main(["replay", str(run), "--mode", "mcap", "-o", str(out)]) == 0
    log, events = read_log(run).arrays, read_events(run)
    topics, schemas, metadata = read_mcap(out)
    assert schemas == TOPICS
    steps = len(log["time"])
    assert {t: len(m) for t, m in topics.items()} == {**{t: steps for t in TOPICS}, "/events": len(events)}
    names = _manifest_meta()["manifest"]["joints"]["order"]
    for k in range(steps):
        ns = round(START * 1e9) + round(float(log["time"][k]) * 1e9)
        joint_time, joint = topics["/joint_states"][k]
        assert joint_time == ns and joint["header"]["stamp"] == {"sec": ns // 10**9, "nsec": ns % 10**9}
        assert joint["name"] == names
        for field, key in (("position", "joint_pos"), ("velocity", "joint_vel"), ("effort", "joint_torque"), ("target", "joint_target")):
            same(joint[field], log[key][k])
        imu_time, imu = topics["/imu"][k]
        assert imu_time == ns
        same([imu["orientation"][c] for c in "wxyz"], log["base_quat"][k])
        same([imu["angular_velocity"][c] for c in "xyz"], log["gyro"][k])
        same([imu["linear_acceleration"][c] for c in "xyz"], log["accelerometer"][k])
        pose_time, pose = topics["/base_pose"][k]
        assert pose_time == ns and pose["frame_id"] == "world" and pose["pose"]["position"] == {"x": 0.0, "y": 0.0, "z": 0.0}
        same([pose["pose"]["orientation"][c] for c in "wxyz"], log["base_quat"][k])
        command = topics["/command"][k][1]
        same(command["values"], log["command"][k])
        same([command["linear"]["x"], command["linear"]["y"], command["angular"]["z"]], log["command"][k])
        feet = topics["/foot_force"][k][1]
        assert feet["name"] == ["FR", "FL", "RR", "RL"]
        same(feet["force"], log["foot_force"][k])
        policy_time, policy = topics["/policy"][k]
        assert policy_time == ns
        assert set(policy) == {"timestamp", "time", "tick", "observation", "action", "action_mean", "action_log_std", "log_prob"}
        for key in set(policy) - {"timestamp"}:
            same(policy[key], log[key][k])
    assert topics["/joint_states"][3][1]["effort"][2] is None  # the NaN
    for (event_time, message), event in zip(topics["/events"], sorted(events, key=lambda e: e["time"])):
        assert event_time == round(event["time"] * 1e9)
        kind, fields = message["message"].split(" ", 1)
        assert message["message"] == event_message(event)
        assert {"event": kind, **json.loads(fields)} == event  # every field, floats exactly
        assert message["name"] == "unio4.events" and read_events(run)[message["line"] - 1] == event
    levels = {m["message"].split(" ", 1)[0]: m["level"] for _, m in topics["/events"]}
    assert levels == {"connected": 2, "policy_start": 2, "warning": 3, "fault": 4, "damping": 4}  # foxglove.Log levels
    assert "manifest" in metadata["unio4"]["meta.yaml"]
    assert "safety_stop: true" in metadata["unio4"]["summary.yaml"]


def test_mcap_marks_a_lost_chunk_and_refuses_a_directory_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    write_log(run, steps=15, chunk_steps=5)
    (run / "chunk_000001.npz").unlink()  # steps 5..9 lost
    assert main(["replay", str(run), "--mode", "mcap"]) == 0
    topics, _, _ = read_mcap(run / "replay" / "log.mcap")
    assert len(topics["/joint_states"]) == 10
    gaps = [(t, m) for t, m in topics["/events"] if m["name"] == "unio4.log"]
    assert len(gaps) == 1 and gaps[0][1]["level"] == 3 and "chunk_000001.npz: missing" in gaps[0][1]["message"]
    assert gaps[0][0] == round(START * 1e9) + round(0.2 * 1e9)  # at the first step after the gap
    capsys.readouterr()
    assert main(["replay", str(run), "--mode", "mcap", "-o", str(tmp_path)]) == 2
    assert "a directory; -o names the file" in capsys.readouterr().err
