"""``unio4 bench learning``: offline-phase throughput (gradient steps/s) of every Uni-O4 stage.

Stages are timed with the configured network sizes on a dataset (a file, or a synthetic one of
a MuJoCo task's shape). The behaviour-cloning ensemble is timed twice in the same run: batched
(all members in one vmapped model, same plain BC loss) and as ``members`` separate single-member trainers stepped one
after another, which is what the batching replaces; the printed ratio compares the two.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch

from unio4.learning.data.dataset import Dataset, dataset_action_bound
from unio4.learning.offline.bc import BCTrainer
from unio4.learning.offline.critics import CriticTrainer
from unio4.learning.offline.dynamics import DynamicsTrainer
from unio4.learning.offline.improvement import ImprovementTrainer
from unio4.learning.offline.ope import AMQ
from unio4.learning.offline.pipeline import OfflineConfig


@dataclass
class LearningBench:
    """Gradient steps per second of each offline stage, and the time of a dynamics epoch and an AM-Q evaluation."""

    critic_steps_per_s: float
    bc_batched_steps_per_s: float  # ensemble steps (every member updated once), plain BC loss
    bc_regularized_steps_per_s: float  # the same with the configured diversity regulariser
    bc_sequential_steps_per_s: float  # rounds of one step per separate member
    improvement_steps_per_s: float
    dynamics_epoch_s: float
    ope_eval_s: float

    @property
    def ensemble_speedup(self) -> float:
        """Batched over one-after-another BC ensemble throughput."""
        return self.bc_batched_steps_per_s / self.bc_sequential_steps_per_s


def synthetic_dataset(n: int, obs_dim: int, act_dim: int, episode: int = 1000, seed: int = 0) -> Dataset:
    """Random transitions of a given shape, ``episode``-step episodes ending in time-outs."""
    g = torch.Generator().manual_seed(seed)
    timeouts = torch.zeros(n, dtype=torch.bool)
    timeouts[episode - 1 :: episode] = True
    timeouts[-1] = True
    return Dataset(
        observations=torch.randn(n, obs_dim, generator=g),
        actions=torch.rand(n, act_dim, generator=g) * 2 - 1,
        rewards=torch.randn(n, generator=g),
        terminals=torch.zeros(n, dtype=torch.bool),
        timeouts=timeouts,
        next_observations=torch.randn(n, obs_dim, generator=g),
    )


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def steps_per_s(step: Callable[[], object], steps: int, warmup: int = 3) -> float:
    """Calls of ``step`` per second after ``warmup`` untimed calls."""
    for _ in range(warmup):
        step()
    _sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    _sync()
    return steps / (time.perf_counter() - t0)


def bench_learning(data: Dataset, cfg: OfflineConfig, steps: int) -> LearningBench:
    """Time ``steps`` gradient steps of each stage (one dynamics epoch, one OPE evaluation)."""
    bound = dataset_action_bound(data)
    data = data.to(cfg.device)
    critics = CriticTrainer(data, cfg.critics, cfg.bc.network, seed=0)
    critic_rate = steps_per_s(critics.step, steps)
    batched = BCTrainer(data, replace(cfg.bc, regularizer="none"), bound)
    bc_rate = steps_per_s(batched.step, steps)
    regularized = BCTrainer(data, cfg.bc, bound)
    regularized_rate = steps_per_s(regularized.step, steps)
    singles = [BCTrainer(data, replace(cfg.bc, members=1, regularizer="none", seed=i), bound) for i in range(cfg.bc.members)]

    def one_round() -> None:
        for trainer in singles:
            trainer.step()

    sequential_rate = steps_per_s(one_round, steps)
    dynamics = DynamicsTrainer(data, replace(cfg.dynamics, max_epochs=1), seed=0)
    t0 = time.perf_counter()
    dynamics.step()
    _sync()
    dynamics_epoch = time.perf_counter() - t0
    model = dynamics.finish()
    ope = AMQ(data.observations, model, critics.critics, cfg.ope)
    t0 = time.perf_counter()
    improver = ImprovementTrainer(
        data,
        batched.ensemble,
        critics.critics,
        ope,
        replace(cfg.improvement, ope_interval=10**9),
        seed=0,
        disagreement=lambda: ope.last_disagreement,
    )
    _sync()
    ope_time = time.perf_counter() - t0  # the constructor scores the BC members once
    return LearningBench(
        critic_rate, bc_rate, regularized_rate, sequential_rate, steps_per_s(improver.step, steps), dynamics_epoch, ope_time
    )
