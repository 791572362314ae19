"""AM-Q off-policy evaluation: how good a policy looks in the learned model, scored by the critic.

The score of policy ``pi`` is the mean of ``min(Q1, Q2)(s_t, pi_mean(s_t))`` over ``horizon``-step
rollouts in the dynamics ensemble from ``states`` dataset states. A rollout ends when the
termination rule ends it (or the model diverges to non-finite states); what it then contributes is
``terminal``:

- ``zero`` (default): the terminal state is absorbing with value 0, so every step after the fall
  counts as Q = 0 and the score is the mean over all start states and steps.
- ``drop`` (the paper's text and the authors' code): nothing; the score is the mean Q over the
  steps still alive. A policy that falls early is scored on its few pre-fall states only, so
  falling costs it nothing, and the improvement step exploits that: on the CPU-scaled hopper-medium
  and walker2d-medium runs every accepted "improvement" made the policy fall
  (docs/benchmarks/uni-o4-parts.md, "Uni-O4 on regenerated D4RL-style data (CPU-scaled)", the OPE
  blind spot). Tasks without a termination rule score the same either way.

All members of an ensemble are scored in one batched rollout.

``clip_states`` bounds the model's states to the box of the data's states (per dimension, after the
termination rule has looked at the unclipped prediction, so falls are still seen). Without it a
model may feed itself states it never saw and run away (on HalfCheetah, where no rule ends a
rollout: docs/benchmarks/uni-o4-vs-iql.md, "Bounded model rollouts (`ope.clip_states`)"), and the
drift diagnostic and the Q values at those states then mean nothing.

``initial_fraction`` of the start states are drawn from the data's episode starts (reset states)
instead of from all its states. The true return a policy is judged by starts there, and a reset
state is rare in the data (one row per episode), so AM-Q over dataset states alone never sees what
a policy does from a reset and may rate a policy that falls soon after one above its BC start. From
reset states AM-Q sees those falls, but the improvement step did not beat BC with them either
(docs/benchmarks/uni-o4-vs-iql.md, "AM-Q from reset states (`ope.initial_fraction`)"), so the
default stays 0, the paper's.

Every call uses the same start states and the same model-noise seed (common random numbers), so
two policies' scores differ because the policies differ, not because the rollouts did: this is
what makes the improvement step's "accept if better" test meaningful. ``fresh_states`` is the
authors' way instead: every call draws new start states (each member its own ``states`` rows, with
replacement) and new model noise, from a generator seeded by ``seed`` and the call's index
(:attr:`AMQ.evaluations`), so a run still reproduces, but a score now also moves with the draw.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from unio4.configs.loader import bounded, check_fields
from unio4.learning.offline.bc import ActorEnsemble
from unio4.learning.offline.critics import Critics
from unio4.learning.offline.dynamics import DynamicsEnsemble


@dataclass(frozen=True)
class OPEConfig:
    """AM-Q settings: start states, rollout horizon, discount, what an ended rollout scores."""

    horizon: int = bounded(1000, ge=1)
    states: int = bounded(512, ge=1)
    seed: int = bounded(12345, ge=0)  # start states and model noise, fixed for every evaluation
    terminal: Literal["zero", "drop"] = "zero"  # what an ended rollout contributes: zero (absorbing state) or drop (the paper's)
    clip_states: bool = False  # keep the model's states inside the data's per-dimension [min, max]
    initial_fraction: float = bounded(0.0, ge=0.0, le=1.0)  # share of start states drawn from episode starts
    # new start states (per member) and model noise at every evaluation, seeded by seed and the evaluation's
    # index (the authors' draw 512 states per candidate at every check: dynamics_eval.py l. 142-146); off: fixed ones
    fresh_states: bool = False

    def __post_init__(self) -> None:
        check_fields(self)  # the declared ranges and choices, for a config built in Python as for one loaded from YAML


class AMQ:
    """Scores every member of an :class:`ActorEnsemble` with the same rollouts."""

    def __init__(
        self,
        observations: torch.Tensor,
        dynamics: DynamicsEnsemble,
        critics: Critics,
        cfg: OPEConfig,
        policy_dims: int | None = None,
        episode_starts: torch.Tensor | None = None,
    ) -> None:
        """``observations``: the states the model and Q work in (start states are drawn from them);
        ``policy_dims``: a policy reads the first that many of them (the privileged critic state starts
        with the policy's observation), all of them when None; ``episode_starts``: row indices of the
        episodes' first states, drawn from for ``cfg.initial_fraction`` of the start states.
        """
        self.dynamics, self.critics, self.cfg = dynamics, critics, cfg
        self.observations, self.policy_dims = observations, policy_dims or observations.shape[-1]
        if round(cfg.initial_fraction * cfg.states) and (episode_starts is None or len(episode_starts) == 0):
            raise ValueError("ope.initial_fraction > 0 needs the data's episode starts")
        self.episode_starts = None if episode_starts is None else episode_starts.cpu()
        # the fixed start states (every call's without fresh_states)
        self.start = observations[self.start_rows(torch.Generator().manual_seed(cfg.seed), torch.Generator().manual_seed(cfg.seed + 2))]
        self.low, self.high = observations.min(0).values, observations.max(0).values
        # (members,) mean elite disagreement along the latest call's rollouts (live steps): how far
        # from the data the scored policies went (diagnostics; the score does not use it)
        self.last_disagreement = torch.zeros(0)
        self.evaluations = 0  # calls so far: the index of the next one (picks its draw with fresh_states)

    def start_rows(self, gen: torch.Generator, starts_gen: torch.Generator, members: int | None = None) -> torch.Tensor:
        """Dataset rows of start states, (states,) or (members, states): drawn with replacement, the first
        ``initial_fraction`` of each member's from the episode starts (drawn with ``starts_gen``).
        """
        shape = (self.cfg.states,) if members is None else (members, self.cfg.states)
        rows = torch.randint(len(self.observations), shape, generator=gen)
        initial = round(self.cfg.initial_fraction * self.cfg.states)
        if initial:
            assert self.episode_starts is not None  # the constructor made sure
            picks = torch.randint(len(self.episode_starts), (*shape[:-1], initial), generator=starts_gen)
            rows[..., :initial] = self.episode_starts[picks]
        return rows.to(self.observations.device)

    def rollout_start(self, members: int, evaluation: int) -> tuple[torch.Tensor, torch.Generator]:
        """(members, states, dim) start states and the model-noise generator of evaluation number ``evaluation``."""
        if not self.cfg.fresh_states:
            b, d = self.start.shape
            return self.start.expand(members, b, d).clone(), torch.Generator().manual_seed(self.cfg.seed + 1)
        # one generator per (seed, evaluation) pair (torch's CPU generator keeps 32 bits of a seed: mix both into them)
        gen = torch.Generator().manual_seed(int(np.random.SeedSequence([self.cfg.seed, evaluation]).generate_state(1)[0]))
        return self.observations[self.start_rows(gen, gen, members)], gen

    def pair(self, first: ActorEnsemble, second: ActorEnsemble) -> tuple[torch.Tensor, torch.Tensor]:
        """Both ensembles' (members,) scores on one evaluation's draw (common random numbers within a
        check, fresh ones across checks with ``fresh_states``); the latest disagreement is ``second``'s.
        """
        evaluation = self.evaluations
        scores = self(first, evaluation), self(second, evaluation)
        self.evaluations = evaluation + 1
        return scores

    @torch.no_grad()
    def __call__(self, policies: ActorEnsemble, evaluation: int | None = None) -> torch.Tensor:
        """(members,) scores, on the draw of evaluation number ``evaluation`` (None: the next one)."""
        n, (b, d) = policies.size, self.start.shape
        obs, gen = self.rollout_start(n, self.evaluations if evaluation is None else evaluation)
        if evaluation is None:
            self.evaluations += 1
        device = self.start.device
        alive = torch.ones(n, b, dtype=torch.bool, device=device)
        total, count = torch.zeros(n, dtype=torch.float64, device=device), torch.zeros(n, dtype=torch.float64, device=device)
        spread = torch.zeros(n, dtype=torch.float64, device=device)
        for _ in range(self.cfg.horizon):
            actions, _ = policies.per_member(obs[..., : self.policy_dims])
            q = self.critics.q_min(obs, actions)
            total += torch.where(alive, q, 0.0).sum(1).double()
            count += alive.sum(1).double()
            next_obs, _, done, disagreement = self.dynamics.step_with_disagreement(obs.reshape(n * b, d), actions.reshape(n * b, -1), gen)
            spread += torch.where(alive, disagreement.reshape(n, b), 0.0).sum(1).double()
            done = done | ~torch.isfinite(next_obs).all(-1)
            alive &= ~done.reshape(n, b)
            if not bool(alive.any()):
                break
            if self.cfg.clip_states:
                next_obs = next_obs.clamp(self.low, self.high)
            obs = torch.where(alive.unsqueeze(-1), next_obs.reshape(n, b, d), obs)
        self.last_disagreement = (spread / count.clamp_min(1)).float()
        if self.cfg.terminal == "zero":  # every start state counts for the whole horizon, ended or not
            count = torch.full_like(count, float(b * self.cfg.horizon))
        return (total / count.clamp_min(1)).float()
