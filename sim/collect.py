"""Logged quadruped data from the simulator: run a controller on the Go1 task, keep D4RL transitions.

The controller is any callable from the current observation to actions; the built-in trot reads
the task state itself (:func:`gait_policy`). ``next_observations`` of a finished episode is the
observation it ended in (``info['final_obs']``), not the first of the next episode.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from rich.progress import Progress

from configs.loader import to_dict
from learning.dataset import Dataset
from sim.gait import TrotController
from sim.task import Go1VelocityTask

Policy = Callable[[torch.Tensor], torch.Tensor]


def gait_policy(task: Go1VelocityTask, controller: TrotController | None = None) -> Policy:
    """The built-in trot as a policy of ``task`` (it reads the task's state, not the observation)."""
    trot = controller or TrotController.for_task(task)
    return lambda _obs: trot.act_task(task)


def bundle_policy(path: str | Path, task: Go1VelocityTask, explore: bool = False, seed: int = 0) -> Policy:
    """An exported policy bundle (ONNX, onnxruntime) acting in ``task``: the mean action, or sampled with ``explore``.

    The bundle must describe this task's observation and action: a mismatch is a one-line error
    naming the bundle and the field, since it would silently give a different policy.
    """
    from deploy.bundle import load_bundle

    bundle = load_bundle(path, robot=task.robot.name)
    where = f"{path}/manifest.yaml"
    if bundle.obs_size != task.num_obs:
        raise ValueError(f"{where}: observation.size is {bundle.obs_size}, the task's observation has {task.num_obs} values")
    action = bundle.manifest["action"]
    if float(action["clip"]) != task.cfg.action_clip:
        raise ValueError(f"{where}: action.clip is {action['clip']}, the task clips actions at {task.cfg.action_clip}")
    if not np.allclose(action["scales"], task.robot.action_scales):
        raise ValueError(f"{where}: action.scales {action['scales']} differ from the robot description's")
    rng = np.random.default_rng(seed)

    def act(obs: torch.Tensor) -> torch.Tensor:
        mean, log_std = bundle.infer_batch(obs.cpu().numpy())
        if explore:
            mean = mean + np.exp(log_std) * rng.standard_normal(mean.shape).astype(np.float32)
        return torch.from_numpy(mean)

    return act


@torch.no_grad()
def collect(task: Go1VelocityTask, policy: Policy, steps: int, seed: int = 0, source: str = "gait", show_progress: bool = False) -> Dataset:
    """``steps`` policy steps of every env of ``task`` (``steps * num_envs`` transitions, env-major)."""
    obs, info = task.reset(seed=seed)
    critic = info["critic_obs"]
    rows: dict[str, list[torch.Tensor]] = {k: [] for k in ("obs", "critic", "act", "rew", "term", "trunc", "next", "next_critic")}
    with Progress(disable=not show_progress) as progress:
        bar = progress.add_task(f"collect ({source})", total=steps)
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
            progress.advance(bar)
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
