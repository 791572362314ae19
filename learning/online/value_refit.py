"""A fresh V fitted to the offline data before online PPO's first update (``critic_init: refit``).

The Uni-O4 code does this whenever it scales rewards online (``ppo_finetune/main.py`` l. 139-173):
the offline V was fitted to raw rewards, so a new one (``ValueReluMLP``: 3 x 256, ReLU, a ReLU on
the output too) regresses the Monte-Carlo returns of the offline rewards scaled as the online
learner will see them, 1e6 Adam steps at lr 1e-4 on batches of 512 drawn with replacement.

Here the rewards go through :class:`~unio4.learning.online.reward_scaling.RewardScaler`'s rule
(``reward_scale``, and with ``reward_normalization: running`` the running std of the discounted
return over the data in order, reset at every episode end), and with ``running`` the statistics that
pass leaves seed the online scaler, as the authors carry their scaler from the offline pass into
the online phase. Episodes end at terminals and at time-outs alike: a return is cut at a time-out
without a bootstrap, as the authors' ``not_done = 1 - (terminals | timeouts)`` does. Unlike theirs
(PyTorch's default init), the layers are initialised as every unio4 network is (orthogonal), and a
ReLU output's bias starts at the mean return (:func:`start_alive`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Literal

import torch
import torch.nn.functional as F

from unio4.configs.loader import bounded, check_fields
from unio4.learning.data.dataset import Dataset
from unio4.learning.offline.critics import monte_carlo_returns
from unio4.learning.online.reward_scaling import RewardScaler
from unio4.learning.policy import NetworkConfig, ValueCritic
from unio4.learning.progress import ProgressReporter


@dataclass(frozen=True)
class ValueRefitConfig:
    """The refit's network and optimiser (the Uni-O4 code's values are the defaults)."""

    steps: int = bounded(1_000_000, ge=1)  # Adam steps
    lr: float = bounded(1e-4, gt=0, le=1)
    batch_size: int = bounded(512, ge=1)  # rows drawn with replacement per step
    hidden: tuple[int, ...] = bounded((256, 256, 256), ge=1)  # ReLU layers
    output_relu: bool = True  # V >= 0 (ValueReluMLP); the critic keeps it online
    log_interval: int = bounded(20_000, ge=1)  # steps between two printed losses (the authors' 2e4)

    def __post_init__(self) -> None:
        check_fields(self)  # the declared ranges, for a config built in Python as for one loaded from YAML


@dataclass
class RefitResult:
    """What the fit reached, and the online reward scaler's statistics after the pass over the data."""

    first_loss: float
    final_loss: float  # the last step's batch loss
    explained_variance: float  # of the returns over the whole dataset
    seconds: float
    scaler_state: dict[str, float] | None  # RewardScaler's count/mean/m2 (reward_normalization: running), else None

    def scalars(self) -> dict[str, float]:
        """The fit's summary under its logged names."""
        return {
            "refit/value_loss_first": self.first_loss,
            "refit/value_loss": self.final_loss,
            "refit/explained_variance": self.explained_variance,
            "refit/seconds": self.seconds,
        }


def refit_network(network: NetworkConfig, cfg: ValueRefitConfig) -> NetworkConfig:
    """``network`` with the refit's critic: ``cfg.hidden`` ReLU layers, and a ReLU output if ``cfg.output_relu``."""
    return replace(network, critic_hidden=cfg.hidden, critic_activation="relu", critic_output="relu" if cfg.output_relu else "linear")


def scaled_rewards(
    rewards: torch.Tensor, ends: torch.Tensor, gamma: float, scale: float, normalization: Literal["none", "running"]
) -> tuple[torch.Tensor, dict[str, float] | None]:
    """The rewards as the online learner is paid them (one env's :class:`RewardScaler`, row by row in order,
    ``ends`` restarting the discounted return), and with ``running`` the statistics the pass leaves.
    """
    scaler = RewardScaler(1, gamma, scale, normalization, "cpu")
    out = scaler.scale_sequence(rewards.float().cpu(), ends.cpu()).to(rewards.device)
    state = {"count": scaler.count, "mean": scaler.mean, "m2": scaler.m2} if normalization == "running" else None
    return out, state


def refit_value(
    critic: ValueCritic,
    data: Dataset,
    cfg: ValueRefitConfig,
    gamma: float,
    reward_scale: float,
    reward_normalization: Literal["none", "running"],
    seed: int,
    show_progress: bool = True,
) -> RefitResult:
    """Fit ``critic`` in place to the discounted returns of ``data``'s scaled rewards.

    V reads :meth:`Dataset.value_observations` through its normaliser, frozen at their statistics.
    Batches come from a generator seeded with ``seed``; the global torch RNG is left untouched.
    """
    obs, _ = data.value_observations()
    width = critic.normalizer.mean.numel()
    if obs.shape[1] != width:
        raise ValueError(f"V refit: the data's value observations have {obs.shape[1]} values per row; this task's critic reads {width}")
    device = critic.normalizer.mean.device
    ends = data.terminals | data.timeouts  # the authors' episode ends: a time-out cuts the return (no bootstrap)
    rewards, scaler_state = scaled_rewards(data.rewards, ends, gamma, reward_scale, reward_normalization)
    returns = monte_carlo_returns(rewards, ends, gamma).to(device)
    obs = obs.float().to(device)
    critic.normalizer.set_statistics(obs.mean(0), obs.var(0, unbiased=False), freeze=True)
    if cfg.output_relu:
        start_alive(critic, float(returns.mean()))
    first, last, seconds = fit(critic, obs, returns, cfg, seed, show_progress)
    return RefitResult(first, last, explained_variance(critic, obs, returns), seconds, scaler_state)


def start_alive(critic: ValueCritic, mean_return: float) -> None:
    """Start a ReLU output at the mean return: with the usual zero bias, the output unit is below 0 (no
    gradient) on a share of the states, and on a narrow dataset on all of them, and V stays 0.
    """
    last = [m for m in critic.net if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        last.bias.fill_(max(mean_return, 0.0))
    if mean_return <= 0:
        print(f"V refit: the returns average {mean_return:.3g}; V's ReLU output cannot go below 0 (value_refit.output_relu: false)")


def fit(
    critic: ValueCritic, obs: torch.Tensor, returns: torch.Tensor, cfg: ValueRefitConfig, seed: int, show: bool
) -> tuple[float, float, float]:
    """``cfg.steps`` Adam steps of the squared error on batches drawn with replacement; (first loss, last loss, seconds)."""
    generator = torch.Generator(device=obs.device).manual_seed(seed)
    optimizer = torch.optim.Adam(critic.parameters(), lr=cfg.lr)  # the authors' plain Adam (eps 1e-8, no clip)
    t0, first, loss = time.perf_counter(), float("nan"), torch.zeros(())
    with ProgressReporter("V refit", cfg.steps, enabled=show) as progress:
        for step in range(cfg.steps):
            idx = torch.randint(len(returns), (cfg.batch_size,), device=obs.device, generator=generator)
            loss = F.mse_loss(critic(obs[idx]), returns[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if step == 0:
                first = loss.item()
            if step % cfg.log_interval == 0 or step == cfg.steps - 1:
                status = f"loss {loss.item():.4f}"
                if show:
                    print(f"V refit: step {step}, {status}", flush=True)
                progress.advance(status=status)
            else:
                progress.advance()
    return first, loss.item(), time.perf_counter() - t0


@torch.no_grad()
def explained_variance(critic: ValueCritic, obs: torch.Tensor, returns: torch.Tensor, chunk: int = 65_536) -> float:
    """1 - Var(returns - V) / Var(returns) over every row (1: V matches the returns)."""
    values = torch.cat([critic(obs[i : i + chunk]) for i in range(0, len(obs), chunk)])
    spread = float(returns.var())
    return 1.0 - float((returns - values).var()) / spread if spread > 0 else float("nan")
