"""Shared fixtures. Every test runs on CPU; torch uses one thread so two cores serve physics.

``make test`` runs the suite on two pytest-xdist workers. The longest tests start first (:data:`LONGEST_FIRST`)
so that both workers finish together, and the artefacts that several tests share are built once for all
workers (:func:`shared_artifact`). docs/testing.md lists what each slow test costs.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

# One thread in every process a test starts too (CLI commands, emulators): two workers already fill two cores,
# and idle OpenMP threads spinning beside them only take time from the other worker.
os.environ["OMP_NUM_THREADS"] = "1"

from unio4.sim.render import use_offscreen_gl

use_offscreen_gl()  # before mujoco is imported: replay pictures render headless through EGL

import pytest  # noqa: E402
import torch  # noqa: E402
from filelock import FileLock  # noqa: E402

from unio4.robots.description import RobotDescription, load_robot  # noqa: E402

torch.set_num_threads(1)

# The tests that take longest, longest first: started first, they never leave one worker alone at the end.
LONGEST_FIRST = (
    "test_ppo_from_scratch_beats_standing_on_a_reduced_go1_task",
    "test_a_small_identify_session_closes_part_of_a_motor_gap",
    "test_ppo_fine_tuning_improves_go1_velocity_tracking",
    "test_deployed_policy_stands_up_and_walks_forward",
    "test_same_targets_same_trajectory_in_every_engine",
    "test_generate_medium_and_replay_from_one_sac_run",
    "test_quick_demo_writes_a_report_with_numbers",
    "test_identify_mode_fits_the_robot_then_fine_tunes_in_simulation",
    "test_reset_per_run_starts_every_evaluation_from_the_same_state",
    "test_kill_during_deploy_then_resume",
    "test_warp_heightfield_terrain_agrees_with_mujoco",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Longest tests first, the rest in file order (the same order on every worker, as xdist requires)."""
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(getattr(item, "originalname", item.name), len(rank)))


def shared_artifact(factory: pytest.TempPathFactory, name: str, build: Callable[[Path], Path]) -> Path:
    """``build(root)`` once per test run, whichever worker asks first; the others wait and reuse its result."""
    base = factory.getbasetemp()
    if base.name.startswith("popen-gw"):  # an xdist worker: its siblings share the parent folder
        base = base.parent
    root = base / f"shared-{name}"
    with FileLock(str(root) + ".lock"):
        done = root / ".done"
        if not done.is_file():
            root.mkdir(exist_ok=True)
            result = build(root)
            done.write_text(str(result.relative_to(root)))
        return root / done.read_text()


@pytest.fixture(scope="session")
def build_once(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, Callable[[Path], Path]], Path]:
    """``build_once(name, build)``: a test module's expensive artefact built once for all workers."""
    return lambda name, build: shared_artifact(tmp_path_factory, name, build)


@pytest.fixture(scope="session")
def go1() -> RobotDescription:
    return load_robot("go1")


def _walking_bundle(root: Path) -> Path:
    from unio4.cli import main

    assert main(["collect", "--num-envs", "64", "--steps", "400", "-o", str(root / "gait.h5")]) == 0
    assert main(["train", "bc", "--data", str(root / "gait.h5"), "--set", "train.steps=2000", "-o", str(root / "bc.pt")]) == 0
    assert main(["export", str(root / "bc.pt"), "-o", str(root / "bundle")]) == 0
    return root / "bundle"


@pytest.fixture(scope="session")
def walking_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Go1 policy that walks: behaviour cloning of logged trot data, exported to a bundle (~35 s, once per run)."""
    return shared_artifact(tmp_path_factory, "walking", _walking_bundle)
