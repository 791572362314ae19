"""The environments of an online run (``unio4 train online``): a Gymnasium task or the Go1 task.

Each builder returns this rank's training environments, the evaluator the run logs every
``eval_interval`` iterations, and what the checkpoints record about the environments.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from unio4.configs.loader import to_dict
from unio4.learning.online.distributed import DistContext
from unio4.learning.online.runner import OnlineConfig, VectorEnv, rank_device
from unio4.learning.policy import GaussianActor

if TYPE_CHECKING:
    from unio4.sim.config import TaskConfig
    from unio4.sim.task import Go1VelocityTask

EVAL_SEED = 10_000  # evaluations start from the same seeded reset every time, so they compare across iterations

Evaluator = Callable[[GaussianActor], dict[str, float]]


@dataclass
class OnlineEnvs:
    """What an online run steps and scores, and what its checkpoints record about them."""

    env: VectorEnv
    extra_state: dict[str, Any]  # saved in every checkpoint: which task, backend and init the run used
    evaluator: Evaluator | None = None
    eval_task: Go1VelocityTask | None = None  # the evaluator's own robots (Go1 task), released by close()

    def close(self) -> None:
        """Release the evaluation robots, then the training environments."""
        if self.eval_task is not None:
            self.eval_task.close()
        self.env.close()  # type: ignore[attr-defined]


def gym_envs(env_id: str, num_envs: int, seed: int, ctx: DistContext, eval_episodes: int, init: str | None) -> OnlineEnvs:
    """This rank's ``num_envs`` copies of a Gymnasium task; the evaluator averages ``eval_episodes`` episodes."""
    from unio4.learning.evaluate import evaluate_gym
    from unio4.learning.online.gym_env import GymVectorEnv

    env = GymVectorEnv(env_id, num_envs, seed=seed + ctx.rank * num_envs)
    extra = {"env": env_id, "init": init or None}
    return OnlineEnvs(env, extra, evaluator=lambda actor: evaluate_gym(actor, env_id, eval_episodes, seed=EVAL_SEED))


def go1_envs(
    task_cfg: TaskConfig,
    cfg: OnlineConfig,
    ctx: DistContext,
    num_envs: int,
    *,
    backend: str,
    seed: int,
    init: str | None,
    eval_envs: int,
    eval_seconds: float,
) -> OnlineEnvs:
    """This rank's ``num_envs`` Go1 robots on the networks' device; rank 0 evaluates on ``eval_envs`` robots of its own.

    Without ``init`` (from scratch) the task's command curriculum applies; a pretrained policy gets the full ranges.
    """
    from unio4.sim.task import Go1VelocityTask

    device = rank_device(cfg.device, ctx)  # the task lives where the networks do
    env = Go1VelocityTask(task_cfg, num_envs, backend=backend, seed=seed + ctx.rank * num_envs, device=device, training=init is None)
    envs = OnlineEnvs(env, go1_run_state(task_cfg, backend, init))
    if cfg.eval_interval and ctx.is_main:  # the mean action on its own robots: same commands, pushes and dynamics every time
        envs.eval_task = Go1VelocityTask(task_cfg, eval_envs, backend=backend, seed=EVAL_SEED, device=device)
        envs.evaluator = go1_evaluator(envs.eval_task, eval_seconds)
    return envs


def go1_run_state(task_cfg: TaskConfig, backend: str, init: str | None) -> dict[str, Any]:
    """What a Go1 run's checkpoints record about it: the task (so they export to a bundle), backend and init."""
    return {"task_config": to_dict(task_cfg), "backend": backend, "init": init or None}


def go1_evaluator(task: Go1VelocityTask, seconds: float) -> Evaluator:
    """The mean action's scores on ``task`` over ``seconds``, from the same seeded reset every time."""
    from unio4.learning.evaluate import evaluate_policy

    steps = int(round(seconds / task.dt))
    return lambda actor: evaluate_policy(actor, task, steps, seed=EVAL_SEED)
