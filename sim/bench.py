"""``unio4 sim bench``: policy steps/s of the task and physics steps/s of the raw backend.

The task runs the built-in trot (a realistic contact regime); the time spent inside
``backend.step`` is the raw physics time, the rest of ``task.step`` is the task layer's cost
(observations, rewards, resets, randomisation). Action computation is excluded from both.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from unio4.sim.config import TaskConfig
from unio4.sim.gait import TrotController
from unio4.sim.task import Go1VelocityTask


@dataclass(frozen=True)
class BenchResult:
    backend: str
    num_envs: int
    steps: int
    policy_steps_per_s: float
    physics_steps_per_s: float
    raw_policy_steps_per_s: float

    @property
    def task_overhead(self) -> float:
        """Extra time of the task layer relative to raw physics (0.3 = 30 %)."""
        return self.raw_policy_steps_per_s / self.policy_steps_per_s - 1.0


def bench_task(
    cfg: TaskConfig, backend: str, num_envs: int, steps: int = 100, warmup: int = 10, seed: int = 0, num_threads: int | None = None
) -> BenchResult:
    task = Go1VelocityTask(cfg, num_envs, backend=backend, seed=seed, num_threads=num_threads)
    gait = TrotController.for_task(task)
    physics_time = 0.0
    inner = task.backend.step

    def timed_step(targets: torch.Tensor):  # type: ignore[no-untyped-def]
        nonlocal physics_time
        t0 = time.perf_counter()
        out = inner(targets)
        physics_time += time.perf_counter() - t0
        return out

    task.backend.step = timed_step  # type: ignore[method-assign, assignment]
    task.reset()
    total = 0.0
    for i in range(warmup + steps):
        actions = gait.act_task(task)
        if i == warmup:
            physics_time, total = 0.0, 0.0
        t0 = time.perf_counter()
        task.step(actions)
        total += time.perf_counter() - t0
    task.close()
    n = num_envs * steps
    return BenchResult(backend, num_envs, steps, n / total, n * task.decimation / physics_time, n / physics_time)
