"""Actor and critic networks shared by Uni-O4's offline phase and PPO.

The actor is Uni-O4's Gaussian MLP: orthogonal init, a tanh-squashed mean and a
state-dependent log-std squashed into ``[log_std_min, log_std_max]``. The mean is
``bound * tanh(x / bound)``: exactly Uni-O4's ``tanh`` for the usual [-1, 1] action box, and for a
wider box (the Go1 task's joint-offset actions) the same unit slope at 0, so learning rates and
KL behave as for an unsquashed mean near the origin. One class everywhere means
an offline ensemble member loads into the online learner with an identical action distribution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

import torch
from torch import nn
from torch.distributions import Normal

from unio4.configs.loader import bounded, check_fields
from unio4.learning.command_remap import CommandRemap
from unio4.learning.normalizer import ObsNormalizer

ACTIVATIONS: dict[str, type[nn.Module]] = {"elu": nn.ELU, "relu": nn.ReLU, "tanh": nn.Tanh, "silu": nn.SiLU}


@dataclass(frozen=True)
class NetworkConfig:
    """Actor and critic architecture, activation, log-std range and head, initial std, observation normalisation."""

    actor_hidden: tuple[int, ...] = bounded((256, 256, 256), ge=1)
    critic_hidden: tuple[int, ...] = bounded((512, 512, 512), ge=1)
    activation: Literal["elu", "relu", "tanh", "silu"] = "elu"
    critic_activation: Literal["elu", "relu", "tanh", "silu"] | None = None  # None: ``activation``
    log_std_min: float = bounded(-5.0, ge=-20, le=5)
    log_std_max: float = bounded(0.0, ge=-20, le=5)
    init_std: float = bounded(0.5, gt=0)
    normalize_observations: bool = True
    # Normalised observations are clipped to +-obs_clip (rsl_rl's 10); None: unclipped (the Uni-O4 code).
    obs_clip: float | None = bounded(10.0, gt=0)
    # "state": Uni-O4's state-dependent log-std head; "parameter": one learned log-std per action
    # (rsl_rl's choice), which keeps the KL per step small for PPO from scratch.
    log_std_mode: Literal["state", "parameter"] = "state"
    # V's last layer: "linear", or "relu" (V >= 0: the Uni-O4 code's online V refitted to scaled
    # returns, ValueReluMLP; see learning/online/value_refit.py). Adds no parameters.
    critic_output: Literal["linear", "relu"] = "linear"

    def __post_init__(self) -> None:
        check_fields(self)  # the declared ranges and choices, for a config built in Python as for one loaded from YAML
        # across fields: the initial std lies inside the log-std range (which therefore is not empty)
        if not self.log_std_min < math.log(self.init_std) < self.log_std_max:
            raise ValueError("init_std must lie strictly inside exp([log_std_min, log_std_max])")


def mlp(sizes: list[int], activation: str, out_gain: float) -> nn.Sequential:
    """Orthogonally initialised MLP; the last layer uses gain ``out_gain``."""
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        linear = nn.Linear(sizes[i], sizes[i + 1])
        last = i == len(sizes) - 2
        nn.init.orthogonal_(linear.weight, gain=out_gain if last else math.sqrt(2))
        nn.init.zeros_(linear.bias)
        layers.append(linear)
        if not last:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


class GaussianActor(nn.Module):
    """pi(a|s) = N(bound * tanh(mu(s) / bound), exp(squash(log_std(s))))."""

    def __init__(self, obs_dim: int, act_dim: int, action_bound: float, cfg: NetworkConfig) -> None:
        super().__init__()
        self.obs_dim, self.act_dim, self.action_bound = obs_dim, act_dim, action_bound
        self.log_std_min, self.log_std_max = cfg.log_std_min, cfg.log_std_max
        self.normalizer = ObsNormalizer(obs_dim, clip=math.inf if cfg.obs_clip is None else cfg.obs_clip)
        self.normalize = cfg.normalize_observations
        self.trunk = mlp([obs_dim, *cfg.actor_hidden], cfg.activation, out_gain=math.sqrt(2))
        self.trunk.append(ACTIVATIONS[cfg.activation]())
        self.mean_head = mlp([cfg.actor_hidden[-1], act_dim], cfg.activation, out_gain=0.01)
        self.log_std_head = mlp([cfg.actor_hidden[-1], act_dim], cfg.activation, out_gain=0.01)
        # bias so that the initial std is init_std
        frac = (math.log(cfg.init_std) - cfg.log_std_min) / (cfg.log_std_max - cfg.log_std_min)
        head = self.log_std_head[0]
        assert isinstance(head, nn.Linear)
        nn.init.constant_(head.bias, math.atanh(2 * frac - 1))
        self.log_std_mode = cfg.log_std_mode
        self.log_std_param = nn.Parameter(torch.full((act_dim,), math.atanh(2 * frac - 1)), requires_grad=cfg.log_std_mode == "parameter")
        self.command_remap = CommandRemap(obs_dim)  # a command calibration's, set by a session (none: stores nothing)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Action mean and log-std."""
        obs = self.command_remap(obs)
        x = self.normalizer(obs) if self.normalize else obs
        h = self.trunk(x)
        mean = self.action_bound * torch.tanh(self.mean_head(h) / self.action_bound)
        raw = self.log_std_head(h) if self.log_std_mode == "state" else self.log_std_param.expand_as(mean)
        squashed = torch.tanh(raw)
        log_std = self.log_std_min + 0.5 * (self.log_std_max - self.log_std_min) * (squashed + 1)
        return mean, log_std

    def distribution(self, obs: torch.Tensor) -> Normal:
        """The Gaussian over actions at ``obs``."""
        mean, log_std = self(obs)
        return Normal(mean, log_std.exp())

    def log_prob(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Summed log-density of ``actions`` at ``obs``."""
        return self.distribution(obs).log_prob(actions).sum(-1)


class ValueCritic(nn.Module):
    """V(s) on (possibly privileged) critic observations."""

    def __init__(self, obs_dim: int, cfg: NetworkConfig) -> None:
        super().__init__()
        self.normalizer = ObsNormalizer(obs_dim, clip=math.inf if cfg.obs_clip is None else cfg.obs_clip)
        self.normalize = cfg.normalize_observations
        self.net = mlp([obs_dim, *cfg.critic_hidden, 1], cfg.critic_activation or cfg.activation, out_gain=1.0)
        if cfg.critic_output == "relu":
            self.net.append(nn.ReLU())  # after the last Linear: the state dict's keys stay those of a linear output

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """V of each critic observation."""
        x = self.normalizer(obs) if self.normalize else obs
        return self.net(x).squeeze(-1)


def with_std_range(net: NetworkConfig, min_std: float | None = None, max_std: float | None = None) -> NetworkConfig:
    """``net`` with its log-std range starting at log(``min_std``) and/or ending at log(``max_std``):
    loaded into it, a pretrained actor keeps its mean exactly and explores at std >= ``min_std`` /
    <= ``max_std`` (the range is remapped, so the order of stds across states is kept). ``init_std``
    only seeds fresh weights; it is kept inside the new range.
    """
    low = net.log_std_min if min_std is None else math.log(min_std)
    high = net.log_std_max if max_std is None else math.log(max_std)
    if not low < high:
        raise ValueError(f"std range: min_std {math.exp(low):.3g} must lie below max_std {math.exp(high):.3g}")
    inside = net.init_std if low < math.log(net.init_std) < high else math.exp(0.5 * (low + high))
    return replace(net, log_std_min=low, log_std_max=high, init_std=inside)
