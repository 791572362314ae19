"""The MuJoCo backend's thread pool (sim/backends/mujoco_backend.py): its size when a caller names none."""

from __future__ import annotations

import os

import pytest

from unio4.sim.backends.mujoco_backend import MAX_PHYSICS_THREADS, default_physics_threads


@pytest.mark.parametrize(("omp", "expected"), [("1", 1), ("3", 3), ("64", MAX_PHYSICS_THREADS), ("", None), ("0", None), ("two", None)])
def test_physics_threads_follow_omp_num_threads_else_the_cores_this_process_may_use(
    omp: str, expected: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OMP_NUM_THREADS=1 (runs sharing the cores, the test workers) keeps physics on one thread; unset or not a
    positive count, the pool takes the cores of the process's CPU affinity, at most MAX_PHYSICS_THREADS."""
    monkeypatch.setenv("OMP_NUM_THREADS", omp)
    cores = min(len(os.sched_getaffinity(0)), MAX_PHYSICS_THREADS)
    assert default_physics_threads() == (cores if expected is None else expected)
