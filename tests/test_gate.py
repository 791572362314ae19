"""The sim-to-sim gate of on-robot sessions, and evaluation over a bundle's trained command range."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from unio4.cli import main
from unio4.deploy.bundle import write_sums
from unio4.learning.robot.session import GateConfig, gate_refusals
from unio4.sim.config import load_task_config
from unio4.sim.evaluate import trained_range_config


def metrics(error: float, falls: float) -> dict[str, float]:
    return {"lin_vel_error": error, "falls_per_robot_minute": falls}


def test_gate_refuses_a_falling_bundle_even_when_the_current_one_falls_more() -> None:
    g = GateConfig(max_falls_per_minute=0.0, max_lin_vel_error=0.3)
    current = first = metrics(0.4, 27.0)
    reasons = gate_refusals(g, metrics(0.2, 18.0), current, first)
    assert reasons == ["falls 18.00 per robot-minute > 0"]
    assert gate_refusals(g, metrics(0.2, 0.0), current, first) == []  # better on both counts and within the floors


def test_gate_floors_and_no_worse_rules_each_say_why() -> None:
    g = GateConfig(max_falls_per_minute=0.5, max_lin_vel_error=0.3, max_tracking_increase=0.05, max_falls_increase=0.0)
    current, first = metrics(0.10, 0.0), metrics(0.12, 0.0)
    assert gate_refusals(g, metrics(0.14, 0.0), current, first) == []
    reasons = gate_refusals(g, metrics(0.16, 0.2), current, first)
    assert "lin-vel error 0.160 m/s vs the current bundle's 0.100 (more than 0.05 worse)" in reasons
    assert "falls 0.20 per robot-minute above the first bundle's 0.00" in reasons
    assert gate_refusals(g, metrics(0.35, 0.0), metrics(0.34, 0.0), metrics(0.34, 0.0)) == ["lin-vel error 0.350 m/s > 0.3"]


def test_identify_mode_gate_refuses_slower_walks_on_the_identified_robot() -> None:
    """The speed error of the identification walks, simulated on the identified robot: a new bundle
    that tracks the whole range as well but walks them worse than the current (or first) one by more
    than the allowance is refused; within it, it passes; PPO-mode metrics (no walks) are not judged."""
    g = GateConfig()
    current, first = {**metrics(0.10, 0.0), "walk_speed_error": 0.035}, {**metrics(0.19, 0.0), "walk_speed_error": 0.138}
    worse = gate_refusals(g, {**metrics(0.10, 0.0), "walk_speed_error": 0.105}, current, first)
    assert worse == ["speed error on the identified robot's walks 0.105 m/s vs the current bundle's 0.035 (more than 0.02 worse)"]
    assert gate_refusals(g, {**metrics(0.10, 0.0), "walk_speed_error": 0.05}, current, first) == []
    assert gate_refusals(g, metrics(0.10, 0.0), current, first) == []


def test_eval_defaults_to_the_bundles_trained_range(walking_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bundle = tmp_path / "forward"
    shutil.copytree(walking_bundle, bundle)
    manifest = yaml.safe_load((bundle / "manifest.yaml").read_text())
    manifest["commands"].update(lin_vel_x=[0.4, 1.0], lin_vel_y=[0.0, 0.0], ang_vel_yaw=[0.0, 0.0])
    (bundle / "manifest.yaml").write_text(yaml.safe_dump(manifest))
    write_sums(bundle)
    cfg = trained_range_config(load_task_config("go1_flat"), bundle)
    assert (cfg.commands.lin_vel_x, cfg.commands.lin_vel_y, cfg.commands.ang_vel_yaw) == ((0.4, 1.0), (0.0, 0.0), (0.0, 0.0))
    argv = ["eval", str(bundle), "--backend", "mujoco", "--num-envs", "2", "--seconds", "1"]
    assert main(argv) == 0
    assert "vx [0.4, 1.0], vy [0.0, 0.0], yaw [0.0, 0.0] (trained ranges)" in capsys.readouterr().out.replace("\n", " ")
    assert main([*argv, "--full-range"]) == 0
    assert "vx [-1.0, 1.0], vy [-0.6, 0.6], yaw [-1.0, 1.0] (task ranges)" in capsys.readouterr().out.replace("\n", " ")
