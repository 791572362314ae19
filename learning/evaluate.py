"""Deterministic evaluation of a policy on a vectorised task: a fixed protocol, comparable over time."""

from __future__ import annotations

from typing import Any

import torch

from learning.online import VectorEnv
from learning.policy import GaussianActor


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
