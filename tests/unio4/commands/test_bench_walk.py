"""``unio4 bench walk``'s table (unio4/commands/bench_walk.py) names the criterion and, for "walk well", the gait bars."""

from __future__ import annotations

import argparse

from rich.console import Console

from unio4.commands.bench_walk import walk_table
from unio4.learning.bench.time_to_walk import WalkCriterion, WalkResult

ARGS = argparse.Namespace(learner="unio4", task="go1_flat", config="ppo_go1", num_envs=256)
CHECK = {"samples": 200_000, "walks": False, "lin_vel_error": 0.2, "yaw_rate_error": 0.1, "falls_per_robot_minute": 0.0}


def render(table: object) -> str:
    """The table as the terminal would show it (wide enough for every column)."""
    console = Console(width=250, record=True)
    console.print(table)
    return console.export_text()


def test_walk_well_table_shows_the_criterion_the_gait_numbers_and_the_failed_bars() -> None:
    gait = {"swing_apex": 0.031, "body_contacts_per_minute": 1.5, "torque_saturation": None}
    checks = [{**CHECK, "gait": gait, "failed": ["lin_vel_error", "swing_apex"]}]
    results = {0: WalkResult(walked=False, samples=200_000, train_seconds=60.0, eval_seconds=1.0, checks=checks)}
    text = render(walk_table(results, ARGS, WalkCriterion.walks_well()))
    assert "time to walk well" in text and "apex m" in text and "0.031" in text and "1.5" in text and "n/a" in text
    assert "lin_vel_error, swing_apex" in text
    plain = render(walk_table({0: WalkResult(False, 200_000, 60.0, 1.0, [CHECK])}, ARGS, WalkCriterion()))
    assert "apex" not in plain and "failed" not in plain and "walk well" not in plain  # the default table as before
