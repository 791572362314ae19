"""``unio4 list`` (unio4/commands/listing.py)."""

from __future__ import annotations

import pytest

from unio4.cli import main


def test_list_names_presets_backends_and_robots(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "go1_flat" in out and "ppo_go1" in out and "mujoco, mujoco_warp, pybullet, isaacgym" in out and "robots: go1" in out
    assert "reality presets (emulate --reality NAME" in out and "go1_real" in out and "uni_o4_go1" in out
    assert main(["list", "nonsense"]) == 2
