"""Logged quadruped data from the simulator: run a controller on the Go1 task, keep D4RL transitions.

The controller is any :data:`unio4.sim.policies.Policy` (the built-in trot, a bundle, a network).
``next_observations`` of a finished episode is the observation it ended in (``info['final_obs']``),
not the first of the next episode.
"""

from __future__ import annotations

import torch

from unio4.configs.loader import to_dict
from unio4.learning.data.dataset import Dataset
from unio4.learning.progress import ProgressReporter
from unio4.sim.policies import Policy
from unio4.sim.task import Go1VelocityTask


@torch.no_grad()
def collect(task: Go1VelocityTask, policy: Policy, steps: int, seed: int = 0, source: str = "gait", show_progress: bool = False) -> Dataset:
    """``steps`` policy steps of every env of ``task`` (``steps * num_envs`` transitions, env-major)."""
    obs, info = task.reset(seed=seed)
    critic = info["critic_obs"]
    rows: dict[str, list[torch.Tensor]] = {k: [] for k in ("obs", "critic", "act", "rew", "term", "trunc", "next", "next_critic")}
    with ProgressReporter(f"collect ({source})", steps, enabled=show_progress) as progress:
        for _ in range(steps):
            actions = policy(obs).clamp(-task.cfg.action_clip, task.cfg.action_clip)
            next_obs, reward, terminated, truncated, info = task.step(actions)
            done = terminated | truncated
            final_obs, final_critic = next_obs.clone(), info["critic_obs"].clone()
            if done.any():
                final_obs[done], final_critic[done] = info["final_obs"][done], info["final_critic_obs"][done]
            for key, value in zip(rows, (obs, critic, actions, reward, terminated, truncated, final_obs, final_critic), strict=True):
                rows[key].append(value.clone())
            obs, critic = next_obs, info["critic_obs"]
            progress.advance()
    # Close every episode at the end of the log with a time-out: the data stops, the robot did not fail.
    rows["trunc"][-1] = rows["trunc"][-1] | ~rows["term"][-1]

    def env_major(key: str) -> torch.Tensor:
        stacked = torch.stack(rows[key], 1)  # (num_envs, steps, ...)
        return stacked.reshape(-1, *stacked.shape[2:])

    return Dataset(
        observations=env_major("obs"),
        actions=env_major("act"),
        rewards=env_major("rew"),
        terminals=env_major("term"),
        timeouts=env_major("trunc"),
        next_observations=env_major("next"),
        infos={"critic_observations": env_major("critic"), "next_critic_observations": env_major("next_critic")},
        metadata={
            "robot": task.robot.name,
            "source": f"sim/{source}",
            "policy_dt": task.dt,
            "num_envs": task.num_envs,
            "task_config": to_dict(task.cfg),
        },
    )
