"""Gymnasium environments behind the learner's vector-env interface (torch tensors in and out).

Wraps ``gymnasium.vector.SyncVectorEnv`` with next-step autoreset handled here: when an episode
ends, the final observation goes to ``info['final_obs']`` (and ``final_critic_obs``) and the
returned observation is the first of the next episode, as in :class:`unio4.sim.task.Go1VelocityTask`.
"""

from __future__ import annotations

import warnings
from typing import Any

import gymnasium as gym
import numpy as np
import torch


def make_gym_env(env_id: str) -> gym.Env:
    """``gym.make`` without the "v4 is out of date" notice: v4 is chosen on purpose (closest to D4RL)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is out of date.*")
        try:
            return gym.make(env_id)
        except gym.error.Error as exc:  # not registered, or its dependencies missing
            raise ValueError(f"--env {env_id}: {exc}") from None


def check_env_id(env_id: str) -> None:
    """A one-line error, before any work, for a Gymnasium id that is not registered (with gymnasium's "did you mean")."""
    try:
        gym.spec(env_id)
    except gym.error.Error as exc:
        raise ValueError(f"--env {env_id}: {exc}") from None


class GymVectorEnv:
    """``num_envs`` copies of a gymnasium id, seeded ``seed .. seed + num_envs - 1``."""

    def __init__(self, env_id: str, num_envs: int, seed: int = 0) -> None:
        self.envs = [make_gym_env(env_id) for _ in range(num_envs)]
        self.num_envs = num_envs
        self.single_action_space = self.envs[0].action_space
        space = self.envs[0].observation_space
        assert isinstance(space, gym.spaces.Box) and isinstance(self.single_action_space, gym.spaces.Box)
        self.num_obs = int(np.prod(space.shape))
        self.num_critic_obs = self.num_obs
        self.num_actions = int(np.prod(self.single_action_space.shape))
        self.seed = seed
        self.episode_return = np.zeros(num_envs)
        self.episode_length = np.zeros(num_envs, dtype=np.int64)

    def reset(self, seed: int | None = None) -> tuple[torch.Tensor, dict[str, Any]]:
        """Reset every env; returns observations (num_envs, obs) and an info dict with ``critic_obs``."""
        base = self.seed if seed is None else seed
        obs = np.stack([env.reset(seed=base + i)[0] for i, env in enumerate(self.envs)])
        self.episode_return[:] = 0
        self.episode_length[:] = 0
        t = torch.as_tensor(obs, dtype=torch.float32)
        return t, {"critic_obs": t}

    def step(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
        """Step every env; finished envs reset and their last observation goes to ``info['final_obs']``."""
        low, high = self.single_action_space.low, self.single_action_space.high  # type: ignore[attr-defined]
        acts = np.clip(actions.detach().cpu().numpy(), low, high)
        obs, final = [], []
        rewards = np.zeros(self.num_envs, dtype=np.float32)
        terminated = np.zeros(self.num_envs, dtype=bool)
        truncated = np.zeros(self.num_envs, dtype=bool)
        episodes: list[tuple[float, int]] = []
        for i, env in enumerate(self.envs):
            o, r, term, trunc, _ = env.step(acts[i])
            rewards[i], terminated[i], truncated[i] = r, term, trunc
            self.episode_return[i] += r
            self.episode_length[i] += 1
            final.append(o)
            if term or trunc:
                episodes.append((float(self.episode_return[i]), int(self.episode_length[i])))
                self.episode_return[i], self.episode_length[i] = 0.0, 0
                o, _ = env.reset()
            obs.append(o)
        next_obs = torch.as_tensor(np.stack(obs), dtype=torch.float32)
        info: dict[str, Any] = {"critic_obs": next_obs}
        if episodes:
            final_obs = torch.as_tensor(np.stack(final), dtype=torch.float32)
            info["final_obs"] = info["final_critic_obs"] = final_obs
            info["episode"] = {"return": float(np.mean([e[0] for e in episodes])), "length": float(np.mean([e[1] for e in episodes]))}
        return next_obs, torch.as_tensor(rewards), torch.as_tensor(terminated), torch.as_tensor(truncated), info

    def close(self) -> None:
        """Close the Gymnasium envs."""
        for env in self.envs:
            env.close()
