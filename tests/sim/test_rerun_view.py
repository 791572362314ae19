"""Rerun on the workstation (sim/rerun_view.py): ``replay --mode rerun`` writes what the log holds.

Recordings go to .rrd files (no viewer here) and are read back with rerun's own chunk reader.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from unio4.cli import main
from unio4.deploy.rollout_log import read_log
from unio4.robots.description import load_robot
from unio4.robots.mjcf_geometry import RobotGeometry
from unio4.sim.rerun_view import MujocoPoser, read_recording


def test_replay_mode_rerun_writes_what_the_log_holds(deploys: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rrd = tmp_path / "replay.rrd"
    assert main(["replay", str(deploys["plain"]), "--mode", "rerun", "--rerun-save", str(rrd)]) == 0
    assert "75 logged policy steps and 4 events" in capsys.readouterr().out
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
    assert [t.split(":")[0] for t in texts] == ["connected", "policy_start", "stopping", "damping"]
