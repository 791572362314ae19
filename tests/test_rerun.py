"""Rerun: ``replay --mode rerun``, ``deploy --rerun-save`` and the streamer that must never block the control loop.

Recordings go to .rrd files (no viewer here) and are read back with rerun's own chunk reader.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import mujoco
import numpy as np
import pytest
import yaml

from unio4.cli import main
from unio4.deploy.rerun_stream import RERUN_MISSING, RerunStreamer
from unio4.deploy.rollout_log import read_log
from unio4.robots.description import load_robot
from unio4.robots.mjcf_geometry import RobotGeometry
from unio4.sim.backends.mujoco_model import ModelIndex, compile_model
from unio4.sim.emulator import spawn
from unio4.sim.rerun_view import MujocoPoser, read_recording

REPO = Path(__file__).resolve().parent.parent
UNIO4 = [sys.executable, "-m", "unio4.cli"]
FAST = ["--local-port", "0", "--command", "0.3,0,0", "--set", "runtime.startup_s=0.5", "--set", "runtime.damping_hold_s=0.2"]


@pytest.fixture(scope="module")
def deploys(walking_bundle: Path, build_once: Callable[[str, Callable[[Path], Path]], Path]) -> dict[str, Path]:
    """Two 1.5 s deploys against one lockstep emulator: without Rerun, then streaming to an .rrd (once for all workers)."""

    def run_both(root: Path) -> Path:
        proc, port = spawn(["--lockstep"])
        try:
            for name, extra in (("plain", []), ("rerun", ["--rerun-save", str(root / "deploy.rrd")])):
                argv = [
                    *UNIO4,
                    "deploy",
                    str(walking_bundle),
                    "--robot",
                    f"127.0.0.1:{port}",
                    "--duration",
                    "1.5",
                    "--out",
                    str(root / name),
                ]
                result = subprocess.run([*argv, *FAST, *extra], capture_output=True, text=True, cwd=REPO, timeout=120)
                assert result.returncode == 0, result.stdout + result.stderr
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=20)
        return root

    root = build_once("rerun-deploys", run_both)
    return {"plain": root / "plain", "rerun": root / "rerun", "rrd": root / "deploy.rrd"}


def test_replay_mode_rerun_writes_what_the_log_holds(deploys: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rrd = tmp_path / "replay.rrd"
    assert main(["replay", str(deploys["plain"]), "--mode", "rerun", "--rerun-save", str(rrd)]) == 0
    assert "75 logged policy steps and 3 events" in capsys.readouterr().out
    log = read_log(deploys["plain"]).arrays
    rec = read_recording(rrd)
    robot = load_robot("go1")
    for j, name in enumerate(robot.joint_short_names):
        for series, key in (("position", "joint_pos"), ("target", "joint_target"), ("torque", "joint_torque")):
            column = rec[f"joints/{name}/{series}"]
            assert np.array_equal(column["step"], np.arange(75))
            np.testing.assert_allclose(column["Scalars:scalars"].astype(np.float64), log[key][:, j], rtol=0, atol=1e-6)
    np.testing.assert_allclose(rec["joints/FR_hip/position"]["time"], log["time"], atol=1e-6)
    np.testing.assert_allclose(rec["velocity/vx/command"]["Scalars:scalars"].astype(float), log["command"][:, 0], atol=1e-6)
    np.testing.assert_allclose(rec["foot_force/RL"]["Scalars:scalars"].astype(float), log["foot_force"][:, 3], atol=1e-4)
    # the calf sits where MuJoCo's forward kinematics of the logged pose puts it
    calf = rec["robot/FR_calf"]["Transform3D:translation"]  # (T, 3)
    geometry = RobotGeometry.of(robot)
    height = rec["robot/trunk"]["Transform3D:translation"][0, 2]
    base = np.array([[0.0, 0.0, height]])
    pos, _ = MujocoPoser(robot, geometry)(base, log["base_quat"][:1].astype(float), log["joint_pos"][:1].astype(float))
    np.testing.assert_allclose(calf[0], pos[0, [b.name for b in geometry.bodies].index("FR_calf")], atol=1e-6)
    texts = list(rec["events"]["TextLog:text"])
    assert [t.split(":")[0] for t in texts] == ["connected", "policy_start", "damping"]


def test_deploy_rerun_save_streams_every_step_without_missing_deadlines(deploys: dict[str, Path]) -> None:
    """The streamed recording holds the run's steps, and the run kept its 50 Hz deadlines as well as without Rerun."""
    plain, streamed = (yaml.safe_load((deploys[k] / "summary.yaml").read_text()) for k in ("plain", "rerun"))
    assert streamed["rerun"]["dropped"] == 0 and streamed["rerun"]["sent"] == 75 and streamed["rerun"]["error"] is None
    missed = plain["timing"]["policy_missed_deadlines"], streamed["timing"]["policy_missed_deadlines"]
    print(f"missed 20 ms deadlines: without rerun {missed[0]}, with {missed[1]}")
    assert missed[1] <= missed[0] + 2, missed
    log = read_log(deploys["rerun"]).arrays
    rec = read_recording(deploys["rrd"])
    np.testing.assert_allclose(rec["joints/RR_calf/position"]["Scalars:scalars"].astype(float), log["joint_pos"][:, 8], atol=1e-6)
    assert "robot/RR_calf" in rec and "velocity/vx/measured" in rec


def test_streamer_drops_frames_rather_than_block_when_the_consumer_stalls() -> None:
    release = threading.Event()
    taken: list[int] = []

    def stalled(batch: list[tuple[str, int, dict[str, object]]]) -> None:
        taken.extend(i for kind, i, _ in batch if kind == "step")
        release.wait()  # a viewer that never answers

    stream = RerunStreamer(stalled, maxsize=20, interval_s=0.01)
    durations = []
    for k in range(1000):
        t0 = time.perf_counter()
        stream.put({"time": k * 0.02, "joint_pos": np.zeros(12)})
        durations.append(time.perf_counter() - t0)
        if k == 5:
            time.sleep(0.05)  # let the consumer take the first frames and stall on them
    stream.event("fault", reason="test")
    durations_ms = np.array(durations) * 1e3
    print(f"put(): median {np.median(durations_ms) * 1e3:.1f} us, max {durations_ms.max():.3f} ms; dropped {stream.stats.dropped}")
    assert durations_ms.max() < 5.0 and np.median(durations_ms) < 0.1
    assert stream.stats.steps == 1000 and stream.stats.dropped >= 1000 - 20 - len(taken) - 1
    assert stream.stats.dropped_events == 1
    release.set()
    stats = stream.close(timeout_s=5.0)
    assert stats.sent + stats.dropped == 1000, stats


def test_numpy_poses_match_mujoco_forward_kinematics() -> None:
    """The robot side poses the legs without MuJoCo: the same numbers as mj_kinematics, geoms included."""
    robot = load_robot("go1")
    geometry = RobotGeometry.of(robot)
    rng = np.random.default_rng(0)
    quat = rng.normal(size=(5, 4))
    quat /= np.linalg.norm(quat, axis=1, keepdims=True)
    args = rng.normal(size=(5, 3)), quat, rng.uniform(-1, 1, (5, 12))
    for ours, theirs in zip(geometry.body_poses(*args), MujocoPoser(robot, geometry)(*args)):
        np.testing.assert_allclose(np.abs(ours), np.abs(theirs), atol=1e-9)  # +-q: the same rotation
    model = compile_model(robot)
    assert len(ModelIndex.of(model, robot).qpos) == 12
    for g in geometry.geoms:
        gid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, g.name)
        np.testing.assert_allclose(g.pos, model.geom_pos[gid], atol=1e-9)
        np.testing.assert_allclose(g.size, model.geom_size[gid][: len(g.size)], atol=1e-9)


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)


def test_without_rerun_sdk_the_flags_fail_in_one_line(tmp_path: Path) -> None:
    rrd = str(tmp_path / "x.rrd")
    for argv in (["deploy", "bundle", "--rerun-save", rrd], ["replay", str(tmp_path), "--mode", "rerun"], ["play", "b", "--rerun"]):
        code = f"import sys\nsys.modules['rerun'] = None\nfrom unio4.cli import main\nsys.exit(main({argv!r}))\n"
        result = _run(code)
        assert result.returncode == 2, result.stderr
        assert result.stderr == f"unio4: error: {RERUN_MISSING}\n"
    assert RERUN_MISSING == "--rerun needs rerun-sdk: pip install 'unio4[rerun]'"


def test_deploy_path_imports_rerun_only_with_the_flag(walking_bundle: Path, tmp_path: Path) -> None:
    """Without --rerun: neither torch nor rerun; with it: rerun, still no torch (and no MuJoCo: the legs are posed in numpy)."""
    for extra, rerun in (([], False), (["--rerun-save", str(tmp_path / "x.rrd")], True)):
        argv = [
            "deploy",
            str(walking_bundle),
            *extra,
            "--robot",
            "127.0.0.1:9",
            "--local-port",
            "0",
            "--set",
            "runtime.connect_timeout_s=0.1",
        ]
        code = (
            f"import sys\nfrom unio4.cli import main\nassert main({argv!r}) == 2\n"
            "mods = {m.split('.')[0] for m in sys.modules}\n"
            f"assert 'torch' not in mods and 'mujoco' not in mods and ('rerun' in mods) is {rerun}, "
            "sorted(mods & {'torch', 'mujoco', 'rerun'})\n"
        )
        result = _run(code)
        assert result.returncode == 0, result.stderr
        assert "no LowState within 0.1 s" in result.stderr
