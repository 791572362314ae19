"""Dynamics ensemble for Uni-O4's off-policy evaluation (MBPO-style probabilistic ensemble).

``members`` Gaussian MLPs predict ``(delta s, r)`` from ``(s, a)`` in normalised units, trained
together (one batched model) with the Gaussian NLL, learned log-variance bounds and per-layer
weight decay. A hold-out set (``min(holdout_fraction, max_holdout)`` transitions) keeps each
member's best weights and stops training after ``patience`` epochs without a relative
improvement of ``improvement_threshold``; the ``elites`` best members are used for rollouts.

Rollouts end where the task's termination rule says so: known rules for Gymnasium's Hopper and
Walker2d, none for HalfCheetah, or a learned termination classifier for data without a rule.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from unio4.configs.loader import bounded, check_fields
from unio4.learning.checkpoint import Resumable, load_training_state, training_state
from unio4.learning.data.dataset import Dataset
from unio4.learning.offline.ensemble import EnsembleMLP
from unio4.learning.policy import mlp
from unio4.learning.scores import task_family

TerminationRule = Literal["hopper", "walker2d", "halfcheetah", "none"]  # the keys of TERMINATION_RULES


@dataclass(frozen=True)
class DynamicsConfig:
    """Dynamics ensemble settings: members, elites, network, training epochs, termination rule."""

    members: int = bounded(7, ge=1)
    elites: int = bounded(5, ge=1)
    hidden: tuple[int, ...] = bounded((200, 200, 200, 200), ge=1)
    lr: float = bounded(1e-3, gt=0, le=1)
    weight_decay: tuple[float, ...] = bounded((2.5e-5, 5e-5, 7.5e-5, 7.5e-5, 1e-4), ge=0)  # per layer, input to output
    batch_size: int = bounded(256, ge=1)
    holdout_fraction: float = bounded(0.2, gt=0, lt=1)
    max_holdout: int = bounded(1000, ge=1)
    patience: int = bounded(5, ge=1)
    improvement_threshold: float = bounded(0.01, ge=0)
    max_epochs: int = bounded(200, ge=1)
    # auto: the task's rule from the dataset's "env" metadata, else learned if the data has terminals, else none
    termination: Literal["auto", "learned", TerminationRule] = "auto"
    # bf16: the matrix products of training in bfloat16 (weights, optimiser, losses and the hold-out
    # check stay float32, rollouts run in float32); faster epochs on a CPU with AVX-512 BF16
    # (docs/benchmarks/offline-throughput.md, "Dynamics training in bfloat16")
    precision: Literal["fp32", "bf16"] = "fp32"
    # the Gaussian NLL over members: mean, or sum (the authors': weight decay and the log-variance
    # bound terms then weigh 1/members as much against it; transition_model/dynamics/ensemble_dynamics.py l. 216-219)
    member_loss: Literal["mean", "sum"] = "mean"
    # each member on its own resample (with replacement) of the training split, drawn once and
    # reshuffled every epoch (the authors': ensemble_dynamics.py l. 154-173); off: every member sees the whole split
    bootstrap: bool = False

    def __post_init__(self) -> None:
        check_fields(self)  # the declared ranges and choices, for a config built in Python as for one loaded from YAML
        if not 1 <= self.elites <= self.members:
            raise ValueError("elites must be in [1, members]")
        if len(self.weight_decay) != len(self.hidden) + 1:
            raise ValueError(f"weight_decay needs one value per layer ({len(self.hidden) + 1}), got {len(self.weight_decay)}")


def _hopper_done(next_obs: torch.Tensor) -> torch.Tensor:
    height, angle = next_obs[:, 0], next_obs[:, 1]
    healthy = (next_obs[:, 1:].abs() < 100).all(-1) & (height > 0.7) & (angle.abs() < 0.2)
    return ~healthy


def _walker_done(next_obs: torch.Tensor) -> torch.Tensor:
    height, angle = next_obs[:, 0], next_obs[:, 1]
    return ~((height > 0.8) & (height < 2.0) & (angle > -1.0) & (angle < 1.0))


def _never_done(next_obs: torch.Tensor) -> torch.Tensor:
    return torch.zeros(next_obs.shape[0], dtype=torch.bool, device=next_obs.device)


# Gymnasium v4 termination rules on the next observation (the qpos part excludes x).
TERMINATION_RULES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "hopper": _hopper_done,
    "walker2d": _walker_done,
    "halfcheetah": _never_done,
    "none": _never_done,
}


def resolve_termination(cfg: DynamicsConfig, dataset: Dataset) -> str:
    """The termination rule to use: the configured one, or the one inferred from the dataset."""
    if cfg.termination != "auto":
        return cfg.termination
    family = task_family(str(dataset.metadata.get("env", "")))
    if family in TERMINATION_RULES:
        return family
    return "learned" if bool(dataset.terminals.any()) else "none"


class DynamicsEnsemble(nn.Module):
    """p(delta s, r | s, a) as ``members`` Gaussians; :meth:`step` samples one elite per row."""

    in_mean: torch.Tensor
    in_std: torch.Tensor
    out_mean: torch.Tensor
    out_std: torch.Tensor
    elite_index: torch.Tensor

    def __init__(self, obs_dim: int, act_dim: int, cfg: DynamicsConfig, termination: str) -> None:
        super().__init__()
        self.obs_dim, self.cfg, self.termination = obs_dim, cfg, termination
        out = obs_dim + 1
        self.net = EnsembleMLP(cfg.members, [obs_dim + act_dim, *cfg.hidden, 2 * out], "silu")
        self.max_logvar = nn.Parameter(torch.full((1, 1, out), 0.5))
        self.min_logvar = nn.Parameter(torch.full((1, 1, out), -10.0))
        for name, size in (("in_mean", obs_dim + act_dim), ("in_std", obs_dim + act_dim), ("out_mean", out), ("out_std", out)):
            self.register_buffer(name, torch.zeros(size) if "mean" in name else torch.ones(size))
        self.register_buffer("elite_index", torch.arange(cfg.elites))
        self.done_head = mlp([obs_dim, 200, 200, 1], "silu", out_gain=1.0) if termination == "learned" else None

    def predict(self, obs: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised mean and log-variance, (members, ..., obs_dim + 1); (members, B, ...) inputs go member-wise."""
        mean, logvar = self.net((torch.cat([obs, actions], -1) - self.in_mean) / self.in_std).chunk(2, -1)
        logvar = self.max_logvar - F.softplus(self.max_logvar - logvar)
        return mean, self.min_logvar + F.softplus(logvar - self.min_logvar)

    def done_logits(self, next_obs: torch.Tensor) -> torch.Tensor:
        """Logits of the learned termination classifier for predicted next observations."""
        assert self.done_head is not None
        logits: torch.Tensor = self.done_head((next_obs - self.in_mean[: self.obs_dim]) / self.in_std[: self.obs_dim])
        return logits.squeeze(-1)

    def is_done(self, next_obs: torch.Tensor) -> torch.Tensor:
        """Whether each predicted next observation ends the episode, by the termination rule."""
        if self.done_head is not None:
            return self.done_logits(next_obs) > 0
        return TERMINATION_RULES[self.termination](next_obs)

    @torch.no_grad()
    def step(self, obs: torch.Tensor, actions: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sampled next state, reward and done for (B, ...) inputs, each row from a random elite."""
        next_obs, reward, done, _ = self.step_with_disagreement(obs, actions, generator)
        return next_obs, reward, done

    @torch.no_grad()
    def step_with_disagreement(
        self, obs: torch.Tensor, actions: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """:meth:`step`, plus each row's elite disagreement: the std over elites of the predicted mean
        (normalised units, averaged over outputs). It grows where the data did not go: a policy whose
        rollouts show more of it than the behaviour's is being scored by extrapolation.
        """
        mean, logvar = self.predict(obs, actions)
        disagreement = mean[self.elite_index].std(0, unbiased=False).mean(-1)
        device = obs.device  # random numbers come from a CPU generator, so runs reproduce on any device
        choice = self.elite_index[torch.randint(len(self.elite_index), (obs.shape[0],), generator=generator).to(device)]
        rows = torch.arange(obs.shape[0], device=device)
        mean, std = mean[choice, rows], (0.5 * logvar[choice, rows]).exp()
        noise = torch.randn(mean.shape, generator=generator).to(device)
        sample = (mean + std * noise) * self.out_std + self.out_mean
        next_obs = obs + sample[:, : self.obs_dim]
        return next_obs, sample[:, -1], self.is_done(next_obs), disagreement


class DynamicsTrainer:
    """Epochs of ensemble training with hold-out early stopping (resumable per epoch)."""

    def __init__(self, dataset: Dataset, cfg: DynamicsConfig, seed: int) -> None:
        torch.manual_seed(seed)
        self.cfg = cfg
        obs, actions = dataset.observations, dataset.actions
        inputs = torch.cat([obs, actions], -1)
        targets = torch.cat([dataset.next_observations - obs, dataset.rewards.unsqueeze(-1)], -1)
        device = obs.device
        self.model = DynamicsEnsemble(obs.shape[1], actions.shape[1], cfg, resolve_termination(cfg, dataset)).to(device)
        self.model.in_mean.copy_(inputs.mean(0))
        self.model.in_std.copy_(inputs.std(0).clamp_min(1e-6))
        self.model.out_mean.copy_(targets.mean(0))
        self.model.out_std.copy_(targets.std(0).clamp_min(1e-6))
        self.generator = torch.Generator().manual_seed(seed)
        perm = torch.randperm(len(dataset), generator=self.generator).to(device)
        n_hold = min(int(cfg.holdout_fraction * len(dataset)), cfg.max_holdout)
        self.hold, self.train = perm[:n_hold], perm[n_hold:]
        # bootstrap: member i's rows are train[self.resample[i]], the same multiset every epoch
        self.resample = torch.randint(len(self.train), (cfg.members, len(self.train)), generator=self.generator) if cfg.bootstrap else None
        self.obs, self.actions, self.targets = obs, actions, (targets - self.model.out_mean) / self.model.out_std
        self.next_obs, self.dones = dataset.next_observations, dataset.terminals.float()
        decay_groups = [
            {"params": [layer.weight], "weight_decay": wd} for layer, wd in zip(self.model.net.linear_layers(), cfg.weight_decay)
        ]
        others = [p for n, p in self.model.named_parameters() if not (n.startswith("net.") and n.endswith("weight"))]
        self.optimizer = torch.optim.Adam([*decay_groups, {"params": others, "weight_decay": 0.0}], lr=cfg.lr)
        self.best = torch.full((cfg.members,), torch.inf, device=device)
        self.best_state = {k: v.clone() for k, v in self.model.net.state_dict().items()}
        self.epochs_since_improvement, self.epoch = 0, 0

    @property
    def done(self) -> bool:
        """Whether training has stopped (no member improved for ``patience`` epochs, or the epoch budget is spent)."""
        return self.epochs_since_improvement >= self.cfg.patience or self.epoch >= self.cfg.max_epochs

    def holdout_mse(self, model: DynamicsEnsemble | None = None) -> torch.Tensor:
        """Per-member mean squared error of the mean prediction on the hold-out set (normalised units),
        of the model in training or of another one fitted to the same data (to compare the two).
        """
        with torch.no_grad():
            mean, _ = (self.model if model is None else model).predict(self.obs[self.hold], self.actions[self.hold])
            return (mean - self.targets[self.hold]).square().mean((1, 2))

    def epoch_order(self) -> torch.Tensor:
        """(members, rows) dataset rows of the next epoch, each member in its own order: the whole
        training split, or with ``bootstrap`` the member's resample of it.
        """
        perms = [torch.randperm(len(self.train), generator=self.generator).to(self.train.device) for _ in range(self.cfg.members)]
        if self.resample is None:
            return torch.stack([self.train[p] for p in perms])
        resample = self.resample.to(self.train.device)
        return torch.stack([self.train[resample[i, p]] for i, p in enumerate(perms)])

    def step(self) -> dict[str, float]:
        """One epoch over the training split (every member in its own order), then the hold-out check.
        ``nll`` is the epoch's mean NLL term as optimised (summed over members with ``member_loss: sum``).
        """
        cfg, m = self.cfg, self.model
        order = self.epoch_order()
        total = torch.zeros((), device=self.train.device)  # summed on the device: no host read per batch
        batches = max(1, len(self.train) // cfg.batch_size)
        for b in range(batches):
            idx = order[:, b * cfg.batch_size : (b + 1) * cfg.batch_size]  # (members, batch)
            with torch.autocast(self.train.device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16"):
                mean, logvar = m.predict(self.obs[idx], self.actions[idx])
            mean, logvar = mean.float(), logvar.float()  # the loss in float32 either way
            err = ((mean - self.targets[idx]).square() * (-logvar).exp()) + logvar
            nll = err.mean() if cfg.member_loss == "mean" else err.mean((1, 2)).sum()
            loss = nll + 0.01 * (m.max_logvar.sum() - m.min_logvar.sum())
            if m.done_head is not None:
                loss = loss + F.binary_cross_entropy_with_logits(m.done_logits(self.next_obs[idx[0]]), self.dones[idx[0]])
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            total += nll.detach()
        mse = self.holdout_mse()
        improved = mse < self.best * (1 - cfg.improvement_threshold)
        state = m.net.state_dict()
        for name, value in state.items():
            self.best_state[name][improved] = value[improved].detach().clone()
        self.best = torch.where(improved, mse, self.best)
        self.epochs_since_improvement = 0 if bool(improved.any()) else self.epochs_since_improvement + 1
        self.epoch += 1
        return {"nll": float(total) / batches, "holdout_mse": float(mse.mean())}

    def finish(self) -> DynamicsEnsemble:
        """Restore each member's best weights and keep the ``elites`` lowest hold-out errors."""
        self.model.net.load_state_dict(self.best_state)
        mse = self.holdout_mse()
        self.model.elite_index.copy_(mse.argsort()[: self.cfg.elites])
        return self.model

    def state_dict(self) -> dict[str, Any]:
        """Networks, normalisers, elites and training counters, for resuming."""
        return {
            **training_state(self._parts(), self.generator),
            "best": self.best,
            "best_state": self.best_state,
            "epoch": self.epoch,
            "epochs_since_improvement": self.epochs_since_improvement,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        load_training_state(state, self._parts(), self.generator)
        self.best, self.best_state = state["best"], state["best_state"]
        self.epoch, self.epochs_since_improvement = state["epoch"], state["epochs_since_improvement"]

    def _parts(self) -> dict[str, Resumable]:
        return {"model": self.model, "optimizer": self.optimizer}
