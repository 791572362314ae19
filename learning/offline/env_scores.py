"""Offline policies scored in an environment (``unio4 train offline --env / --sim-eval``).

A scorer rates candidate actors for selection "online" and for OPE's rank correlation with the
truth (``diagnostics.json``), and evaluates the selected policy (``evaluation.json``): on a
Gymnasium task by episode return, or on the Go1 task the logs were made with by the mean action's
reward per step.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unio4.deploy.rollout_log import write_atomic
from unio4.learning.checkpoint import load_checkpoint
from unio4.learning.offline.pipeline import OfflineResult
from unio4.learning.policy import GaussianActor

if TYPE_CHECKING:
    from unio4.sim.config import TaskConfig

CANDIDATE_SEED = 20_000  # candidates and the reported evaluation see different episodes
EVAL_SEED = 10_000


@dataclass(frozen=True)
class GymScores:
    """A Gymnasium task: candidates by mean return over ``candidate_episodes``, the result over ``episodes``."""

    env_id: str
    candidate_episodes: int
    episodes: int

    def __call__(self, actors: list[GaussianActor]) -> list[float]:
        """Each actor's mean return (an :data:`~unio4.learning.offline.pipeline.OnlineScorer`)."""
        from unio4.learning.evaluate import evaluate_gym

        return [evaluate_gym(a, self.env_id, self.candidate_episodes, seed=CANDIDATE_SEED)["return"] for a in actors]

    def evaluate(self, actor: GaussianActor) -> dict[str, Any]:
        """The selected policy's scores, printed, as ``evaluation.json`` records them."""
        from unio4.learning.evaluate import evaluate_gym

        scores = evaluate_gym(actor, self.env_id, self.episodes, seed=EVAL_SEED)
        print("  evaluation of the selected policy: " + ", ".join(f"{k} {v:.1f}" for k, v in scores.items()))
        return {"env": self.env_id, "episodes": self.episodes, "first_seed": EVAL_SEED, **scores}


@dataclass(frozen=True)
class Go1Scores:
    """The Go1 task of the logs: reward per step of each actor's mean action on ``envs`` robots for ``seconds``."""

    task_cfg: TaskConfig
    envs: int
    seconds: float

    def __call__(self, actors: list[GaussianActor]) -> list[float]:
        """Each actor's reward per step from one seeded reset (an :data:`~unio4.learning.offline.pipeline.OnlineScorer`)."""
        from unio4.learning.evaluate import evaluate_policy
        from unio4.sim.task import Go1VelocityTask

        task = Go1VelocityTask(self.task_cfg, self.envs, seed=EVAL_SEED)
        try:
            steps = int(round(self.seconds / task.dt))
            return [evaluate_policy(a, task, steps, seed=EVAL_SEED)["reward/step"] for a in actors]
        finally:
            task.close()

    def evaluate(self, actor: GaussianActor) -> dict[str, Any]:
        """The selected policy's reward per step, printed, as ``evaluation.json`` records it."""
        record: dict[str, Any] = {"sim_eval": True, "envs": self.envs, "seconds": self.seconds, "reward/step": self([actor])[0]}
        print(f"  evaluation of the selected policy in simulation: reward per step {record['reward/step']:.4f}")
        return record


def go1_scores(task_config: dict[str, Any] | None, data: str, envs: int, seconds: float) -> Go1Scores:
    """Scores in the Go1 task that ``data`` (its recorded ``task_config``) was logged with; refuses logs without one."""
    if task_config is None:
        raise ValueError(f"--sim-eval: {data} records no task_config (Go1 logs from unio4 collect / data pack / data import have one)")
    from unio4.configs.loader import from_dict
    from unio4.sim.config import TaskConfig

    return Go1Scores(from_dict(TaskConfig, task_config, where=f"{data}: task_config"), envs, seconds)


def evaluate_result(scores: GymScores | Go1Scores, result: OfflineResult, run_dir: Path) -> None:
    """Score the selected policy of ``result`` and write ``run_dir/evaluation.json`` (with its member)."""
    from unio4.learning.export import actor_from_checkpoint

    actor = actor_from_checkpoint(load_checkpoint(result.checkpoint), str(result.checkpoint))
    record = scores.evaluate(actor)
    write_atomic(run_dir / "evaluation.json", json.dumps({"member": result.member, **record}, indent=1).encode())
