"""Reward scaling for online PPO: what the learner sees is ``scale * r``, optionally divided by the
running standard deviation of the discounted return.

The running form is the Uni-O4 code's "dynamic" scaling (from the PPO implementation-details
literature): each env keeps its discounted return ``R <- gamma R + r``, every ``R`` updates one running
variance, and the reward is divided by its square root; ``R`` restarts at an episode's end. Scaling
changes what V is fit to, not what the task pays: evaluations score the raw reward.
"""

from __future__ import annotations

from typing import Any, Literal

import torch


class RewardScaler:
    """Scales a vectorised env's rewards step by step (``__call__``); its state goes into checkpoints."""

    def __init__(
        self, num_envs: int, gamma: float, scale: float, normalization: Literal["none", "running"], device: torch.device | str
    ) -> None:
        self.gamma, self.scale, self.running = gamma, scale, normalization == "running"
        self.returns = torch.zeros(num_envs, dtype=torch.float64, device=device)
        self.count, self.mean, self.m2 = 0, 0.0, 0.0

    @property
    def active(self) -> bool:
        """False when the rewards pass through unchanged."""
        return self.running or self.scale != 1.0

    def __call__(self, rewards: torch.Tensor, done: torch.Tensor) -> torch.Tensor:
        """The learner's rewards for one step of every env; ``done`` marks episodes that ended at it."""
        scaled = rewards * self.scale
        if not self.running:
            return scaled
        self.returns = self.gamma * self.returns + scaled.to(torch.float64)
        self._update(self.returns)
        self.returns = torch.where(done.bool(), torch.zeros_like(self.returns), self.returns)
        return scaled / (self.std() + 1e-8)

    def scale_sequence(self, rewards: torch.Tensor, done: torch.Tensor) -> torch.Tensor:
        """One env's logged rewards (N,), in order, as the learner is paid them (``done`` restarts the
        discounted return); the statistics go on from where they are. Unchanged rewards pass through as they are.
        """
        if self.returns.numel() != 1:
            raise ValueError(f"scale_sequence scales one env's rewards; this scaler has {self.returns.numel()} envs")
        if not self.active:
            return rewards
        if not self.running:
            return rewards * self.scale
        return torch.cat([self(rewards[t : t + 1], done[t : t + 1]) for t in range(len(rewards))]).to(rewards.dtype)

    def std(self) -> float:
        """The running standard deviation of the discounted return (1 before there is a spread)."""
        var = self.m2 / self.count if self.count else 0.0
        return var**0.5 if var > 0 else 1.0

    def _update(self, x: torch.Tensor) -> None:
        """Merge a batch into the running moments (Chan et al.'s parallel form of Welford's update)."""
        n, mean = x.numel(), float(x.mean())
        m2 = float((x - mean).square().sum())
        total = self.count + n
        delta = mean - self.mean
        self.mean += delta * n / total
        self.m2 += m2 + delta * delta * self.count * n / total
        self.count = total

    def state_dict(self) -> dict[str, object]:
        """The running moments and each env's discounted return, for a resumed run."""
        return {"returns": self.returns.cpu(), "count": self.count, "mean": self.mean, "m2": self.m2}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state_dict`."""
        self.returns = torch.as_tensor(state["returns"]).to(self.returns.device, torch.float64)
        self.count, self.mean, self.m2 = int(state["count"]), float(state["mean"]), float(state["m2"])
