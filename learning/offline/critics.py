"""Uni-O4's offline critics: Q(s, a) and V(s) fitted on the dataset only.

- ``iql`` (the authors' default): twin Q and V. V minimises the expectile loss
  ``|w - 1(u < 0)| u^2`` with ``u = min(Q1, Q2)_target(s, a) - V(s)``; Q regresses to
  ``r + gamma (1 - d) V(s')``. Polyak-averaged target Q every ``target_update_every`` updates.
- ``sarsa`` (BPPO's): Q regresses to ``r + gamma (1 - d) Q_target(s', a')`` with ``a'`` the dataset's
  next action, V to the discounted Monte-Carlo return of the episode.

``d`` is the true terminal flag: time-outs bootstrap (``bootstrap_timeouts``, the default; the
authors' code treats them as terminals, which ``bootstrap_timeouts: false`` reproduces). In
``sarsa`` mode the dataset holds no next action after a time-out, so those rows bootstrap from V.
V is a :class:`ValueCritic` over :meth:`Dataset.value_observations` (the simulator's privileged
critic observations when logged), so it loads unchanged as the online PPO critic.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from unio4.configs.loader import bounded, check_fields
from unio4.learning.checkpoint import Resumable, load_training_state, training_state
from unio4.learning.data.dataset import Dataset
from unio4.learning.normalizer import ObsNormalizer
from unio4.learning.offline.ensemble import EnsembleMLP
from unio4.learning.policy import NetworkConfig, ValueCritic


@dataclass(frozen=True)
class CriticConfig:
    """Critic settings: IQL or SARSA, network sizes, expectile, discount, steps, batch."""

    mode: Literal["iql", "sarsa"] = "iql"
    steps: int = bounded(2_000_000, ge=0)
    batch_size: int = bounded(512, ge=1)
    lr: float = bounded(1e-4, gt=0, le=1)
    gamma: float = bounded(0.99, gt=0, le=1)
    tau: float = bounded(0.005, gt=0, le=1)
    target_update_every: int = bounded(2, ge=1)
    expectile: float = bounded(0.7, gt=0, lt=1)
    q_hidden: tuple[int, ...] = bounded((1024, 1024), ge=1)
    q_activation: Literal["elu", "relu", "tanh", "silu"] = "relu"
    bootstrap_timeouts: bool = True
    # bf16: the matrix products of training in bfloat16 (weights, optimiser, targets and losses stay
    # float32); faster on a CPU with AVX-512 BF16 (docs/benchmarks/offline-throughput.md, "Critic
    # throughput against d3rlpy's IQL"). Evaluation is always float32.
    precision: Literal["fp32", "bf16"] = "fp32"

    def __post_init__(self) -> None:
        check_fields(self)  # the declared ranges and choices, for a config built in Python as for one loaded from YAML


def expectile_loss(diff: torch.Tensor, expectile: float) -> torch.Tensor:
    """Mean of ``|w - 1(u < 0)| u^2``: above-zero residuals weigh ``w``, below-zero ``1 - w``."""
    weight = torch.where(diff < 0, 1.0 - expectile, expectile)
    return (weight * diff.square()).mean()


class TwinQ(nn.Module):
    """Two Q networks over ``[normalised s, a]``, batched as one ensemble."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: tuple[int, ...], activation: str) -> None:
        super().__init__()
        self.normalizer = ObsNormalizer(obs_dim, frozen=True)
        self.nets = EnsembleMLP(2, [obs_dim + act_dim, *hidden, 1], activation)

    def forward(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Both Q values, (2, ...) for ``obs`` (..., obs_dim) and ``actions`` (..., act_dim)."""
        lead = obs.shape[:-1]
        x = torch.cat([self.normalizer(obs), actions], -1).reshape(-1, obs.shape[-1] + actions.shape[-1])
        return self.nets(x).reshape(2, *lead)


def monte_carlo_returns(rewards: torch.Tensor, ends: torch.Tensor, gamma: float) -> torch.Tensor:
    """Discounted reward-to-go within each episode (``ends`` marks each episode's last row)."""
    returns = torch.zeros_like(rewards, dtype=torch.float64)
    running = 0.0
    r, e = rewards.double().tolist(), ends.tolist()
    for i in range(len(r) - 1, -1, -1):
        running = r[i] + (0.0 if e[i] else gamma * running)
        returns[i] = running
    return returns.float()


class Critics(nn.Module):
    """Q and V of the behaviour data; ``advantage`` = min(Q1, Q2)(s, a) - V(s)."""

    def __init__(self, obs_dim: int, act_dim: int, cfg: CriticConfig, network: NetworkConfig, value_obs_dim: int | None = None) -> None:
        super().__init__()
        self.q = TwinQ(obs_dim, act_dim, cfg.q_hidden, cfg.q_activation)
        self.q_target = copy.deepcopy(self.q).requires_grad_(False)
        self.v = ValueCritic(value_obs_dim or obs_dim, network)

    def set_statistics(self, obs: torch.Tensor, value_obs: torch.Tensor) -> None:
        """Freeze the normalisers at the dataset's statistics (rows of ``obs`` / ``value_obs``)."""
        for normalizer in (self.q.normalizer, self.q_target.normalizer):
            normalizer.set_statistics(obs.mean(0), obs.var(0, unbiased=False), freeze=True)
        self.v.normalizer.set_statistics(value_obs.mean(0), value_obs.var(0, unbiased=False), freeze=True)

    def q_min(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """The smaller of the two Q heads."""
        return self.q(obs, actions).amin(0)

    def advantage(self, obs: torch.Tensor, actions: torch.Tensor, value_obs: torch.Tensor) -> torch.Tensor:
        """``Q(s, a) - V(s)`` with the smaller Q head."""
        return self.q_min(obs, actions) - self.v(value_obs)


class CriticTrainer:
    """Fits :class:`Critics` one gradient step at a time (resumable: see :meth:`state_dict`)."""

    def __init__(self, dataset: Dataset, cfg: CriticConfig, network: NetworkConfig, seed: int) -> None:
        torch.manual_seed(seed)
        self.data, self.cfg = dataset, cfg
        obs_dim, act_dim = dataset.observations.shape[1], dataset.actions.shape[1]
        self.value_obs, self.next_value_obs = dataset.value_observations()
        self.critics = Critics(obs_dim, act_dim, cfg, network, self.value_obs.shape[1]).to(dataset.observations.device)
        self.critics.set_statistics(dataset.observations, self.value_obs)
        # one Adam over Q and V (their losses share no parameters, so one backward of the sum gives each
        # its own gradient, as two optimisers would), with the fused kernel (CPU and CUDA): one pass over all tensors
        params = [*self.critics.q.parameters(), *self.critics.v.parameters()]
        self.optimizer = torch.optim.Adam(params, lr=cfg.lr, fused=params[0].device.type in ("cpu", "cuda"))
        self.online_params: list[torch.Tensor] = list(self.critics.q.parameters())
        self.target_params: list[torch.Tensor] = list(self.critics.q_target.parameters())
        self.generator = torch.Generator().manual_seed(seed)
        self.step_count = 0
        self.not_done = (~(dataset.terminals if cfg.bootstrap_timeouts else dataset.terminals | dataset.timeouts)).float()
        if cfg.mode == "sarsa":
            ends = dataset.terminals | dataset.timeouts
            self.mc_returns = monte_carlo_returns(dataset.rewards, ends, cfg.gamma)
            # the next row's action is a' unless the episode ended here (then V(s') stands in)
            self.next_index = torch.clamp(torch.arange(len(dataset), device=dataset.rewards.device) + 1, max=len(dataset) - 1)
            self.has_next_action = (~ends).float()

    def step(self) -> dict[str, torch.Tensor]:
        """One gradient step of V and both Q heads (and the target update); returns the losses.

        The losses come back as 0-d tensors, not floats: reading them waits for the device, so the
        caller converts only the ones it logs.
        """
        cfg, data, c = self.cfg, self.data, self.critics
        idx = torch.randint(len(data), (cfg.batch_size,), generator=self.generator).to(data.rewards.device)
        obs, actions, rewards = data.observations[idx], data.actions[idx], data.rewards[idx]
        next_obs, not_done = data.next_observations[idx], self.not_done[idx]
        # the networks' matrix products in ``precision``; targets and losses always in float32
        with torch.autocast(obs.device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16"):
            with torch.no_grad():
                v_next = c.v(self.next_value_obs[idx]).float()
                if cfg.mode == "iql":
                    bootstrap = v_next
                    target_q = c.q_target(obs, actions).amin(0).float()
                else:
                    q_next = c.q_target(next_obs, data.actions[self.next_index[idx]]).amin(0).float()
                    has_next = self.has_next_action[idx]
                    bootstrap = has_next * q_next + (1 - has_next) * v_next
            v = c.v(self.value_obs[idx]).float()
            q = c.q(obs, actions).float()
        q_target = rewards + cfg.gamma * not_done * bootstrap
        v_loss = expectile_loss(target_q - v, cfg.expectile) if cfg.mode == "iql" else (v - self.mc_returns[idx]).square().mean()
        q_loss = (q - q_target).square().mean()
        self.optimizer.zero_grad(set_to_none=True)
        (v_loss + q_loss).backward()
        self.optimizer.step()
        self.step_count += 1
        if self.step_count % cfg.target_update_every == 0:
            with torch.no_grad():
                torch._foreach_lerp_(self.target_params, self.online_params, cfg.tau)
        return {"q_loss": q_loss.detach(), "v_loss": v_loss.detach()}

    def state_dict(self) -> dict[str, Any]:
        """Networks, targets, optimisers and step, for resuming."""
        return {**training_state(self._parts(), self.generator), "step": self.step_count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        load_training_state(state, self._parts(), self.generator)
        self.step_count = state["step"]

    def _parts(self) -> dict[str, Resumable]:
        return {"critics": self.critics, "optimizer": self.optimizer}
