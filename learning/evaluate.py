"""Deterministic evaluation of a policy on a vectorised task: a fixed protocol, comparable over time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from unio4.learning.online.gym_env import make_gym_env
from unio4.learning.online.runner import VectorEnv
from unio4.learning.policy import GaussianActor
from unio4.learning.scores import normalized_score, reference_returns


@torch.no_grad()
def evaluate_policy(actor: GaussianActor, env: VectorEnv, steps: int, seed: int = 0) -> dict[str, float]:
    """Mean per-step reward and reward terms of the mean action over ``steps`` from a seeded reset."""
    obs, _ = env.reset(seed=seed)
    totals: dict[str, float] = {"reward/step": 0.0, "terminations": 0.0}
    for _ in range(steps):
        mean, _ = actor(obs)
        obs, reward, terminated, _, info = env.step(mean)
        totals["reward/step"] += float(reward.mean())
        totals["terminations"] += float(terminated.float().sum())
        terms: dict[str, Any] = info.get("reward_terms", {})
        for name, value in terms.items():
            key = f"reward/{name}"
            totals[key] = totals.get(key, 0.0) + float(value.mean())
    return {k: (v if k == "terminations" else v / steps) for k, v in totals.items()}


@torch.no_grad()
def episode_returns(act: Callable[[torch.Tensor], torch.Tensor], env_id: str, episodes: int, seed: int) -> list[float]:
    """Returns of ``episodes`` Gymnasium episodes seeded ``seed, seed + 1, ...``; ``act`` maps one observation
    to one action, which is clipped to the action box.
    """
    env = make_gym_env(env_id)
    low, high = env.action_space.low, env.action_space.high  # type: ignore[attr-defined]
    returns = []
    for k in range(episodes):
        obs, _ = env.reset(seed=seed + k)
        total, done = 0.0, False
        while not done:
            action = act(torch.as_tensor(obs, dtype=torch.float32))
            obs, reward, terminated, truncated, _ = env.step(action.numpy().clip(low, high))
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    env.close()
    return returns


def evaluate_gym(actor: GaussianActor, env_id: str, episodes: int, seed: int = 0) -> dict[str, float]:
    """Mean return of the mean action over ``episodes`` seeded Gymnasium episodes (+ D4RL score if known)."""
    device = next(actor.parameters()).device
    returns = episode_returns(lambda obs: actor(obs.to(device))[0].cpu(), env_id, episodes, seed)
    result = {"return": sum(returns) / len(returns)}
    if reference_returns(env_id) is not None:
        result["d4rl_score"] = normalized_score(env_id, result["return"])
    return result
