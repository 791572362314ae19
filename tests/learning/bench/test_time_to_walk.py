"""The time-to-walk instrument (learning/bench/time_to_walk.py)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch

from unio4.learning.bench.time_to_walk import WalkChecker, WalkCriterion, failed_bars
from unio4.sim.config import load_task_config
from unio4.sim.gait_metrics import GaitMetrics
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


# ---- "walks well": the criterion with gait bounds ------------------------------------------------------
TRACKS_WELL = {"lin_vel_error": 0.08, "yaw_rate_error": 0.12, "falls_per_robot_minute": 0.0, "power": 120.0}


CLEAN_TROT = GaitMetrics(
    base_height=0.30, base_height_std=0.01, swing_apex=0.06, foot_slip=0.05, body_contacts_per_minute=0.0,
    joint_deviation=0.2, action_rate=0.3, torque_saturation=0.0, power=110.0, cost_of_transport=1.2,
    duty_factor=0.6, step_frequency=3.0, contact_links=13,
)  # fmt: skip


def gait(**changes: Any) -> GaitMetrics:
    """Gait metrics of a clean trot (every "walks well" bar met), with ``changes``."""
    return replace(CLEAN_TROT, **changes)


def test_walks_well_refuses_a_knee_drag_low_feet_and_saturated_torque_and_accepts_a_clean_walk() -> None:
    """Tracking alone is not enough: each gait bar refuses the walk that breaks it, and names it."""
    well = WalkCriterion.walks_well()
    assert well.checks_gait and well.name == "walk well" and not WalkCriterion().checks_gait
    assert failed_bars(well, TRACKS_WELL, gait()) == [] and well.walks(TRACKS_WELL, gait())
    assert failed_bars(well, TRACKS_WELL, gait(body_contacts_per_minute=2.0)) == ["body_contacts_per_minute"]  # a knee
    assert failed_bars(well, TRACKS_WELL, gait(swing_apex=0.02)) == ["swing_apex"]  # shuffling feet
    assert failed_bars(well, TRACKS_WELL, gait(torque_saturation=0.05)) == ["torque_saturation"]  # on the limits
    assert failed_bars(well, TRACKS_WELL, gait(swing_apex=float("nan"))) == ["swing_apex"]  # no complete swing: not passed
    sloppy = {**TRACKS_WELL, "lin_vel_error": 0.2, "yaw_rate_error": 0.2}  # walks, not well
    assert WalkCriterion().walks(sloppy) and failed_bars(well, sloppy, gait()) == ["lin_vel_error", "yaw_rate_error"]
    assert WalkCriterion().walks(TRACKS_WELL, gait(body_contacts_per_minute=9.0))  # no gait bounds: gait not judged
    with pytest.raises(ValueError, match="gait metrics"):
        failed_bars(well, TRACKS_WELL, None)


def test_walk_checker_with_gait_bounds_writes_the_gait_numbers_and_failed_bars(tmp_path: Path) -> None:
    """With gait bounds the check records the trot's gait: walk.jsonl rows carry it and the bars it failed."""
    task_cfg = load_task_config("go1_flat", FORWARD)
    criterion = WalkCriterion.walks_well(num_envs=2, seconds=2.0)
    checker = WalkChecker(task_cfg, tmp_path, check_every_samples=100, criterion=criterion, num_threads=1)
    walked = checker.after_iteration(100, 1.0, 0.0, gait_policy(checker.judge), last=True)
    checker.close()
    (row,) = [json.loads(line) for line in (tmp_path / "walk.jsonl").read_text().splitlines()]
    assert row["gait"]["contact_links"] == 13  # the judge watches hips and calves too
    assert row["gait"]["swing_apex"] > 0.0 and row["gait"]["step_frequency"] > 1.0  # the trot steps
    assert {"body_contacts_per_minute", "torque_saturation"} <= row["gait"].keys()
    assert row["walks"] == walked == (row["failed"] == []) and "lin_vel_error" in row["failed"]  # the trot: ~0.3 m/s off
    assert json.loads((tmp_path / "walk_result.json").read_text())["criterion"]["name"] == "walk well"


def test_a_run_is_judged_on_its_judge_task_and_trains_on_its_own(tmp_path: Path) -> None:
    """``judge_task_cfg`` sets what the checks run on (here: no pushes), the training robots keep the training
    task (pushes every 4 s); without it the checks run on the training task; the summary names the judge."""
    from unio4.configs.loader import load, resolve_config_path
    from unio4.learning.bench.time_to_walk import WalkResult, WalkRun
    from unio4.learning.bench.walk_bench import WalkBench
    from unio4.learning.online.runner import OnlineConfig

    train_cfg, judge_cfg = load_task_config("go1_walk_well"), load_task_config("go1_flat", FORWARD)
    preset = load(OnlineConfig, resolve_config_path("ppo_go1", "train"), [])
    criterion = WalkCriterion(num_envs=2, seconds=1.0)
    for judge, expected in ((judge_cfg, judge_cfg), (None, train_cfg)):
        task, checker = WalkRun(train_cfg, preset, tmp_path, 2, 64, 32, criterion, num_threads=1, judge_task_cfg=judge).robots_and_checker()
        assert task.cfg is train_cfg and checker.judge.cfg is expected
        task.close()
        checker.close()
    assert train_cfg.randomization.push_interval_s == 4.0 and not judge_cfg.randomization.enabled
    bench = WalkBench(train_cfg, preset, tmp_path, 2, 64, 32, judge_task_cfg=judge_cfg)
    assert bench.run(0).judge_task_cfg is judge_cfg
    results = {0: WalkResult(walked=False, samples=64, train_seconds=1.0, eval_seconds=1.0)}
    assert bench.summary(results)["judge_task"]["randomization"]["enabled"] is False
    assert WalkBench(train_cfg, preset, tmp_path, 2, 64, 32).summary(results)["judge_task"] == "the training task"


def test_a_walk_runs_checkpoints_export_to_a_bundle(tmp_path: Path) -> None:
    """A ``bench walk`` run's checkpoints carry its task, so the policy it found can be exported and deployed."""
    from unio4.configs.loader import load, resolve_config_path
    from unio4.learning.bench.time_to_walk import WalkRun, time_to_walk
    from unio4.learning.export import export_bundle
    from unio4.learning.online.runner import OnlineConfig

    task_cfg = load_task_config("go1_flat", FORWARD)
    preset = load(OnlineConfig, resolve_config_path("ppo_go1", "train"), [])
    preset = replace(preset, ppo=replace(preset.ppo, num_steps=8))
    criterion = WalkCriterion(num_envs=2, seconds=0.5)
    time_to_walk(WalkRun(task_cfg, preset, tmp_path / "run", 4, 32, 32, criterion, show_progress=False, num_threads=1))
    bundle = export_bundle(tmp_path / "run" / "checkpoints" / "final.pt", tmp_path / "bundle")
    assert (bundle / "policy.onnx").is_file()
    assert "lin_vel_x" in (bundle / "manifest.yaml").read_text()  # the task's commands, from the checkpoint
