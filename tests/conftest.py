"""Shared fixtures. Every test runs on CPU, each process on one thread (torch, OpenMP and MuJoCo physics alike),
so two workers fill two cores and leave the real-time runs (the runtime, the emulator) their share.

``make test`` runs the suite on two pytest-xdist workers. The longest tests start first (:data:`LONGEST_FIRST`)
so that both workers finish together, and the artefacts that several tests share are built once for all
workers (:func:`shared_artifact`). docs/testing.md lists what each slow test costs.

Below the fixtures every folder uses, the helpers that tests in more than one folder share: deploy runs
against the emulator (tests/deploy, tests/sim, tests/learning/data), a briefly trained checkpoint and its
bundle (tests/learning, tests/deploy) and the Rerun deploys (tests/deploy, tests/sim). Test modules
import them from ``tests.conftest``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# One thread in every process a test starts too (CLI commands, emulators): two workers already fill two cores,
# and idle OpenMP threads spinning beside them only take time from the other worker.
os.environ["OMP_NUM_THREADS"] = "1"

from unio4.sim.render import use_offscreen_gl

use_offscreen_gl()  # before mujoco is imported: replay pictures render headless through EGL

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402
from filelock import FileLock  # noqa: E402

from unio4.demo import EMULATOR_SLACK  # noqa: E402
from unio4.deploy.bundle import write_sums  # noqa: E402
from unio4.robots.description import RobotDescription, load_robot  # noqa: E402
from unio4.sim.emulator import spawn  # noqa: E402

torch.set_num_threads(1)

# The tests that take longest, longest first: started first, they never leave one worker alone at the end.
LONGEST_FIRST = (
    "test_a_small_identify_session_closes_part_of_a_motor_gap",
    "test_ppo_fine_tuning_improves_go1_velocity_tracking",
    "test_deployed_policy_stands_up_and_walks_forward",
    "test_same_targets_same_trajectory_in_every_engine",
    "test_generate_medium_and_replay_from_one_sac_run",
    "test_quick_demo_writes_a_report_with_numbers",
    "test_a_session_rolls_back_a_bundle_that_walks_worse_on_the_robot",
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
    assert main(["train", "bc", "--data", str(root / "gait.h5"), "--set", "train.steps=1000", "-o", str(root / "bc.pt")]) == 0
    assert main(["export", str(root / "bc.pt"), "-o", str(root / "bundle")]) == 0
    return root / "bundle"


@pytest.fixture(scope="session")
def walking_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Go1 policy that walks: behaviour cloning of logged trot data, exported to a bundle (~35 s, once per run)."""
    return shared_artifact(tmp_path_factory, "walking", _walking_bundle)


# ---- deploy runs: `unio4 deploy` against `unio4 emulate` (tests/deploy/test_runtime.py, tests/sim/test_emulator.py,
# tests/learning/data/test_pack.py)
REPO = Path(__file__).resolve().parent.parent
UNIO4 = [sys.executable, "-m", "unio4.cli"]
# A shared VM stalls a process for 50-250 ms now and then (the host runs other guests): against the lockstep emulator
# that reads as a robot gone silent. Runs that are not about stale state give the runtime this slack; the stale-state
# tests (tests/deploy/test_safety.py, tests/test_hostile_robot.py) keep the preset's 50 ms.
STALL_SLACK = EMULATOR_SLACK  # safety.stale_ms=500, as the quick demo gives its emulated runs
FAST = ["--local-port", "0", "--set", "runtime.startup_s=1.0", "--set", "runtime.damping_hold_s=0.5", "--set", f"runtime.{STALL_SLACK}"]


@dataclass
class Run:
    returncode: int
    output: str
    trace: dict[str, np.ndarray]
    stdout: str
    emulator_output: str
    log_dir: Path


@contextmanager
def emulator(trace: Path, *args: str) -> Iterator[tuple[int, subprocess.Popen[str]]]:
    proc, port = spawn(["--lockstep", "--out", str(trace), *args])
    try:
        yield port, proc
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)


def deploy(bundle: Path, tmp: Path, emulator_args: tuple[str, ...] = (), deploy_args: tuple[str, ...] = (), duration: float = 3.0) -> Run:
    trace, log_dir = tmp / "trace.npz", tmp / "log"
    with emulator(trace, *emulator_args) as (port, emu):
        result = subprocess.run(
            [
                *UNIO4,
                "deploy",
                str(bundle),
                "--robot",
                f"127.0.0.1:{port}",
                "--duration",
                str(duration),
                "--out",
                str(log_dir),
                *deploy_args,
            ],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=120,
        )
    assert emu.stdout is not None
    with np.load(trace) as data:
        columns = {k: data[k] for k in data.files}
    return Run(result.returncode, result.stdout + result.stderr, columns, result.stdout, emu.stdout.read(), log_dir)


# ---- a briefly trained checkpoint and its bundle (tests/learning/test_export.py, tests/deploy/test_bundle.py)
@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A real (briefly trained) Go1 checkpoint and its bundle."""
    from unio4.configs.loader import from_dict, to_dict
    from unio4.learning.export import export_bundle
    from unio4.learning.online.runner import OnlineConfig, train_online
    from unio4.sim.config import load_task_config
    from unio4.sim.task import Go1VelocityTask

    root = tmp_path_factory.mktemp("export")
    cfg = load_task_config("go1_flat")
    env = Go1VelocityTask(cfg, 4, seed=0)
    online = from_dict(OnlineConfig, {"iterations": 2, "save_interval": 2, "ppo": {"num_steps": 8}})
    result = train_online(env, online, root / "run", extra_state={"task_config": to_dict(cfg)}, show_progress=False)
    env.close()
    return result.checkpoint, export_bundle(result.checkpoint, root / "bundle")


def copy_bundle(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def rewrite_manifest(bundle: Path, edit: Callable[[dict[str, Any]], object], text: str | None = None) -> None:
    """Edit the manifest (or replace its text) and re-sign SHA256SUMS, so the content checks are what refuse it."""
    path = bundle / "manifest.yaml"
    if text is None:
        m = yaml.safe_load(path.read_text())
        edit(m)
        text = yaml.safe_dump(m)
    path.write_text(text)
    write_sums(bundle)


# ---- Rerun: two deploys, without and with --rerun-save (tests/deploy/test_rerun_stream.py, tests/sim/test_rerun_view.py)
RERUN_FAST = [*FAST[:2], "--command", "0.3,0,0", "--set", "runtime.startup_s=0.5", "--set", "runtime.damping_hold_s=0.2", *FAST[-2:]]


@pytest.fixture(scope="module")
def deploys(walking_bundle: Path, build_once: Callable[[str, Callable[[Path], Path]], Path]) -> dict[str, Path]:
    """Two 1.5 s deploys against one lockstep emulator: without Rerun, then streaming to an .rrd (once for all workers)."""

    def run_both(root: Path) -> Path:
        proc, port = spawn(["--lockstep"])
        try:
            for name, extra in (("plain", []), ("rerun", ["--rerun-save", str(root / "deploy.rrd")])):
                argv = [
                    *UNIO4,
                    "deploy",
                    str(walking_bundle),
                    "--robot",
                    f"127.0.0.1:{port}",
                    "--duration",
                    "1.5",
                    "--out",
                    str(root / name),
                ]
                result = subprocess.run([*argv, *RERUN_FAST, *extra], capture_output=True, text=True, cwd=REPO, timeout=120)
                assert result.returncode == 0, result.stdout + result.stderr
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=20)
        return root

    root = build_once("rerun-deploys", run_both)
    return {"plain": root / "plain", "rerun": root / "rerun", "rrd": root / "deploy.rrd"}
