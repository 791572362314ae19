"""Packing robot logs into a dataset (learning/data/pack.py): lost chunks and gaps are named and split episodes."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np

from tests.conftest import FAST, REPO, UNIO4, deploy
from unio4.learning.data.dataset import load_dataset
from unio4.learning.data.pack import recompute_rewards
from unio4.robots.description import load_robot
from unio4.sim.config import load_task_config


def test_pack_and_replay_name_lost_chunks_and_split_episodes(walking_bundle: Path, tmp_path: Path) -> None:
    run = deploy(walking_bundle, tmp_path / "run", deploy_args=(*FAST, "--command", "0.5,0,0"), duration=4.0)
    assert run.returncode == 0, run.output
    assert len(list(run.log_dir.glob("chunk_*.npz"))) == 4
    gappy = tmp_path / "gappy"
    shutil.copytree(run.log_dir, gappy)
    (gappy / "chunk_000001.npz").unlink()
    np.savez(gappy / "chunk_000003.npz", something=np.zeros(5))  # a foreign file where a chunk was
    out = tmp_path / "gappy.h5"
    packed = subprocess.run([*UNIO4, "data", "pack", str(gappy), "-o", str(out)], capture_output=True, text=True, cwd=REPO)
    assert packed.returncode == 0, packed.stderr
    assert "chunk_000001.npz: missing" in packed.stdout and "episode split at a gap" in packed.stdout
    assert "chunk_000003.npz: holds keys ['something']" in packed.stdout
    data = load_dataset(out)
    assert len(data) == 100 and int((data.terminals | data.timeouts).sum()) == 2  # two stretches of 50 steps, never one
    ends = data.episode_ends().tolist()
    assert ends == [49, 99]
    replayed = subprocess.run(
        [*UNIO4, "replay", str(gappy), "--mode", "sim", "-o", str(tmp_path / "r")], capture_output=True, text=True, cwd=REPO
    )
    assert replayed.returncode == 0, replayed.stderr
    assert "chunk_000001.npz: missing; replaying the 50 steps before it" in replayed.stderr
    assert "open-loop replay of 49 logged policy steps" in replayed.stdout  # 50 targets: 49 steps between them

    broken = tmp_path / "broken"
    shutil.copytree(run.log_dir, broken)
    (broken / "meta.yaml").write_text("source: robot\nmanifest: [unclosed\n")
    result = subprocess.run([*UNIO4, "data", "pack", str(broken), "-o", str(tmp_path / "b.h5")], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 2 and "meta.yaml" in result.stderr and "malformed YAML" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "b.h5").exists()


def test_the_rewards_read_a_tracking_camera_where_the_run_logged_one() -> None:
    """A robot standing still at a 0.5 m/s command: leg odometry reads 0, a camera reads 0.5 on the second half of the
    steps (NaN on the first: no fresh reading). The velocity-tracking reward takes the camera where it read; the
    logged estimate stays leg odometry's."""
    robot, n = load_robot("go1"), 20
    log = {
        "joint_pos": np.tile(robot.default_joint_pos, (n, 1)), "joint_vel": np.zeros((n, 12)), "joint_torque": np.zeros((n, 12)),
        "base_quat": np.tile([1.0, 0.0, 0.0, 0.0], (n, 1)), "gyro": np.zeros((n, 3)), "foot_force": np.full((n, 4), 100.0),
        "command": np.tile([0.5, 0.0, 0.0], (n, 1)), "action": np.zeros((n, 12)),
    }  # fmt: skip
    camera = np.where(np.arange(n)[:, None] < n // 2, np.nan, [0.5, 0.0, 0.0])
    task = load_task_config("go1_flat")
    _, odometry = recompute_rewards(log, task, 0.02, False)
    _, tracked = recompute_rewards({**log, "tracker_lin_vel": camera}, task, 0.02, False)
    np.testing.assert_array_equal(tracked["base_lin_vel_estimate"], odometry["base_lin_vel_estimate"])
    np.testing.assert_allclose(tracked["reward_tracking_lin_vel"][: n // 2], odometry["reward_tracking_lin_vel"][: n // 2])
    assert np.all(tracked["reward_tracking_lin_vel"][n // 2 :] > odometry["reward_tracking_lin_vel"][n // 2 :] + 1e-4)
