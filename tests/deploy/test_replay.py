"""``unio4 replay --mode robot`` (deploy/replay.py) on the robot: no torch on its path."""

from __future__ import annotations

from pathlib import Path

from tests.deploy.conftest import assert_torch_free_until_no_robot


def test_robot_replay_path_never_imports_torch(walking_bundle: Path, tmp_path: Path) -> None:
    """``unio4 replay --mode robot`` runs on the robot too: no torch on its path either."""
    log = tmp_path / "log"
    setup = (
        "import numpy as np, yaml\n"
        "from deploy.rollout_log import RolloutLog\n"
        f"manifest = yaml.safe_load(open({str(walking_bundle / 'manifest.yaml')!r}))\n"
        f"log = RolloutLog({str(log)!r}, {{'manifest': manifest}})\n"
        "for _ in range(3): log.append({'joint_target': np.zeros(12, np.float32), 'joint_pos': np.zeros(12, np.float32)})\n"
        "log.close({})\n"
    )
    assert_torch_free_until_no_robot(["replay", str(log), "--mode", "robot"], setup)
