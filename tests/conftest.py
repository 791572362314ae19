"""Shared fixtures. Every test runs on CPU; torch uses one thread so two cores serve physics."""

from __future__ import annotations

from pathlib import Path

from unio4.sim.render import use_offscreen_gl

use_offscreen_gl()  # before mujoco is imported: replay pictures render headless through EGL

import pytest  # noqa: E402
import torch  # noqa: E402

from unio4.robots.description import RobotDescription, load_robot  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def go1() -> RobotDescription:
    return load_robot("go1")


@pytest.fixture(scope="session")
def walking_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Go1 policy that walks: behaviour cloning of logged trot data, exported to a bundle (~35 s)."""
    from unio4.cli import main

    root = tmp_path_factory.mktemp("walking")
    assert main(["collect", "--num-envs", "64", "--steps", "400", "-o", str(root / "gait.h5")]) == 0
    assert main(["train", "bc", "--data", str(root / "gait.h5"), "--set", "train.steps=2000", "-o", str(root / "bc.pt")]) == 0
    assert main(["export", str(root / "bc.pt"), "-o", str(root / "bundle")]) == 0
    return root / "bundle"
