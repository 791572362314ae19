"""Time to walk over seeds (``unio4 bench walk``): one run per seed, then ``summary.json`` and ``walk.png``.

Each seed is one :class:`~unio4.learning.bench.time_to_walk.WalkRun` in ``root/seed<N>``, trained by unio4's
PPO or rsl_rl's with the same preset (:func:`walk_learner`) and judged by the same criterion.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unio4.configs.loader import to_dict
from unio4.learning.bench.time_to_walk import WalkCriterion, WalkResult, WalkRun, plot_walk_curves, time_to_walk
from unio4.learning.loggers import LoggerSpec
from unio4.learning.online.runner import OnlineConfig
from unio4.sim.config import TaskConfig


def walk_learner(name: str) -> Callable[[WalkRun], WalkResult]:
    """Whose PPO learns: unio4's, or rsl_rl's (``pip install 'unio4[peers]'``; imported only when chosen)."""
    if name == "rsl_rl":
        from unio4.learning.bench.rsl_rl_peer import rsl_rl_time_to_walk

        return rsl_rl_time_to_walk
    return time_to_walk


@dataclass(frozen=True)
class WalkBench:
    """The benchmark's settings, shared by every seed: task, preset, budget, learner and where the runs go."""

    task_cfg: TaskConfig
    train_cfg: OnlineConfig
    root: Path  # one run dir per seed, summary.json and walk.png
    num_envs: int
    max_samples: int
    check_every_samples: int
    learner: str = "unio4"  # whose PPO learns (see walk_learner); recorded in the summary
    stop_when_walking: bool = True
    num_threads: int | None = None
    logger: str = "tensorboard"  # where each run's scalars go besides metrics.jsonl (--logger)
    criterion: WalkCriterion = field(default_factory=WalkCriterion)
    judge_task_cfg: TaskConfig | None = None  # the checks' task; None: the training task

    def run(self, seed: int) -> WalkRun:
        """The run of one seed, in ``root/seed<N>``."""
        logger = LoggerSpec(
            self.logger, {"task": self.task_cfg, "train": self.train_cfg}, f"{self.root.name}_seed{seed}", f"bench walk {self.learner}"
        )
        return WalkRun(
            self.task_cfg, self.train_cfg, self.root / f"seed{seed}", self.num_envs, self.max_samples, self.check_every_samples,
            self.criterion, seed=seed, stop_when_walking=self.stop_when_walking, num_threads=self.num_threads, logger=logger,
            judge_task_cfg=self.judge_task_cfg,
        )  # fmt: skip

    def summary(self, results: dict[int, WalkResult]) -> dict[str, Any]:
        """Every seed's checks, and the median training time to walk when every seed walked (else None)."""
        walked = [r for r in results.values() if r.walked]
        return {
            "learner": self.learner,
            "criterion": self.criterion.__dict__,
            "judge_task": to_dict(self.judge_task_cfg) if self.judge_task_cfg is not None else "the training task",
            "seeds": {
                str(s): {"walked": r.walked, "samples": r.samples, "train_seconds": r.train_seconds, "checks": r.checks}
                for s, r in results.items()
            },
            "median_train_minutes": statistics.median(r.train_seconds / 60 for r in walked) if len(walked) == len(results) else None,
        }

    def write(self, results: dict[int, WalkResult]) -> Path:
        """Write ``root/summary.json`` and the curves of every seed; returns the curves' path."""
        summary = self.summary(results)
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "summary.json").write_text(json.dumps(summary, indent=1))
        return plot_walk_curves(results, self.criterion, self.root / "walk.png")
