"""The on-robot check (``learning/robot/robot_check.py``): a candidate bundle walks on the robot before it becomes
current, and one that walks worse than the last verified bundle, beyond the walks' noise, is rolled back."""

from __future__ import annotations

import dataclasses
import json
import math
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from tests.learning.robot.conftest import small_config
from unio4.learning.checkpoint import load_checkpoint, save_checkpoint
from unio4.learning.robot.robot_check import (
    RobotCheckConfig,
    WalkMeasure,
    block_means,
    comparison,
    rescaled,
    standard_error,
    tolerance,
    walks_worse,
    worst_comparison,
)
from unio4.learning.robot.session import Session, SessionConfig, check_walks
from unio4.learning.robot.session_update import Iteration
from unio4.sim.config import load_task_config
from unio4.sim.emulator import spawn, spawn_with_tracker


def walks(error: float, se: float) -> WalkMeasure:
    return WalkMeasure(bundle="b", checkpoint="c", error=error, se=se, walks=2, iteration=1)


def test_the_walks_noise_is_the_spread_of_block_means() -> None:
    x = np.repeat([1.0, 3.0, 1.0, 3.0], 5)  # four 5-step blocks with means 1, 3, 1, 3
    blocks = block_means(np.stack([x, -x], axis=1), 5)  # (T, 2) -> (blocks, 2)
    np.testing.assert_allclose(blocks, [[1, -1], [3, -3], [1, -1], [3, -3]])
    assert block_means(x[:19], 5).shape == (3,)  # the part block at the end is dropped
    assert standard_error(blocks[:, 0]) == pytest.approx(np.std([1, 3, 1, 3], ddof=1) / 2)
    assert standard_error(np.full(4, 2.0)) == 0.0  # a steady walk: no noise
    assert standard_error(np.array([2.0])) == 0.0  # one block: nothing measurable, the floor decides


def test_a_candidate_is_worse_only_beyond_the_walks_noise() -> None:
    cfg = RobotCheckConfig(sigmas=2.0, min_increase=0.02)
    verified = walks(0.10, 0.03)
    assert tolerance(walks(0.0, 0.04), verified, cfg) == pytest.approx(0.02 + 2 * 0.05)
    assert not walks_worse(walks(0.21, 0.04), verified, cfg)  # 0.11 worse, 0.12 allowed
    assert walks_worse(walks(0.23, 0.04), verified, cfg)
    assert walks_worse(walks(math.nan, math.nan), verified, cfg)  # no steady walk: nothing verified it
    with pytest.raises(ValueError, match="sigmas"):
        RobotCheckConfig(sigmas=-1.0)


def test_a_candidate_that_looks_better_only_because_odometry_reads_slow_is_worse() -> None:
    """Commanded 0.5 m/s, odometry reads the verified bundle at 0.40 and the candidate at 0.50: as read, the candidate
    tracks perfectly; if odometry reads 0.8 x the true speed, the verified bundle held 0.50 and the candidate overshoots
    to 0.625. The check compares at every scale of its range, so the candidate is worse."""
    cfg = RobotCheckConfig(sigmas=0.0, min_increase=0.01, odometry_scale=(0.8, 1.0), scale_points=2)
    command = np.array([0.5, 0.0, 0.0])

    def measure(read: float) -> WalkMeasure:
        held = np.array([read, 0.0, 0.0])
        scaled = tuple(float(np.linalg.norm(rescaled(held, s) - command)) for s in cfg.scales())
        return dataclasses.replace(walks(float(np.linalg.norm(held - command)), 0.0), scaled=scaled)

    verified, candidate = measure(0.40), measure(0.50)
    assert candidate.error < verified.error  # as read: better
    assert walks_worse(candidate, verified, cfg)
    assert worst_comparison(candidate, verified, cfg) == pytest.approx((0.8, 0.125, 0.0))
    unscaled = dataclasses.replace(candidate, scaled=())  # a state file from before the scales: compared as read
    assert not walks_worse(unscaled, verified, cfg)
    np.testing.assert_allclose(rescaled(np.array([0.4, -0.2, 0.6]), 0.8), [0.5, -0.25, 0.6])  # the gyro's rate as read
    with pytest.raises(ValueError, match="odometry_scale"):
        RobotCheckConfig(odometry_scale=(1.0, 0.8))


def test_a_tracking_camera_decides_where_it_read_both_bundles() -> None:
    """The case above, with a camera that read the true speeds: the verified bundle held 0.50 (error 0), the candidate
    0.52 (error 0.02, inside the camera's noise and the floor): kept, though odometry's scales would refuse it. A
    candidate the camera did not read is judged by odometry's scales, as before."""
    cfg = RobotCheckConfig(sigmas=2.0, min_increase=0.01, odometry_scale=(0.8, 1.0), scale_points=2)
    verified = dataclasses.replace(walks(0.10, 0.0), scaled=(0.0, 0.10), tracked=0.0, tracked_se=0.004)
    candidate = dataclasses.replace(walks(0.0, 0.0), scaled=(0.125, 0.0), tracked=0.02, tracked_se=0.004)
    assert comparison(candidate, verified, cfg) == pytest.approx(("by the tracking camera", 0.02, 0.0, 0.01 + 2 * math.hypot(0.004, 0.004)))
    assert not walks_worse(candidate, verified, cfg)
    assert walks_worse(dataclasses.replace(candidate, tracked=0.05), verified, cfg)  # 0.05 > 0.021 allowed
    untracked = dataclasses.replace(candidate, tracked=math.nan, tracked_se=math.nan)  # a walk the camera lost
    assert comparison(untracked, verified, cfg)[0] == "with odometry read as 0.80 x the true speed"
    assert walks_worse(untracked, verified, cfg)


@pytest.fixture
def emulator_port() -> Iterator[int]:
    proc, port = spawn(["--lockstep", "--reset-per-run"])
    yield port
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=20)


@pytest.fixture
def tracked_emulator() -> Iterator[tuple[int, int]]:
    """The emulator with its tracking camera: (the Go1's port, the camera's)."""
    proc, port, tracker = spawn_with_tracker(["--lockstep", "--reset-per-run"])
    yield port, tracker
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=20)


def standing_update(it: Iteration) -> None:
    """An update that makes the policy stand: its mean action is the default pose whatever it sees."""
    state: dict[str, Any] = load_checkpoint(it.checkpoint)
    for key in ("mean_head.0.weight", "mean_head.0.bias"):
        state["actor"][key] = torch.zeros_like(state["actor"][key])
    save_checkpoint(it.dir / "checkpoint.pt", state)


def one_walk_checks(port: int, **settings: Any) -> SessionConfig:
    """One PPO-mode iteration against the emulator at ``port``; each check is one walk, forward and turning at once
    (the forward-only and extra walks: test_check_walks_follow_the_mode); a gate that ignores tracking."""
    gate = {"num_envs": 2, "seconds": 2.0, "max_lin_vel_error": 10.0, "max_tracking_increase": 10.0}
    return small_config(port, 1, gate=gate, check={"commands": [], "extra_commands": [[0.5, 0.0, 0.3]]}, **settings)


def test_a_session_rolls_back_a_bundle_that_walks_worse_on_the_robot(
    walking_bundle: Path, tmp_path: Path, tracked_emulator: tuple[int, int], capsys: pytest.CaptureFixture[str]
) -> None:
    """One PPO-mode iteration whose update makes the policy stand still (it does not fall, so a gate that
    ignores tracking lets it through): the start bundle's check walk (0.5 m/s while turning at 0.3 rad/s)
    is the reference, the candidate's final verification walk holds ~0, and the session rolls back to the
    start bundle. The robot carries a tracking camera, so the verdict reads its speeds."""
    port, tracker = tracked_emulator
    cfg = one_walk_checks(port, tracker=f"127.0.0.1:{tracker}")
    session = Session(tmp_path, cfg, load_task_config("go1_flat"))
    session.start(walking_bundle.parent / "bc.pt")
    session.mode.update = standing_update  # type: ignore[method-assign]
    rows = session.run()
    state = json.loads((tmp_path / "state.json").read_text())
    start = tmp_path / "iter_000"
    assert rows[0]["accepted"] and rows[0]["robot_check"] == "start"  # the gate let it through; the robot did not
    assert [c["verdict"] for c in state["checks"]] == ["start", "rolled back"], state["checks"]
    reference, candidate = state["checks"]
    assert candidate["bundle"] == str(tmp_path / "iter_001" / "bundle") and candidate["iteration"] == 2
    assert candidate["read"] == "by the tracking camera" and math.isfinite(reference["tracked"])
    assert candidate["tracked"] > reference["tracked"] + candidate["tolerance"]
    assert candidate["reason"].startswith("speed error on the robot") and len(candidate["scaled"]) == 7  # what the command prints
    assert "by the tracking camera" in candidate["reason"]
    assert state["bundle"] == str(start / "bundle") and state["checkpoint"] == str(start / "checkpoint.pt")
    assert [p.name for p in (tmp_path / "iter_002").iterdir()] == ["check_0"]  # the final walk only
    assert "rolled back to" in capsys.readouterr().out
    assert Session(tmp_path, cfg, load_task_config("go1_flat")).run() == state["rows"]  # nothing left to do
    assert json.loads((tmp_path / "state.json").read_text())["checks"] == state["checks"]


def refused_update(it: Iteration) -> None:
    pytest.fail(f"iteration {it.number}: an update whose bundle the budget could not walk on the robot")


def test_a_session_makes_no_update_the_budget_could_not_walk_on_the_robot(
    walking_bundle: Path, tmp_path: Path, emulator_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    """0.225 robot-minutes (13.5 s): the start bundle's check walk (3 s of policy, about 6 s with the stand-up and
    the stop) fits, and so would the update's rollout, but not that and the candidate's check walk as well: the
    session ends before the rollout, spending no robot time on a bundle that could never become current."""
    session = Session(tmp_path, one_walk_checks(emulator_port, max_robot_minutes=0.225), load_task_config("go1_flat"))
    session.start(walking_bundle.parent / "bc.pt")
    session.mode.update = refused_update  # type: ignore[method-assign]
    assert session.run() == []
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["budget_spent"] and state["phase"] == "done" and state["robot_walks"] == 1
    assert 4.5 < state["robot_seconds"] < 10.5  # the window where a rollout fits but a rollout and a check walk do not
    assert [c["verdict"] for c in state["checks"]] == ["start"] and state["bundle"] == str(tmp_path / "iter_000" / "bundle")
    assert [p.name for p in (tmp_path / "iter_001").iterdir()] == ["check_0"]  # no rollout for an update
    assert "no update: the robot-time budget could not walk its bundle" in capsys.readouterr().out
    assert Session(tmp_path, session.cfg, load_task_config("go1_flat")).run() == []  # a resume has nothing left to do


def test_check_walks_follow_the_mode() -> None:
    """PPO mode walks the session command forward, then sideways, turning and both at once, in ``check_*``; identify mode's
    identification walks are the forward check, the extra walks follow in ``check_*``."""
    ppo, identify = SessionConfig(), dataclasses.replace(SessionConfig(), update="identify")
    commands = {prefix: [p.command for p in plans] for prefix, plans in check_walks(ppo).items()}
    assert commands == {"check": [(0.5, 0.0, 0.0), (0.0, 0.3, 0.0), (0.0, 0.0, 0.6), (0.5, 0.0, 0.4)]}
    assert all(not p.explore for plans in check_walks(ppo).values() for p in plans)  # the mean action
    commands = {prefix: [p.command for p in plans] for prefix, plans in check_walks(identify).items()}
    extra = [(0.0, 0.3, 0.0), (0.0, 0.0, 0.6), (0.5, 0.0, 0.4)]
    assert commands == {"run": [(0.3, 0.0, 0.0), (0.6, 0.0, 0.0), (0.9, 0.0, 0.0)], "check": extra}
    chosen = dataclasses.replace(identify, check=RobotCheckConfig(commands=(0.2,), extra_commands=()))
    assert {k: [p.command for p in v] for k, v in check_walks(chosen).items()} == {"check": [(0.2, 0.0, 0.0)]}
