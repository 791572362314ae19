"""Soft actor-critic: the behaviour-policy trainer used to regenerate D4RL-style datasets.

D4RL's MuJoCo datasets were logged from SAC agents at chosen points of their training; this is a
compact SAC (Haarnoja et al. 2018, with automatic entropy tuning, twin Q, Polyak targets) so the
same kind of data can be made here. It is a data-generation tool, not part of Uni-O4 itself.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from unio4.configs.loader import bounded, check_fields
from unio4.learning.policy import mlp


@dataclass(frozen=True)
class SACConfig:
    """Soft actor-critic hyperparameters (the behaviour-policy trainer of ``unio4 data generate``)."""

    hidden: tuple[int, ...] = bounded((256, 256), ge=1)
    lr: float = bounded(3e-4, gt=0, le=1)
    batch_size: int = bounded(256, ge=1)
    gamma: float = bounded(0.99, gt=0, le=1)
    tau: float = bounded(0.005, gt=0, le=1)
    start_steps: int = bounded(5000, ge=0)  # uniform random actions before the policy acts
    buffer_size: int = bounded(1_000_000, ge=1)

    def __post_init__(self) -> None:
        check_fields(self)  # the declared ranges, for a config built in Python as for one loaded from YAML
        if self.buffer_size < self.batch_size:  # across fields: a batch fits in the buffer
            raise ValueError(f"buffer_size ({self.buffer_size}) must be >= batch_size ({self.batch_size})")


class TanhGaussianActor(nn.Module):
    """a = tanh(u) * scale + offset, u ~ N(mu(s), sigma(s)); log-prob with the tanh correction."""

    scale: torch.Tensor
    offset: torch.Tensor

    def __init__(self, obs_dim: int, act_dim: int, low: np.ndarray, high: np.ndarray, hidden: tuple[int, ...]) -> None:
        super().__init__()
        self.net = mlp([obs_dim, *hidden, 2 * act_dim], "relu", out_gain=0.01)
        self.register_buffer("scale", torch.as_tensor((high - low) / 2, dtype=torch.float32))
        self.register_buffer("offset", torch.as_tensor((high + low) / 2, dtype=torch.float32))

    def forward(self, obs: torch.Tensor, deterministic: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """A sampled (or the mean) action and its log-probability."""
        mean, log_std = self.net(obs).chunk(2, -1)
        std = log_std.clamp(-20, 2).exp()
        u = mean if deterministic else mean + std * torch.randn_like(mean)
        log_prob = (-0.5 * ((u - mean) / std).square() - std.log() - 0.5 * math.log(2 * math.pi)).sum(-1)
        a = torch.tanh(u)
        log_prob = log_prob - (torch.log(self.scale * (1 - a.square()) + 1e-6)).sum(-1)
        return a * self.scale + self.offset, log_prob


class ReplayBuffer:
    """Flat transition storage; ``truncated`` rows end an episode but still bootstrap."""

    def __init__(self, capacity: int, obs_dim: int, act_dim: int) -> None:
        self.obs = np.zeros((capacity, obs_dim), np.float32)
        self.next_obs = np.zeros((capacity, obs_dim), np.float32)
        self.actions = np.zeros((capacity, act_dim), np.float32)
        self.rewards = np.zeros(capacity, np.float32)
        self.terminated = np.zeros(capacity, bool)
        self.truncated = np.zeros(capacity, bool)
        self.size, self.capacity = 0, capacity

    def add(self, obs: np.ndarray, action: np.ndarray, reward: float, next_obs: np.ndarray, terminated: bool, truncated: bool) -> None:
        """Store one transition (overwriting the oldest once full)."""
        i = self.size % self.capacity
        self.obs[i], self.actions[i], self.rewards[i], self.next_obs[i] = obs, action, reward, next_obs
        self.terminated[i], self.truncated[i] = terminated, truncated
        self.size += 1

    def sample(self, batch: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        """A uniform minibatch of ``batch`` transitions as tensors."""
        idx = rng.integers(0, min(self.size, self.capacity), batch)
        return {
            "obs": torch.from_numpy(self.obs[idx]),
            "actions": torch.from_numpy(self.actions[idx]),
            "rewards": torch.from_numpy(self.rewards[idx]),
            "next_obs": torch.from_numpy(self.next_obs[idx]),
            "not_done": torch.from_numpy(~self.terminated[idx]).float(),
        }


class SAC:
    """Twin-Q SAC with a learned temperature (target entropy = -action dim)."""

    def __init__(self, obs_dim: int, act_dim: int, low: np.ndarray, high: np.ndarray, cfg: SACConfig) -> None:
        self.cfg = cfg
        self.actor = TanhGaussianActor(obs_dim, act_dim, low, high, cfg.hidden)
        self.q = nn.ModuleList([mlp([obs_dim + act_dim, *cfg.hidden, 1], "relu", out_gain=1.0) for _ in range(2)])
        self.q_target = copy.deepcopy(self.q).requires_grad_(False)
        self.log_alpha = torch.zeros((), requires_grad=True)
        self.target_entropy = -float(act_dim)
        self.actor_optim = torch.optim.Adam(self.actor.parameters(), lr=cfg.lr)
        self.q_optim = torch.optim.Adam(self.q.parameters(), lr=cfg.lr)
        self.alpha_optim = torch.optim.Adam([self.log_alpha], lr=cfg.lr)

    @staticmethod
    def _q(nets: nn.ModuleList, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        x = torch.cat([obs, actions], -1)
        return torch.stack([net(x).squeeze(-1) for net in nets])  # (2, B)

    @torch.no_grad()
    def act(self, obs: np.ndarray, deterministic: bool = False) -> np.ndarray:
        """An action for one observation: the tanh mean, or a sample."""
        action, _ = self.actor(torch.as_tensor(obs, dtype=torch.float32), deterministic)
        return action.numpy()

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One critic and actor (and temperature) step on ``batch``; returns the losses."""
        cfg, alpha = self.cfg, self.log_alpha.exp().detach()
        with torch.no_grad():
            next_a, next_logp = self.actor(batch["next_obs"])
            next_q = self._q(self.q_target, batch["next_obs"], next_a).amin(0) - alpha * next_logp
            target = batch["rewards"] + cfg.gamma * batch["not_done"] * next_q
        q_loss = F.mse_loss(self._q(self.q, batch["obs"], batch["actions"]), target.expand(2, -1))
        self.q_optim.zero_grad()
        q_loss.backward()
        self.q_optim.step()

        a, logp = self.actor(batch["obs"])
        actor_loss = (alpha * logp - self._q(self.q, batch["obs"], a).amin(0)).mean()
        self.actor_optim.zero_grad()
        actor_loss.backward()
        self.actor_optim.step()

        alpha_loss = -(self.log_alpha * (logp.detach() + self.target_entropy)).mean()
        self.alpha_optim.zero_grad()
        alpha_loss.backward()
        self.alpha_optim.step()
        with torch.no_grad():
            for p, tp in zip(self.q.parameters(), self.q_target.parameters()):
                tp.lerp_(p, cfg.tau)
        return {"q_loss": q_loss.item(), "actor_loss": actor_loss.item(), "alpha": alpha.item()}
