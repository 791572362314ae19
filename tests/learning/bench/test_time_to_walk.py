"""The time-to-walk instrument (learning/bench/time_to_walk.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from unio4.learning.bench.time_to_walk import WalkChecker, WalkCriterion
from unio4.sim.config import load_task_config
from unio4.sim.policies import gait_policy

FORWARD = ["commands.lin_vel_x=[0.5,0.5]", "commands.lin_vel_y=[0,0]", "commands.ang_vel_yaw=[0,0]", "randomization.enabled=false"]


def test_walk_checker_checks_when_due_and_keeps_the_first_walk(tmp_path: Path) -> None:
    """Standing fails the criterion, the built-in trot passes it; the result keeps the first walk."""
    task_cfg = load_task_config("go1_flat", FORWARD)
    criterion = WalkCriterion(max_lin_vel_error=0.42, max_yaw_rate_error=1.0, num_envs=4, seconds=4.0)
    checker = WalkChecker(task_cfg, tmp_path, check_every_samples=100, criterion=criterion, num_threads=1)
    stand = lambda obs: torch.zeros(obs.shape[0], 12)  # noqa: E731
    trot = gait_policy(checker.judge)
    assert not checker.after_iteration(50, 1.0, 0.0, stand, last=False)  # not due: no check
    assert not checker.after_iteration(100, 1.0, 0.0, stand, last=False)
    assert checker.after_iteration(200, 1.0, 0.0, trot, last=False)
    assert checker.after_iteration(300, 1.0, 0.0, stand, last=True)  # once walked, the result stays
    result = checker.close()
    rows = [json.loads(line) for line in (tmp_path / "walk.jsonl").read_text().splitlines()]
    assert [r["samples"] for r in rows] == [100, 200, 300]
    assert [r["walks"] for r in rows] == [False, True, False]
    assert rows[0]["lin_vel_error"] > 0.45 and rows[1]["lin_vel_error"] < 0.42
    assert result.walked and result.samples == 200 and result.train_seconds == pytest.approx(3.0)
    assert json.loads((tmp_path / "walk_result.json").read_text())["samples"] == 200
