"""Uni-O4's multi-step policy improvement, all ensemble members at once.

Per member ``i``: the behaviour policy ``b_i`` and the learner ``pi_i`` start at BC member ``i``.
Each step takes ``batch_size`` dataset states, samples ``a ~ b_i``, normalises the advantage
``A = min Q(s, a) - V(s)`` over the batch and minimises PPO's clipped surrogate with
``rho = pi_i(a|s) / b_i(a|s)``. Every ``ope_interval`` steps AM-Q scores ``pi_i``; if it beats the
best score so far (``acceptance: paired``: ``b_i`` scored on the same draw), ``b_i <- pi_i`` (the
"multi-step" part: the anchor of the clip only moves when off-policy evaluation says the new policy
is better).

Members are stacked (one vmapped forward pass); gradient-norm clipping is per member, so members
stay independent exactly as if they were trained one after another.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch

from unio4.configs.loader import bounded, check_fields
from unio4.learning.checkpoint import Resumable, load_training_state, training_state
from unio4.learning.data.dataset import Dataset
from unio4.learning.offline.bc import ActorEnsemble, gaussian_log_prob
from unio4.learning.offline.critics import Critics
from unio4.learning.online.ppo import surrogate_loss

# Off-policy evaluation of every member of an ensemble, (members,) scores: AM-Q in training.
Scorer = Callable[[ActorEnsemble], torch.Tensor]
# Two ensembles scored on one draw, (members,) scores each: AM-Q's ``pair``.
PairScorer = Callable[[ActorEnsemble, ActorEnsemble], tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class ImprovementConfig:
    """Multi-step policy improvement settings: steps, clip, learning rate, OPE interval and acceptance."""

    steps: int = bounded(10_000, ge=0)
    batch_size: int = bounded(512, ge=1)
    lr: float = bounded(1e-4, gt=0, le=1)  # decayed linearly to 0 over ``steps``
    clip: float = bounded(0.25, gt=0)
    clip_final: float = bounded(0.245, gt=0)  # reached linearly after ``clip_decay_steps``, then held
    clip_decay_steps: int = bounded(200, ge=1)
    max_grad_norm: float = bounded(0.5, gt=0)
    ope_interval: int = bounded(100, ge=1)
    # Refuse a learner whose OPE rollouts show more than this times its BC member's model disagreement
    # (the dynamics elites' spread): past it, AM-Q scores model and Q extrapolation. None: the
    # paper's gate, AM-Q alone.
    max_drift: float | None = bounded(None, gt=0)
    # What a learner must beat to replace its behaviour policy. best: the member's best score so far (the
    # paper's); with fresh OPE states that is the luckiest earlier draw's. paired: the behaviour policy's
    # score on the learner's own draw (both rescored at every check).
    acceptance: Literal["best", "paired"] = "best"

    def __post_init__(self) -> None:
        check_fields(self)  # the declared ranges, for a config built in Python as for one loaded from YAML
        if not self.clip_final <= self.clip:  # across fields: the clip decays, never grows
            raise ValueError(f"clip_final ({self.clip_final}) must be <= clip ({self.clip})")


def clip_per_member(params: list[torch.Tensor], max_norm: float) -> torch.Tensor:
    """Scale each member's gradient (leading axis) to norm <= ``max_norm``; returns the norms before."""
    grads = [p.grad for p in params if p.grad is not None]
    norms = torch.stack([g.reshape(g.shape[0], -1).square().sum(1) for g in grads]).sum(0).sqrt()
    scale = (max_norm / (norms + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(scale.reshape(-1, *([1] * (g.ndim - 1))))
    return norms


class ImprovementTrainer:
    """Runs the improvement steps and the OPE-gated behaviour replacement (resumable)."""

    def __init__(
        self,
        dataset: Dataset,
        bc: ActorEnsemble,
        critics: Critics,
        ope: Scorer,
        cfg: ImprovementConfig,
        seed: int,
        disagreement: Callable[[], torch.Tensor] | None = None,
        q_observations: torch.Tensor | None = None,
        paired: PairScorer | None = None,
    ) -> None:
        """``disagreement``: the (members,) model disagreement along the latest OPE call's rollouts
        (:attr:`AMQ.last_disagreement`), needed with ``max_drift``. ``q_observations``: the rows Q
        reads, when they are not the policy's observations (Q on the privileged critic state).
        ``paired``: scores two ensembles on one draw (:meth:`AMQ.pair`), needed with ``acceptance: paired``.
        """
        if cfg.max_drift is not None and disagreement is None:
            raise ValueError("improvement.max_drift needs an OPE that reports the model's disagreement (AM-Q)")
        if cfg.acceptance == "paired" and paired is None:
            raise ValueError("improvement.acceptance: paired needs an OPE that scores two ensembles on one draw (AM-Q)")
        self.paired = paired
        self.data, self.critics, self.ope, self.cfg = dataset, critics, ope, cfg
        self.disagreement = disagreement
        self.value_obs = dataset.value_observations()[0]
        self.q_obs = dataset.observations if q_observations is None else q_observations
        self.learner = copy.deepcopy(bc)
        self.behaviour = copy.deepcopy(bc)
        for p in self.behaviour.params.values():
            p.requires_grad_(False)
        self.optimizer = torch.optim.Adam(self.learner.parameters(), lr=cfg.lr)
        self.generator = torch.Generator().manual_seed(seed)
        self.best = ope(self.behaviour)  # the BC members' scores
        self.bc_disagreement = disagreement() if disagreement is not None else None
        self.initial = self.best.clone()
        self.last = self.best.clone()  # the learners' scores at the latest OPE check
        self.accepted = torch.zeros(bc.size, dtype=torch.long, device=self.best.device)
        self.step_count = 0

    def clip_range(self) -> float:
        """The current clip range of the surrogate."""
        frac = min(1.0, self.step_count / max(1, self.cfg.clip_decay_steps))
        return self.cfg.clip + frac * (self.cfg.clip_final - self.cfg.clip)

    def step(self) -> dict[str, float]:
        """One surrogate step of every member against its behaviour policy; returns the losses."""
        cfg, n = self.cfg, self.learner.size
        for group in self.optimizer.param_groups:
            group["lr"] = cfg.lr * (1.0 - self.step_count / max(1, cfg.steps))
        device = self.data.rewards.device
        idx = torch.randint(len(self.data), (cfg.batch_size,), generator=self.generator).to(device)
        obs = self.data.observations[idx]
        with torch.no_grad():
            b_mean, b_log_std = self.behaviour(obs)
            actions = b_mean + b_log_std.exp() * torch.randn(b_mean.shape, generator=self.generator).to(device)
            b_log_prob = gaussian_log_prob(actions, b_mean, b_log_std)
            value_obs, q_obs = self.value_obs[idx], self.q_obs[idx]
            adv = self.critics.advantage(q_obs.expand(n, *q_obs.shape), actions, value_obs.expand(n, *value_obs.shape))
            adv = (adv - adv.mean(1, keepdim=True)) / (adv.std(1, keepdim=True) + 1e-8)
        mean, log_std = self.learner(obs)
        log_prob = gaussian_log_prob(actions, mean, log_std)
        clip = self.clip_range()
        loss = n * surrogate_loss(log_prob, b_log_prob, adv, clip)  # the sum of the members' mean losses
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norms = clip_per_member(self.learner.parameters(), cfg.max_grad_norm)
        self.optimizer.step()
        self.step_count += 1
        stats = {"loss": loss.item() / n, "grad_norm": float(norms.mean()), "clip": clip}
        if self.step_count % cfg.ope_interval == 0 or self.step_count == cfg.steps:
            stats.update(self.evaluate())
        return stats

    def evaluate(self) -> dict[str, float]:
        """Score the learners; members that beat their reference (``acceptance``) become the new behaviour policies."""
        if self.paired is not None and self.cfg.acceptance == "paired":
            reference, scores = self.paired(self.behaviour, self.learner)  # the learner last: its disagreement is read
        else:
            reference, scores = self.best, self.ope(self.learner)
        self.last = scores
        better = scores > reference
        if self.cfg.max_drift is not None:  # the constructor made sure the disagreement is reported
            assert self.disagreement is not None and self.bc_disagreement is not None
            better &= self.disagreement() <= self.cfg.max_drift * self.bc_disagreement
        for i in torch.nonzero(better).flatten().tolist():
            self.behaviour.copy_member(self.learner, i)
        self.best = torch.where(better, scores, reference)
        self.accepted += better.long()
        out = {f"ope_member{i}": float(s) for i, s in enumerate(scores)}
        out["ope_best"] = float(self.best.max())
        out["accepted"] = float(better.sum())
        return out

    def state_dict(self) -> dict[str, Any]:
        """Learners, behaviour policies, optimisers and counters, for resuming."""
        return {
            **training_state(self._parts(), self.generator),
            "best": self.best,
            "initial": self.initial,
            "last": self.last,
            "accepted": self.accepted,
            "step": self.step_count,
            # the scorer's call count (AM-Q's ``evaluations``: which fresh start states its next call draws)
            "ope_evaluations": getattr(self.ope, "evaluations", None),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        load_training_state(state, self._parts(), self.generator)
        self.best, self.initial, self.accepted = state["best"], state["initial"], state["accepted"]
        self.last = state.get("last", self.best)  # states written before the learners' scores were kept
        self.step_count = state["step"]
        if state.get("ope_evaluations") is not None:  # a resumed run's next OPE call draws what it would have drawn
            self.ope.evaluations = state["ope_evaluations"]  # type: ignore[attr-defined]

    def _parts(self) -> dict[str, Resumable]:
        return {"learner": self.learner, "behaviour": self.behaviour, "optimizer": self.optimizer}
