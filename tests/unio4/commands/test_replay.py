"""``unio4 replay`` (unio4/commands/replay.py) refuses a directory that is not a rollout log."""

from __future__ import annotations

from pathlib import Path

import pytest

from unio4.cli import main


def test_replay_refuses_a_run_that_is_not_a_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["replay", str(tmp_path / "empty"), "--mode", "sim"]) == 2
    assert "no readable rollout chunks" in capsys.readouterr().err
    assert main(["replay", str(tmp_path / "empty"), "--mode", "robot"]) == 2
