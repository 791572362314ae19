"""Evaluating a bundle in simulation (sim/evaluate.py): both engines, and the bundle's trained command range."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from unio4.cli import main
from unio4.deploy.bundle import write_sums
from unio4.sim.config import load_task_config
from unio4.sim.evaluate import trained_range_config


def test_eval_in_both_engines(walking_bundle: Path, tmp_path: Path) -> None:
    """The sim-to-sim gate's numbers: the cloned trot tracks 0.5 m/s in MuJoCo and in PyBullet."""
    import json

    out = tmp_path / "eval.json"
    args = ["eval", str(walking_bundle), "--num-envs", "4", "--seconds", "4", "--set", "task.commands.lin_vel_x=[0.5,0.5]"]
    assert main([*args, "--set", "task.commands.lin_vel_y=[0,0]", "--set", "task.commands.ang_vel_yaw=[0,0]", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert set(rows) == {"mujoco", "pybullet"}
    # standing still would give 0.5; PyBullet is the engine the policy never saw (measured 0.36)
    assert rows["mujoco"]["lin_vel_error"] < 0.35 and rows["pybullet"]["lin_vel_error"] < 0.45, rows
    for backend, r in rows.items():
        assert r["falls_per_robot_minute"] == 0.0, (backend, r)
        assert 10.0 < r["power"] < 1000.0, (backend, r)


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
