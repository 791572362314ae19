"""``unio4 data import``: a log written here in the exact published layout comes back as the raw state it was made from.

The test builds walk-these-ways observations the way the authors' deploy code does (its own rotation
matrices, leg order FL FR RL RR, sine clock inputs, a T265 block in world axes), from known raw
states, and checks the importer recovers those states, unio4's observation and the rewards.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from unio4.cli import main
from unio4.configs.loader import load, resolve_config_path
from unio4.deploy.observations import observation_frame
from unio4.learning.data.dataset import load_dataset
from unio4.learning.data.pack import recompute_rewards
from unio4.learning.data.wtw_import import LogFormatError, WtwLogFormat, gait_phase, import_logs
from unio4.robots.description import load_robot
from unio4.sim.config import load_task_config

ROBOT = load_robot("go1")


TASK = load_task_config("go1_flat")


FMT = load(WtwLogFormat, resolve_config_path("uni_o4_go1", "import"))


WTW_FROM_SDK = np.array([3, 4, 5, 0, 1, 2, 9, 10, 11, 6, 7, 8])  # log joint j is SDK joint WTW_FROM_SDK[j] (an involution)


DEFAULT_WTW = np.array([0.1, 0.8, -1.5, -0.1, 0.8, -1.5, 0.1, 1.0, -1.5, -0.1, 1.0, -1.5])


COMMAND_SCALE = np.array([2.0, 2.0, 0.25, 2.0, 1, 1, 1, 1, 1, 0.15, 0.3, 0.3, 1, 1, 1])


def rotation(roll: np.ndarray, pitch: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    """(T, 3, 3) body-to-world rotation Rz(yaw) Ry(pitch) Rx(roll)."""
    cr, sr, cp, sp, cy, sy = np.cos(roll), np.sin(roll), np.cos(pitch), np.sin(pitch), np.cos(yaw), np.sin(yaw)
    return np.stack(
        [
            np.stack([cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr], -1),
            np.stack([sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr], -1),
            np.stack([-sp, cp * sr, cp * cr], -1),
        ],
        -2,
    )


def synthetic_log(n: int = 80, fall_at: int | None = None, seed: int = 0) -> dict[str, np.ndarray]:
    """Known raw states (SDK order), and the 76-column rows and raw actions the authors' code would log."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    q = ROBOT.default_joint_pos + 0.2 * np.sin(0.3 * t[:, None] + np.arange(12))
    dq = rng.normal(0, 2.0, (n, 12))
    roll, pitch, yaw = 0.05 * np.sin(0.2 * t), 0.08 * np.cos(0.1 * t), 0.02 * t - 0.5
    if fall_at is not None:
        roll[fall_at:] = 1.4  # on its side
    rot = rotation(roll, pitch, yaw)
    v_world, w_world = rng.normal(0, 0.5, (n, 3)), rng.normal(0, 0.8, (n, 3))
    commands = np.stack([0.8 * np.ones(n), -0.2 * np.ones(n), 0.5 * np.sin(0.05 * t)], -1)
    phase = (0.37 + 3.0 * 0.02 * t) % 1.0
    actions = rng.normal(0, 1.5, (n, 12)).astype(np.float32)
    actions[3, 2] = 12.0  # clipped at 10 by the log's policy loop
    wtw = lambda x: x[:, WTW_FROM_SDK]  # noqa: E731
    cmd15 = np.zeros((n, 15))
    cmd15[:, :3], cmd15[:, 4], cmd15[:, 5], cmd15[:, 8], cmd15[:, 9] = commands, 3.0, 0.5, 0.5, 0.08
    last = np.concatenate([np.zeros((1, 12)), np.clip(actions[:-1], -10, 10)])
    clock = np.stack(
        [np.sin(2 * np.pi * (phase + 0.5)), np.sin(2 * np.pi * phase), np.sin(2 * np.pi * phase), np.sin(2 * np.pi * (phase + 0.5))], -1
    )
    gravity = np.einsum("tji,j->ti", rot, np.array([0.0, 0.0, -1.0]))  # R^T (0, 0, -1)
    obs = np.concatenate([gravity, cmd15 * COMMAND_SCALE, wtw(q) - DEFAULT_WTW, wtw(dq) * 0.05, last, clock], 1)
    zeros = np.zeros((n, 3))
    t265 = np.concatenate([zeros, v_world, zeros, np.stack([roll, pitch, yaw], -1), w_world, zeros], 1)
    # The raw action of log joint j acts on SDK joint WTW_FROM_SDK[j]: in SDK order it is actions[:, WTW_FROM_SDK].
    return {
        "states": np.concatenate([obs, t265], 1),
        "actions": actions,
        "q": q,
        "dq": dq,
        "rot": rot,
        "v_body": np.einsum("tji,tj->ti", rot, v_world),
        "w_body": np.einsum("tji,tj->ti", rot, w_world),
        "commands": commands,
        "phase": phase,
        "action_sdk": actions[:, WTW_FROM_SDK].astype(np.float64),
    }


def write(path: Path, log: dict[str, np.ndarray]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f.create_dataset("states", data=log["states"])
        f.create_dataset("actions", data=log["actions"])
    return path


def test_import_recovers_raw_state_observation_and_rewards(tmp_path: Path) -> None:
    log = synthetic_log()
    data = import_logs([write(tmp_path / "logs" / "a.hdf5", log)], FMT, TASK)
    infos = {k: v.numpy().astype(np.float64) for k, v in data.infos.items()}
    assert len(data) == 80 and bool(data.timeouts[-1]) and not bool(data.terminals.any())
    np.testing.assert_allclose(infos["joint_pos"], log["q"], atol=1e-6)
    np.testing.assert_allclose(infos["joint_vel"], log["dq"], atol=1e-5)
    np.testing.assert_allclose(infos["command"], log["commands"], atol=1e-6)
    np.testing.assert_allclose(infos["gyro"], log["w_body"], atol=1e-5)
    np.testing.assert_allclose(infos["base_lin_vel_estimate"], log["v_body"], atol=1e-5)
    executed = np.clip(log["action_sdk"], -10, 10)  # what the log's policy loop sent (the raw 12 of row 3 was clipped)
    np.testing.assert_allclose(data.actions.numpy(), executed, atol=1e-5)  # same Go1 conventions: a reordering
    # unio4's observation, from the known raw state through the runtime's own function; the clock at the log's phase.
    quat = infos["base_quat"]
    np.testing.assert_allclose(_matrix(quat), log["rot"], atol=1e-6)  # the orientation itself
    last = np.concatenate([np.zeros((1, 12)), np.clip(log["action_sdk"][:-1], -10, 10)])
    time_s = log["phase"] / TASK.observations.clock_frequency
    expected = observation_frame(
        np, TASK.observations, quat, log["w_body"], log["q"], log["dq"], log["commands"], last, ROBOT.default_joint_pos, time_s
    )
    np.testing.assert_allclose(data.observations.numpy(), expected, atol=1e-4)
    np.testing.assert_allclose(data.next_observations.numpy()[:-1], data.observations.numpy()[1:])
    # Rewards: the task's terms from the known state; the two that read foot forces are set aside.
    assert data.metadata["set_aside_terms"] == ["feet_air_time", "gait_contact"]
    targets = ROBOT.default_joint_pos + np.clip(log["action_sdk"], -10, 10) * ROBOT.action_scales
    torque = np.clip(20.0 * (targets - log["q"]) - 0.5 * log["dq"], -ROBOT.torque_limits, ROBOT.torque_limits)
    known = {
        "joint_pos": log["q"], "joint_vel": log["dq"], "joint_torque": torque, "base_quat": quat, "gyro": log["w_body"],
        "foot_force": np.zeros((80, 4)), "command": log["commands"], "action": log["action_sdk"], "time": time_s,
    }  # fmt: skip
    rewards, parts = recompute_rewards(
        known, TASK, 0.02, False, base_motion=(log["v_body"], infos["base_height_estimate"]), set_aside=("feet_air_time", "gait_contact")
    )
    np.testing.assert_allclose(data.rewards.numpy(), rewards, atol=1e-5)
    assert "reward_gait_contact" not in parts and "reward_tracking_lin_vel" in parts
    assert 0.2 < infos["base_height_estimate"].mean() < 0.4  # legs near the default pose: about the standing height


def _matrix(quat: np.ndarray) -> np.ndarray:
    w, x, y, z = quat[:, 0], quat[:, 1], quat[:, 2], quat[:, 3]
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
            np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
            np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
        ],
        -2,
    )


def test_a_fall_ends_the_episode_and_the_rows_on_the_side_are_left_out(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    write(logs / "walk.hdf5", synthetic_log(40, seed=1))
    write(logs / "fall.hdf5", synthetic_log(60, fall_at=50, seed=2))
    data = import_logs([logs], FMT, TASK)
    assert len(data) == 40 + 51  # the fall's first tilted row ends its episode; the 9 after it are dropped
    ends = (data.terminals | data.timeouts).nonzero().flatten().tolist()
    assert ends == [50, 90]  # files in name order: fall.hdf5, then walk.hdf5
    assert bool(data.terminals[50]) and bool(data.timeouts[90])
    termination = data.infos["reward_termination"].numpy()
    assert termination[50] < 0 and (np.delete(termination, 50) == 0).all()  # the penalty, at the fall only
    assert "9 of 100 rows" in data.metadata["notes"][0]


def test_gait_phase_from_a_sine_clock() -> None:
    phase = (0.9 + 3.1 * 0.02 * np.arange(50)) % 1.0
    got = gait_phase(np.sin(2 * np.pi * phase), np.full(50, 3.1), 0.02)
    np.testing.assert_allclose(np.angle(np.exp(2j * np.pi * (got - phase))), 0.0, atol=0.02)


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (lambda s, a: (s[:, :75], a), "states: expected (N, 76) columns, got (30, 75)"),
        (
            lambda s, a: (np.where(np.arange(30)[:, None] == 7, np.where(np.arange(76) == 20, np.nan, s), s), a),
            "row 7: states column 20 is nan",
        ),
        (lambda s, a: (s, a[:, :11]), "actions: expected (N, 12)"),
        (lambda s, a: (s[[0, 2, 1, *range(3, 30)]], a), "row 1: the last-action columns differ from row 0's action"),
    ],
)
def test_a_broken_log_is_a_one_line_error_naming_file_and_row(tmp_path: Path, corrupt, message: str) -> None:  # type: ignore[no-untyped-def]
    log = synthetic_log(30)
    log["states"], log["actions"] = corrupt(log["states"].copy(), log["actions"].copy())
    path = write(tmp_path / "bad.hdf5", log)
    with pytest.raises(LogFormatError) as err:
        import_logs([path], FMT, TASK)
    assert str(err.value).startswith(str(path)) and message in str(err.value) and "\n" not in str(err.value)


def test_cli_imports_a_directory_and_refuses_a_bad_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path / "logs" / "day1" / "a.hdf5", synthetic_log(50))
    out = tmp_path / "real.h5"
    assert main(["data", "import", str(tmp_path / "logs"), "-o", str(out), "--set", "task.rewards.weights.tracking_lin_vel=2.0"]) == 0
    assert "wrote" in capsys.readouterr().out
    data = load_dataset(out)
    assert len(data) == 50 and data.metadata["task_config"]["rewards"]["weights"]["tracking_lin_vel"] == 2.0
    (tmp_path / "logs" / "day1" / "broken.hdf5").write_bytes(b"not hdf5")
    assert main(["data", "import", str(tmp_path / "logs"), "-o", str(tmp_path / "x.h5")]) == 2
    assert "broken.hdf5: not a readable HDF5 file" in capsys.readouterr().err
    assert not (tmp_path / "x.h5").exists()
