"""Uni-O4's behaviour-cloning ensemble, trained as ONE batched model.

``n`` :class:`GaussianActor` members have their parameters stacked along a leading member axis
(``torch.func.stack_module_state``) and run in one vmapped forward pass; every member sees the
same minibatch. Regularisers (see ``docs/uni-o4.md``):

- ``none``: plain maximum likelihood, ``L_i = -log pi_i(a|s)``.
- ``paper``: the paper's term as the authors coded it,
  ``L_i = -log pi_i - alpha (log pi_i - max_{j != i} log pi_j)`` with no gradient through the max:
  it only rescales BC by ``1 + alpha``; members differ by their initialisation alone.
- ``kl``: a real repulsion, ``L_i = -log pi_i - alpha KL(pi_i || pi_j*)`` with ``j*`` the closest
  other member (detached), averaged over the batch.

A member is extracted as a plain :class:`GaussianActor`, so the online phase starts from exactly
the offline policy.

``init`` starts every member from one checkpoint's actor (a walker pretrained in simulation), its
network and its observation statistics, as the authors' Go1 offline recipe does; ``steps`` of BC then
move the members from there (0: the pretrained actor as it is, the authors' choice).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import torch
from torch.func import functional_call, stack_module_state

from unio4.configs.loader import bounded, check_fields, to_dict
from unio4.learning.checkpoint import Resumable, checkpoint_network, load_checkpoint, load_training_state, save_checkpoint, training_state
from unio4.learning.data.dataset import Dataset
from unio4.learning.policy import GaussianActor, NetworkConfig
from unio4.learning.progress import ProgressReporter


@dataclass(frozen=True)
class BCConfig:
    """Behaviour-cloning ensemble settings: members, network, steps, learning rate, regulariser."""

    members: int = bounded(4, ge=1)
    steps: int = bounded(400_000, ge=0)
    batch_size: int = bounded(512, ge=1)
    lr: float = bounded(1e-4, gt=0, le=1)
    # the three measured alike (docs/benchmarks/uni-o4-parts.md, "Uni-O4's parts on hopper-medium")
    regularizer: Literal["none", "paper", "kl"] = "none"
    alpha: float = bounded(0.1, ge=0)
    # kl: the repulsion stops once the closest other member is this far (nats per state). Unbounded,
    # it wins over BC and can push a member to the action bounds, a policy that falls and that OPE may
    # still rank first (docs/benchmarks/go1-uni-o4.md, "Go1: PPO from scratch vs Uni-O4 (offline on gait logs + online)").
    kl_cap: float = bounded(1.0, gt=0)
    seed: int = bounded(0, ge=0)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    init: str | None = None  # a checkpoint or bundle whose actor every member starts as; its network replaces ``network``

    def __post_init__(self) -> None:
        check_fields(self)  # the declared ranges and choices, for a config built in Python as for one loaded from YAML
        if self.regularizer != "none" and self.members < 2:  # across fields: the regularisers compare members
            raise ValueError(f"regularizer '{self.regularizer}' needs members >= 2")


class ActorEnsemble:
    """``n`` Gaussian actors with stacked parameters and one vectorised forward pass."""

    def __init__(self, members: list[GaussianActor]) -> None:
        self.template = copy.deepcopy(members[0]).to("meta")
        params, buffers = stack_module_state(members)  # type: ignore[arg-type]
        self.params: dict[str, torch.Tensor] = {k: v.detach().requires_grad_(v.requires_grad) for k, v in params.items()}
        self.buffers: dict[str, torch.Tensor] = buffers
        self.size = len(members)

    def parameters(self) -> list[torch.Tensor]:
        """All members' parameters."""
        return [p for p in self.params.values() if p.requires_grad]

    def __call__(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-std of every member, each (n, B, act_dim), for one batch ``obs`` (B, obs_dim)."""

        def one(params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
            out: tuple[torch.Tensor, torch.Tensor] = functional_call(self.template, (params, buffers), (obs,))
            return out

        result: tuple[torch.Tensor, torch.Tensor] = torch.vmap(one)(self.params, self.buffers)
        return result

    def member(self, i: int, like: GaussianActor) -> GaussianActor:
        """Member ``i`` as a standalone actor (a copy of ``like`` with member ``i``'s weights)."""
        actor = copy.deepcopy(like)
        actor.load_state_dict({k: v[i].detach().clone() for k, v in {**self.params, **self.buffers}.items()})
        return actor

    def state_dict(self) -> dict[str, Any]:
        """Weights of every member, for a checkpoint."""
        return {"params": {k: v.detach() for k, v in self.params.items()}, "buffers": self.buffers}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Copy stacked weights in place (optimisers keep pointing at the same tensors)."""
        with torch.no_grad():
            for k, v in state["params"].items():
                self.params[k].copy_(v)
            for k, v in state["buffers"].items():
                self.buffers[k].copy_(v)

    def per_member(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Like :meth:`__call__` but member ``i`` sees its own batch ``obs[i]`` (n, B, obs_dim)."""

        def one(params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor], x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            out: tuple[torch.Tensor, torch.Tensor] = functional_call(self.template, (params, buffers), (x,))
            return out

        result: tuple[torch.Tensor, torch.Tensor] = torch.vmap(one)(self.params, self.buffers, obs)
        return result

    def copy_member(self, source: ActorEnsemble, i: int) -> None:
        """Member ``i`` <- member ``i`` of ``source`` (same architecture)."""
        with torch.no_grad():
            for k, v in source.params.items():
                self.params[k][i].copy_(v[i])


def with_init_network(cfg: BCConfig) -> BCConfig:
    """``cfg`` with the network of its ``init`` checkpoint (unchanged without one): the members' architecture."""
    if cfg.init is None:
        return cfg
    from unio4.learning.export import init_checkpoint

    path = init_checkpoint(cfg.init)
    network = checkpoint_network(load_checkpoint(path), str(path))
    if network is None:
        raise ValueError(f"bc.init: {path} does not record its network; give a checkpoint from unio4 train")
    return replace(cfg, network=network)


def pretrained_actor(cfg: BCConfig, obs_dim: int, act_dim: int, action_bound: float) -> GaussianActor:
    """The actor of ``cfg.init`` (``cfg.network`` must already be its network), observation statistics frozen."""
    from unio4.learning.export import init_checkpoint

    path = init_checkpoint(str(cfg.init))
    actor = GaussianActor(obs_dim, act_dim, action_bound, cfg.network)
    try:
        actor.load_state_dict(load_checkpoint(path)["actor"])
    except RuntimeError:  # shapes: another observation or action size
        raise ValueError(f"bc.init: {path}'s actor does not fit this dataset's {obs_dim} observations and {act_dim} actions") from None
    actor.normalizer.frozen.fill_(True)  # the statistics it was trained with, not the logs'
    return actor


def make_actor(obs_dim: int, act_dim: int, action_bound: float, net: NetworkConfig, dataset: Dataset | None = None) -> GaussianActor:
    """A fresh actor whose observation normaliser is frozen at the dataset statistics (if given)."""
    actor = GaussianActor(obs_dim, act_dim, action_bound, net)
    if dataset is not None:
        mean, var = dataset.observation_statistics()
        actor.normalizer.set_statistics(mean, var, freeze=True)
    return actor


def gaussian_kl(mean_p: torch.Tensor, log_std_p: torch.Tensor, mean_q: torch.Tensor, log_std_q: torch.Tensor) -> torch.Tensor:
    """KL(p || q) of diagonal Gaussians, summed over the last axis."""
    var_p, var_q = (2 * log_std_p).exp(), (2 * log_std_q).exp()
    return (log_std_q - log_std_p + (var_p + (mean_p - mean_q).square()) / (2 * var_q) - 0.5).sum(-1)


def gaussian_log_prob(x: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """Log N(x; mean, exp(log_std)) of diagonal Gaussians, summed over the last axis (broadcasting)."""
    return (-0.5 * ((x - mean) / log_std.exp()).square() - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)


def ensemble_loss(mean: torch.Tensor, log_std: torch.Tensor, actions: torch.Tensor, cfg: BCConfig) -> tuple[torch.Tensor, dict[str, float]]:
    """Summed member losses for a batch; ``mean``/``log_std`` are (n, B, A), ``actions`` (B, A)."""
    log_prob = gaussian_log_prob(actions, mean, log_std)  # (n, B)
    nll = -log_prob.mean(1)  # (n,)
    n = mean.shape[0]
    stats: dict[str, float] = {"nll": float(nll.detach().mean())}
    if cfg.regularizer == "none":
        return nll.sum(), stats
    others = ~torch.eye(n, dtype=torch.bool)
    if cfg.regularizer == "paper":
        lp = log_prob.detach().unsqueeze(0).expand(n, n, -1)  # [i, j, b] = log pi_j
        best_other = lp.masked_fill(~others.unsqueeze(-1), -torch.inf).amax(1)  # (n, B)
        reg = (log_prob - best_other).mean(1)
        return (nll - cfg.alpha * reg).sum(), stats
    # kl: KL(pi_i || pi_j) for all pairs, the closest other member j*, pushed away from.
    kl = gaussian_kl(mean.unsqueeze(1), log_std.unsqueeze(1), mean.detach().unsqueeze(0), log_std.detach().unsqueeze(0)).mean(-1)  # (n, n)
    closest = kl.masked_fill(~others, torch.inf).amin(1)  # (n,)
    stats["kl_closest"] = float(closest.detach().mean())
    return (nll - cfg.alpha * closest.clamp(max=cfg.kl_cap)).sum(), stats


class BCTrainer:
    """Fits an :class:`ActorEnsemble` one gradient step at a time (resumable: see :meth:`state_dict`)."""

    def __init__(self, dataset: Dataset, cfg: BCConfig, action_bound: float) -> None:
        torch.manual_seed(cfg.seed)
        self.data, self.cfg = dataset, cfg
        obs_dim, act_dim = dataset.observations.shape[1], dataset.actions.shape[1]
        device = dataset.observations.device
        if cfg.init is None:
            members = [make_actor(obs_dim, act_dim, action_bound, cfg.network, dataset).to(device) for _ in range(cfg.members)]
        else:
            pretrained = pretrained_actor(cfg, obs_dim, act_dim, action_bound).to(device)  # read once, copied per member
            members = [copy.deepcopy(pretrained) for _ in range(cfg.members)]
        self.template = members[0]
        self.ensemble = ActorEnsemble(members)
        self.optimizer = torch.optim.Adam(self.ensemble.parameters(), lr=cfg.lr)
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self.step_count = 0

    def step(self) -> dict[str, float]:
        """One batched gradient step of every member; returns the mean loss terms."""
        idx = torch.randint(len(self.data), (self.cfg.batch_size,), generator=self.generator).to(self.data.rewards.device)
        mean, log_std = self.ensemble(self.data.observations[idx])
        loss, stats = ensemble_loss(mean, log_std, self.data.actions[idx], self.cfg)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.step_count += 1
        return stats

    def state_dict(self) -> dict[str, Any]:
        """Networks, optimiser and counters, for resuming."""
        return {**training_state(self._parts(), self.generator), "step": self.step_count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        load_training_state(state, self._parts(), self.generator)
        self.step_count = state["step"]

    def _parts(self) -> dict[str, Resumable]:
        return {"ensemble": self.ensemble, "optimizer": self.optimizer}


def train_bc(
    dataset: Dataset,
    cfg: BCConfig,
    action_bound: float,
    show_progress: bool = False,
    on_log: Callable[[int, dict[str, float]], None] | None = None,
) -> tuple[ActorEnsemble, GaussianActor, list[dict[str, float]]]:
    """Fit the ensemble to ``dataset``; returns it, a template actor (for :meth:`ActorEnsemble.member`) and the loss history.

    ``on_log(step, stats)`` sees every row of the history as it is recorded (``--logger``).
    """
    trainer = BCTrainer(dataset, cfg, action_bound)
    history: list[dict[str, float]] = []
    log_every = max(1, cfg.steps // 100)
    with ProgressReporter(f"BC ensemble ({cfg.members} members)", cfg.steps, enabled=show_progress) as progress:
        for step in range(cfg.steps):
            stats = trainer.step()
            if step % log_every == 0 or step == cfg.steps - 1:
                history.append({"step": float(step), **stats})
                if on_log is not None:
                    on_log(step, stats)
            progress.advance()
    return trainer.ensemble, trainer.template, history


def save_bc_checkpoint(
    path: Path, ensemble: ActorEnsemble, template: GaussianActor, cfg: BCConfig, dataset: Dataset, member: int = 0
) -> None:
    """Write the ensemble and member ``member`` as ``actor``, loadable by ``train online --init``."""
    save_checkpoint(
        path,
        {
            "kind": "bc",
            "actor": ensemble.member(member, template).state_dict(),
            "member": member,
            "ensemble": ensemble.state_dict(),
            "network": to_dict(cfg.network),
            "bc": to_dict(cfg),
            "obs_dim": template.obs_dim,
            "act_dim": template.act_dim,
            "action_bound": template.action_bound,
            "dataset": {k: v for k, v in dataset.metadata.items() if k != "task_config"} | {"transitions": len(dataset)},
            "task_config": dataset.metadata.get("task_config"),
        },
    )
