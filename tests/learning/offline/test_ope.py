"""AM-Q off-policy evaluation (learning/offline/ope.py) on known models."""

from __future__ import annotations

import copy
import math
from dataclasses import replace

import pytest
import torch

from tests.learning.offline.conftest import NET, bandit, ensemble_of
from unio4.learning.offline.bc import ActorEnsemble
from unio4.learning.offline.critics import CriticConfig, CriticTrainer
from unio4.learning.offline.improvement import ImprovementConfig, ImprovementTrainer
from unio4.learning.offline.ope import AMQ, OPEConfig


class LineWorld:
    """A known model for AM-Q's arithmetic: the state moves by the action and the episode ends past 1."""

    def step_with_disagreement(
        self, obs: torch.Tensor, actions: torch.Tensor, gen: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        next_obs = obs + actions
        return next_obs, torch.zeros(len(obs)), next_obs[:, 0].abs() > 1.0, actions.abs().mean(-1)  # "disagreement": |a|

    def q_min(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return torch.ones(obs.shape[:-1])


@pytest.mark.parametrize(("terminal", "expected"), [("drop", [1.0, 1.0]), ("zero", [1.0, 0.4])])
def test_amq_terminal_modes(terminal: str, expected: list[float]) -> None:
    """Member 0 stands still; member 1 moves 0.6 per step and its rollouts end after 2 of 5 steps. With
    the paper's ``drop`` both score the mean Q of their live steps, so the fall is invisible; with
    ``zero`` the ended steps count as Q = 0."""
    policies = ensemble_of(2)
    with torch.no_grad():
        policies.params["mean_head.0.weight"].zero_()
        policies.params["mean_head.0.bias"][0] = 0.0
        policies.params["mean_head.0.bias"][1] = math.atanh(0.6)
    world = LineWorld()
    amq = AMQ(torch.zeros(64, 2), world, world, OPEConfig(horizon=5, states=16, terminal=terminal))  # type: ignore[arg-type]
    assert amq(policies).tolist() == pytest.approx(expected, abs=1e-5)
    # the disagreement is averaged over live steps only: member 1's two steps before its fall
    assert amq.last_disagreement.tolist() == pytest.approx([0.0, 0.6], abs=1e-5)


class EagerLineWorld(LineWorld):
    """LineWorld whose Q rewards moving right: a policy that moves looks better at every state it survives."""

    def q_min(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return 1.0 + actions[..., 0]


@pytest.mark.parametrize(("fraction", "expected"), [(0.0, [1.0, 1.5]), (0.5, [1.0, 1.125]), (1.0, [1.0, 0.75])])
def test_amq_initial_fraction_sees_a_fall_from_the_reset_states(fraction: float, expected: list[float]) -> None:
    """The data's states sit at x = 0 except its episodes' first states (reset states, 1 row in 64) at
    x = 0.9. Member 1 moves 0.5 per step and Q favours that: from x = 0 it survives the 2-step horizon
    and scores 1.5; from a reset it falls after one step and scores 1.5 / 2. Drawn from all rows
    (fraction 0) the 16 start states miss the resets and rank member 1 above member 0 (Q 1 everywhere);
    drawn from the episode starts it ranks below, as its true return would."""
    policies = ensemble_of(2)
    with torch.no_grad():
        policies.params["mean_head.0.weight"].zero_()
        policies.params["mean_head.0.bias"][0] = 0.0
        policies.params["mean_head.0.bias"][1] = math.atanh(0.5)
    data, starts = torch.zeros(512, 2), torch.arange(0, 512, 64)
    data[starts] = 0.9
    world = EagerLineWorld()
    cfg = OPEConfig(horizon=2, states=16, terminal="zero", initial_fraction=fraction, seed=2)
    amq = AMQ(data, world, world, cfg, episode_starts=starts)  # type: ignore[arg-type]
    initial = round(fraction * 16)
    assert bool((amq.start[:initial] == 0.9).all()) and not bool((amq.start[initial:] == 0.9).any())
    assert amq(policies).tolist() == pytest.approx(expected, abs=1e-5)
    if fraction:
        with pytest.raises(ValueError, match="episode starts"):
            AMQ(data, world, world, cfg)  # type: ignore[arg-type]


class RunawayWorld:
    """A model that feeds on its own errors: the state doubles every step (plus ``gain`` x the action);
    the rollout ends where ``|x| > 1`` unless ``ends`` is off. Its "disagreement" is the size of the
    predicted state, so it tells how far the rollout ran."""

    def __init__(self, gain: float, ends: bool) -> None:
        self.gain, self.ends = gain, ends

    def step_with_disagreement(
        self, obs: torch.Tensor, actions: torch.Tensor, gen: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        next_obs = 2.0 * obs + self.gain * actions
        done = (next_obs[:, 0].abs() > 1.0) & self.ends
        return next_obs, torch.zeros(len(obs)), done, next_obs.abs().mean(-1)

    def q_min(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return torch.ones(obs.shape[:-1])


def test_amq_clip_states_keeps_a_runaway_model_inside_the_data() -> None:
    """Without the clip the doubling model's 40-step rollouts leave the data's [-1, 1] box by a factor
    of about 1e11 (the drift diagnostic becomes meaningless); with it every state stays in the box."""
    policies = ensemble_of(2)
    with torch.no_grad():
        policies.params["mean_head.0.weight"].zero_()
        policies.params["mean_head.0.bias"].zero_()
    data = torch.linspace(-1.0, 1.0, 64).unsqueeze(-1).expand(64, 2)
    spread = {}
    for clip in (False, True):
        amq = AMQ(data, RunawayWorld(0.0, ends=False), RunawayWorld(0.0, ends=False), OPEConfig(horizon=40, states=16, clip_states=clip))  # type: ignore[arg-type]
        assert amq(policies).tolist() == pytest.approx([1.0, 1.0])
        spread[clip] = amq.last_disagreement
    assert bool((spread[False] > 1e6).all())
    assert bool((spread[True] <= 2.0).all())  # a state in the box predicts at most 2x its size


def test_amq_clip_states_still_sees_a_fall_predicted_outside_the_data() -> None:
    """The termination rule reads the model's unclipped prediction: member 1's first step lands at
    1.2, outside both the fall limit and the data (all zeros), and its rollouts end there, as without
    the clip; clipping first would have put it back at 0 and hidden the fall."""
    policies = ensemble_of(2)
    with torch.no_grad():
        policies.params["mean_head.0.weight"].zero_()
        policies.params["mean_head.0.bias"][0] = 0.0
        policies.params["mean_head.0.bias"][1] = math.atanh(0.6)
    world = RunawayWorld(2.0, ends=True)
    for clip in (False, True):
        amq = AMQ(torch.zeros(64, 2), world, world, OPEConfig(horizon=5, states=16, terminal="zero", clip_states=clip))  # type: ignore[arg-type]
        assert amq(policies).tolist() == pytest.approx([1.0, 0.2], abs=1e-5), clip


class SlopeWorld(LineWorld):
    """LineWorld whose Q is the state's first coordinate: a score depends on where the rollouts start."""

    def q_min(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return obs[..., 0]


def still_policies(n: int) -> ActorEnsemble:
    """Members that stand still (mean action 0), so a score is the mean first coordinate of the start states."""
    policies = ensemble_of(n)
    with torch.no_grad():
        policies.params["mean_head.0.weight"].zero_()
        policies.params["mean_head.0.bias"].zero_()
    return policies


def test_amq_fresh_states_draws_new_start_states_per_evaluation_and_repeats_them_per_seed() -> None:
    """Fixed start states (default): every call scores the same. ``fresh_states`` (the authors'): each call
    draws its own states, each member its own, so two calls of the same policies score differently;
    the draws follow the seed and the call's index, so a new AM-Q with the same seed repeats them."""
    data = torch.linspace(0.0, 1.0, 1000).unsqueeze(-1).expand(1000, 2).contiguous()
    world, policies = SlopeWorld(), still_policies(2)
    fixed = AMQ(data, world, world, OPEConfig(horizon=3, states=32))  # type: ignore[arg-type]
    assert torch.equal(fixed(policies), fixed(policies))
    start, _ = fixed.rollout_start(2, 7)
    assert torch.equal(start[0], fixed.start) and torch.equal(start[1], fixed.start)

    cfg = OPEConfig(horizon=3, states=32, fresh_states=True)
    amq = AMQ(data, world, world, cfg)  # type: ignore[arg-type]
    first, second = amq(policies), amq(policies)
    assert amq.evaluations == 2
    assert not torch.equal(first, second)  # new states at the second evaluation
    assert float(first[0]) != float(first[1])  # each member its own states
    again = AMQ(data, world, world, cfg)  # type: ignore[arg-type]
    assert torch.equal(again(policies), first) and torch.equal(again(policies), second)
    states0, gen0 = amq.rollout_start(2, 0)
    states1, _ = amq.rollout_start(2, 1)
    assert torch.equal(amq.rollout_start(2, 0)[0], states0) and not torch.equal(states0, states1)
    assert torch.randn(1, generator=gen0) != torch.randn(1, generator=amq.rollout_start(2, 1)[1])  # fresh noise too
    other = AMQ(data, world, world, replace(cfg, seed=1))  # type: ignore[arg-type]
    assert not torch.equal(other.rollout_start(2, 0)[0], states0)


def test_amq_pair_scores_two_ensembles_on_one_fresh_draw() -> None:
    """``pair`` spends one evaluation on both ensembles: the same policies score the same on it, while the
    next evaluation's draw (fresh states) scores them differently."""
    data = torch.linspace(0.0, 1.0, 1000).unsqueeze(-1).expand(1000, 2).contiguous()
    world, policies = SlopeWorld(), still_policies(2)
    amq = AMQ(data, world, world, OPEConfig(horizon=3, states=32, fresh_states=True))  # type: ignore[arg-type]
    first, second = amq.pair(policies, policies)
    assert torch.equal(first, second) and amq.evaluations == 1
    again = AMQ(data, world, world, amq.cfg)  # type: ignore[arg-type]
    assert torch.equal(again(policies), first)  # the draw of evaluation 0
    assert not torch.equal(amq(policies), first) and amq.evaluations == 2


def test_amq_fresh_states_resume_at_the_evaluation_they_stopped() -> None:
    """The improvement step's state carries AM-Q's evaluation count: a trainer restored from it (as
    ``--resume`` builds one, after its own first AM-Q call) draws the states of the evaluations it had left."""
    data = bandit(256)
    critics = CriticTrainer(data, CriticConfig(steps=0, q_hidden=(8,)), NET, seed=0).critics
    world = SlopeWorld()
    cfg = ImprovementConfig(steps=4, batch_size=16, ope_interval=2)

    def trainer() -> ImprovementTrainer:
        amq = AMQ(data.observations, world, critics, OPEConfig(horizon=2, states=16, fresh_states=True))  # type: ignore[arg-type]
        return ImprovementTrainer(data, ensemble_of(2), critics, amq, cfg, seed=0)

    full, resumed = trainer(), trainer()
    for _ in range(2):
        full.step()
    resumed.load_state_dict(copy.deepcopy(full.state_dict()))
    assert resumed.ope.evaluations == 2  # type: ignore[attr-defined]
    for _ in range(2):
        full.step(), resumed.step()
    assert torch.equal(full.last, resumed.last) and torch.equal(full.best, resumed.best)
