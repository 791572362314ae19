"""End to end: `unio4 deploy` drives `unio4 emulate` over the real SDK on loopback, and fails safe.

Every run here is two real processes talking the Go1 UDP protocol: the emulator (MuJoCo, lockstep)
and the runtime (onnxruntime + unitree_legged_sdk). Ground truth comes from the emulator's trace.
"""

from __future__ import annotations

import os
import pty
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.conftest import FAST, REPO, UNIO4, Run, deploy, emulator
from tests.deploy.conftest import assert_torch_free_until_no_robot
from unio4.deploy.bundle import write_sums
from unio4.deploy.observations import rotate_inverse
from unio4.deploy.rollout_log import read_events, read_log
from unio4.learning.data.dataset import load_dataset
from unio4.sim.replay import plot_log, replay_in_sim


def assert_ends_in_damping(run: Run, hold_s: float = 0.5) -> None:
    """The last commands the motors got were damping (Kp 0, Kd 2), held for the hold time."""
    ticks = round(hold_s / 0.002)
    assert np.all(run.trace["kp"][-ticks:] == 0.0), run.output
    assert np.all(run.trace["kd"][-ticks:] == 2.0), run.output


@pytest.mark.parametrize("physics", ["mujoco", "pybullet"])
def test_deployed_policy_stands_up_and_walks_forward(walking_bundle: Path, tmp_path: Path, physics: str) -> None:
    """Trained in MuJoCo (dt 5 ms); walks on the emulator in MuJoCo at 2 ms and in PyBullet."""
    run = deploy(walking_bundle, tmp_path, ("--physics", physics), ("--local-port", "0", "--command", "0.5,0,0"), duration=10.0)
    assert run.returncode == 0, run.output
    assert "500 policy steps; ended by duration" in run.output
    assert "UDP" not in run.stdout and "UDP Initialized" in run.output  # the SDK's banners go to stderr
    rollout = read_log(run.log_dir)
    log, skipped = rollout.arrays, rollout.notes
    assert skipped == [] and len(log["tick"]) == 500
    events = read_events(run.log_dir)
    assert [e["event"] for e in events] == ["connected", "policy_start", "stopping", "damping"]
    assert events[-1]["safety_stop"] is False
    assert yaml.safe_load((run.log_dir / "meta.yaml").read_text())["runtime"]["stop_s"] == 1.0  # how the run ended
    # stood up: base at walking height when the policy took over
    t = run.trace
    rows = log["tick"] - 1  # LowState tick k reports the state after emulator tick k
    assert t["base_pos"][0, 2] < 0.1 and t["base_pos"][rows[0], 2] > 0.2
    # walked forward >= 1 m in 10 s, in the body's heading and as net displacement
    vel_body = rotate_inverse(np, t["base_quat"], t["base_lin_vel_world"])
    policy = slice(rows[0], rows[-1])
    forward = vel_body[policy, 0].sum() * 0.002
    displacement = np.linalg.norm(t["base_pos"][rows[-1], :2] - t["base_pos"][rows[0], :2])
    print(f"{physics}: forward {forward:.2f} m, displacement {displacement:.2f} m")
    assert forward >= 1.0 and displacement >= 1.0, (forward, displacement)
    assert np.all(t["base_pos"][policy, 2] > 0.2)  # never fell
    assert_ends_in_damping(run, hold_s=1.0)
    # the stop phase: the policy servoed 1 s more after the last logged step (at a zero command), then damping
    damped = np.flatnonzero(t["kp"] > 0)[-1] + 1
    # 1 s of ticks after the last step's 10 (+ the state's lag, longer on a stalling machine)
    assert 500 <= damped - rows[-1] <= 500 + 25, (damped, rows[-1])
    speed = np.linalg.norm(t["base_lin_vel_world"][:, :2], axis=1)
    walking, stopped = speed[rows[-1] - 500 : rows[-1]].mean(), speed[damped - 100 : damped].mean()
    print(f"{physics}: {walking:.2f} m/s in the last logged second, {stopped:.2f} in the last 0.2 s before damping")

    # packed log: one episode of 500 steps, rewards from raw state, odometry close to the truth
    out = tmp_path / "real.h5"
    packed = subprocess.run([*UNIO4, "data", "pack", str(run.log_dir), "-o", str(out)], capture_output=True, text=True, cwd=REPO)
    assert packed.returncode == 0, packed.stderr
    data = load_dataset(out)
    assert len(data) == 500 and int(data.timeouts.sum()) == 1 and bool(data.timeouts[-1]) and int(data.terminals.sum()) == 0
    np.testing.assert_array_equal(data.observations.numpy(), log["observation"])
    np.testing.assert_array_equal(data.next_observations[:-1].numpy(), log["observation"][1:])
    estimate = data.infos["base_lin_vel_estimate"].numpy()
    truth = vel_body[rows]
    print(f"{physics}: mean forward velocity {truth[:, 0].mean():.3f} m/s, leg odometry {estimate[:, 0].mean():.3f} m/s")
    assert abs(estimate[:, 0].mean() - truth[:, 0].mean()) < 0.05
    assert np.sqrt(np.mean((estimate[:, :2] - truth[:, :2]) ** 2)) < 0.15
    tracking = data.infos["reward_tracking_lin_vel"].numpy()  # weight x dt x exp(-err^2 / sigma)
    assert 0.3 * 0.02 < tracking.mean() <= 0.02  # well above a standing robot commanded 0.5 m/s (~0.007)
    parts = np.sum([v.numpy() for k, v in data.infos.items() if k.startswith("reward_")], axis=0)
    np.testing.assert_allclose(data.rewards.numpy(), parts, rtol=1e-5, atol=1e-6)

    # replay: the logged targets, open loop in the task's MuJoCo backend, follow the logged joints
    # (measured: 0.027 rad RMS over the first second against the MuJoCo emulator, 0.043 in PyBullet)
    replay = replay_in_sim(run.log_dir, tmp_path / "replay", render=physics == "mujoco")
    assert replay.rms_first_second["all"] < 0.1 and replay.rms_all["all"] < 0.1, replay.rms_all
    assert replay.roll_pitch_rms < 0.05 and replay.plot.is_file()
    if replay.strip is not None:  # log | sim pictures, rendered headless (EGL): 6 rows of two views
        import imageio.v3 as iio

        strip = iio.imread(replay.strip)
        assert strip.shape == (6 * 192, 2 * 256, 3) and strip.std() > 10  # a scene, not a blank frame
        assert replay.animation is not None and iio.imread(replay.animation, index=None).shape[0] == 125  # 0.08 s frames
    assert [p.name for p in plot_log(run.log_dir, tmp_path / "replay")] == ["log_joints.png", "log_body.png"]

    # robot replay: the same targets on a fresh emulator, through the runtime's safety layer at 0.6 x gains
    with emulator(tmp_path / "replay_trace.npz", "--physics", physics) as (port, _):
        args = ["replay", str(run.log_dir), "--mode", "robot", "--robot", f"127.0.0.1:{port}", *FAST, "-o", str(tmp_path / "again")]
        replayed = subprocess.run([*UNIO4, *args], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert "replayed 500 logged targets at 0.60 x gains; ended by replay finished" in replayed.stdout
    with np.load(tmp_path / "replay_trace.npz") as data:
        kp = data["kp"]
    assert set(np.unique(kp[kp > 0]).round(6)) == {round(0.6 * float(np.unique(run.trace["kp"][run.trace["kp"] > 0])[0]), 6)}
    again = read_log(tmp_path / "again" / "robot").arrays
    np.testing.assert_allclose(again["joint_target"], log["joint_target"], atol=1e-6)  # what was asked for, sent again
    rms = float(np.sqrt(np.mean((again["joint_pos"] - log["joint_pos"]) ** 2)))
    print(f"{physics}: robot replay at 0.6 x gains, joint RMS error vs the log {rms:.3f} rad")
    assert rms < 0.35  # measured 0.237 (MuJoCo emulator), 0.240 (PyBullet): open loop, softer than the logged run


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (("--fall-at", "2.0"), "tilt"),
        (("--freeze-at", "2.0"), "stale state: no new LowState"),
        (("--nan-at", "2.0"), "non-finite state: quaternion"),
        (("--stop-combo-at", "2.0"), "remote stop combo L2+B"),
    ],
)
def test_safety_triggers_end_in_damping(walking_bundle: Path, tmp_path: Path, fault: tuple[str, str], reason: str) -> None:
    run = deploy(walking_bundle, tmp_path, emulator_args=fault, deploy_args=(*FAST, "--command", "0.5,0,0"), duration=4.0)
    assert run.returncode == 3, run.output
    assert f"SAFETY STOP: {reason}" in run.output
    stop = read_events(run.log_dir)[-1]
    assert stop["event"] == "damping" and stop["safety_stop"] is True and stop["reason"].startswith(reason)
    summary = yaml.safe_load((run.log_dir / "summary.yaml").read_text())
    assert summary["safety_stop"] is True and 0 < summary["policy_steps"] < 200
    if fault[0] != "--freeze-at":  # a frozen link still hears the damping commands, but the trace is the emulator's
        assert_ends_in_damping(run)


def test_serial_estop_heartbeat_loss_over_a_pty(walking_bundle: Path, tmp_path: Path) -> None:
    master, slave = pty.openpty()
    beating = threading.Event()
    beating.set()

    def heartbeat() -> None:
        start = time.monotonic()
        while beating.is_set() and time.monotonic() - start < 2.5:
            os.write(master, b"H")
            time.sleep(0.05)

    thread = threading.Thread(target=heartbeat, daemon=True)
    thread.start()
    try:
        run = deploy(walking_bundle, tmp_path, deploy_args=(*FAST, "--estop", os.ttyname(slave), "--command", "0.3,0,0"), duration=5.0)
    finally:
        beating.clear()
        thread.join()
        os.close(master)
        os.close(slave)
    assert run.returncode == 3, run.output
    assert "SAFETY STOP: e-stop heartbeat lost" in run.output
    assert_ends_in_damping(run)


def test_corrupt_state_packets_are_dropped_not_obeyed(walking_bundle: Path, tmp_path: Path) -> None:
    """30 % of LowStates with a bad CRC: the SDK drops them, the run goes on (no stale trigger)."""
    run = deploy(walking_bundle, tmp_path, emulator_args=("--bad-crc", "0.3"), deploy_args=(*FAST, "--command", "0.3,0,0"), duration=2.0)
    assert run.returncode == 0, run.output
    assert re.search(r"bad_crc_sent \d{3,}", run.emulator_output), run.emulator_output
    assert_ends_in_damping(run)


def _tampered(bundle: Path, tmp_path: Path, edit: str) -> Path:
    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy)
    if edit == "hash":
        onnx = copy / "policy.onnx"
        raw = bytearray(onnx.read_bytes())
        raw[-1] ^= 1
        onnx.write_bytes(bytes(raw))
    else:
        manifest = yaml.safe_load((copy / "manifest.yaml").read_text())
        manifest["observation"]["size"] = 48
        (copy / "manifest.yaml").write_text(yaml.safe_dump(manifest))
        write_sums(copy)
    return copy


@pytest.mark.parametrize(("edit", "message"), [("hash", "sha256"), ("obs", "observation.size is 48, observation.config gives 47")])
def test_runtime_refuses_bad_bundles(walking_bundle: Path, tmp_path: Path, edit: str, message: str) -> None:
    bundle = _tampered(walking_bundle, tmp_path, edit)
    result = subprocess.run([*UNIO4, "deploy", str(bundle), "--robot", "127.0.0.1:9"], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 2
    assert result.stderr.startswith("unio4: error: ") and message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_deploy_path_never_imports_torch(walking_bundle: Path) -> None:
    """The robot's Jetson has no torch: the whole deploy command path must run without it."""
    assert_torch_free_until_no_robot(["deploy", str(walking_bundle)])


def test_explore_mode_is_seeded_and_logs_log_probs(walking_bundle: Path, tmp_path: Path) -> None:
    logs = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        run = deploy(walking_bundle, tmp_path / name, deploy_args=(*FAST, "--explore", "--seed", "7", "--command", "0.3,0,0"), duration=1.0)
        assert run.returncode == 0, run.output
        logs.append(read_log(run.log_dir).arrays)
    a, b = logs
    noise = (a["action"] - a["action_mean"]) / np.exp(a["action_log_std"])
    # the seed fixes the exploration noise (states, and on a loaded machine the number of steps in the
    # first chunk, may differ by a tick of scheduling between runs)
    n = min(len(a["action"]), len(b["action"]))
    assert n >= 10
    np.testing.assert_allclose(noise[:n], ((b["action"] - b["action_mean"]) / np.exp(b["action_log_std"]))[:n], atol=1e-4)
    assert 0.5 < noise.std() < 1.5 and np.abs(a["action"] - a["action_mean"]).min() > 0  # sampled, not the mean
    expected = -0.5 * (noise**2).sum(1) - a["action_log_std"].sum(1) - 6 * np.log(2 * np.pi)
    np.testing.assert_allclose(a["log_prob"], expected, rtol=1e-4, atol=1e-3)
    assert yaml.safe_load((run.log_dir / "meta.yaml").read_text())["mode"] == "explore"


def _start_deploy(bundle: Path, port: int, log_dir: Path) -> subprocess.Popen[str]:
    args = [*UNIO4, "deploy", str(bundle), "--robot", f"127.0.0.1:{port}", "--duration", "30", "--out", str(log_dir), *FAST]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO)


def _wait_for_chunks(log_dir: Path, count: int, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while len(list(log_dir.glob("chunk_*.npz"))) < count:
        assert time.monotonic() < deadline, "the runtime wrote no log chunks"
        time.sleep(0.05)


def test_sigterm_ends_in_damping(walking_bundle: Path, tmp_path: Path) -> None:
    trace, log_dir = tmp_path / "trace.npz", tmp_path / "log"
    with emulator(trace) as (port, _):
        proc = _start_deploy(walking_bundle, port, log_dir)
        _wait_for_chunks(log_dir, 2)
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, output
    assert "ended by SIGTERM" in output
    stop = read_events(log_dir)[-1]
    assert stop["reason"] == "SIGTERM" and stop["safety_stop"] is False
    with np.load(trace) as t:
        assert_ends_in_damping(Run(0, output, {k: t[k] for k in t.files}, output, "", log_dir))


def test_kill_minus_nine_mid_run_leaves_a_packable_log(walking_bundle: Path, tmp_path: Path) -> None:
    log_dir = tmp_path / "log"
    with emulator(tmp_path / "trace.npz") as (port, _):
        proc = _start_deploy(walking_bundle, port, log_dir)
        _wait_for_chunks(log_dir, 2)
        time.sleep(0.3)
        proc.kill()
        proc.wait()
    rollout = read_log(log_dir)
    log, skipped = rollout.arrays, rollout.notes
    assert skipped == [] and len(log["tick"]) >= 100 and len(log["tick"]) % 50 == 0
    out = tmp_path / "killed.h5"
    packed = subprocess.run([*UNIO4, "data", "pack", str(log_dir), "-o", str(out)], capture_output=True, text=True, cwd=REPO)
    assert packed.returncode == 0, packed.stderr
    assert "no summary.yaml (the run was killed); closed with a time-out" in packed.stdout
    data = load_dataset(out)
    assert len(data) == len(log["tick"]) and bool(data.timeouts[-1])


def test_nan_connect_state_never_moves_a_motor(walking_bundle: Path, tmp_path: Path) -> None:
    """The state the runtime connects on is checked like every other: a NaN IMU from the start means
    no stand-up, no servo command at all, damping, a logged reason and exit code 3."""
    run = deploy(walking_bundle, tmp_path, emulator_args=("--nan-at", "0"), deploy_args=(*FAST, "--command", "0.5,0,0"), duration=2.0)
    assert run.returncode == 3, run.output
    assert "SAFETY STOP: connect state: non-finite state: quaternion" in run.output
    assert len(run.trace["kp"]) > 0 and np.all(run.trace["kp"] == 0.0)  # not one servo command reached the motors
    events = read_events(run.log_dir)
    assert events[-1]["event"] == "damping" and events[-1]["reason"].startswith("connect state: non-finite state")
    assert any(e["event"] == "fault" for e in events)
