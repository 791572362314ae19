"""OPE-gated policy improvement (learning/offline/improvement.py): acceptance per member, clipping, max_drift."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
import torch

from tests.learning.offline.conftest import NET, bandit, ensemble_of
from unio4.learning.offline.bc import ActorEnsemble
from unio4.learning.offline.critics import CriticConfig, CriticTrainer
from unio4.learning.offline.improvement import ImprovementConfig, ImprovementTrainer, clip_per_member


def mean_action_score(target: float) -> Callable[[ActorEnsemble], torch.Tensor]:
    """A real, policy-dependent score: how close each member's mean action is to ``target``."""
    states = torch.randn(128, 2, generator=torch.Generator().manual_seed(1))

    def score(policies: ActorEnsemble) -> torch.Tensor:
        with torch.no_grad():
            mean, _ = policies(states)
        return -(mean - target).square().mean((1, 2))

    return score


def test_ope_acceptance_moves_only_the_members_that_improved() -> None:
    data = bandit(512)
    critics = CriticTrainer(data, CriticConfig(steps=0, q_hidden=(16,)), NET, seed=0).critics
    scorer = mean_action_score(0.5)
    trainer = ImprovementTrainer(data, ensemble_of(3), critics, scorer, ImprovementConfig(steps=10), seed=0)  # type: ignore[arg-type]
    behaviour_before = copy.deepcopy(trainer.behaviour.state_dict()["params"])
    best_before = trainer.best.clone()
    # member 0 moves towards the target (better), member 1 away (worse), member 2 stays (not strictly better)
    with torch.no_grad():
        bias = trainer.learner.params["mean_head.0.bias"]
        bias[0] += 0.3
        bias[1] -= 0.3
    stats = trainer.evaluate()
    assert stats["accepted"] == 1.0
    assert torch.equal(trainer.last, scorer(trainer.learner))  # the learners' latest scores, accepted or not
    assert trainer.accepted.tolist() == [1, 0, 0]
    after = trainer.behaviour.state_dict()["params"]
    assert not torch.equal(after["mean_head.0.bias"][0], behaviour_before["mean_head.0.bias"][0])
    assert torch.equal(after["mean_head.0.bias"][0], trainer.learner.params["mean_head.0.bias"][0])
    for k, v in behaviour_before.items():
        assert torch.equal(after[k][1:], v[1:]), k
    assert trainer.best[0] > best_before[0] and torch.equal(trainer.best[1:], best_before[1:])


def test_per_member_gradient_clipping_leaves_small_members_alone() -> None:
    p = torch.zeros(2, 3, requires_grad=True)
    p.grad = torch.tensor([[3.0, 4.0, 0.0], [0.3, 0.0, 0.4]])
    norms = clip_per_member([p], 1.0)
    assert norms.tolist() == pytest.approx([5.0, 0.5])
    assert p.grad.tolist() == [pytest.approx([0.6, 0.8, 0.0], abs=1e-6), pytest.approx([0.3, 0.0, 0.4])]


def test_max_drift_refuses_learners_whose_rollouts_leave_the_data() -> None:
    """Every learner scores better by OPE; the one whose rollouts show 3x its BC member's model
    disagreement is refused with ``max_drift: 2``, and accepted without it (the paper's gate)."""
    data = bandit(512)
    critics = CriticTrainer(data, CriticConfig(steps=0, q_hidden=(16,)), NET, seed=0).critics
    calls = iter(range(100))

    def scorer(policies: ActorEnsemble) -> torch.Tensor:
        return torch.full((policies.size,), float(next(calls)))  # every call better than the last

    spread = {"now": torch.ones(3)}
    for max_drift, accepted in ((2.0, [1, 0, 1]), (None, [1, 1, 1])):
        cfg = ImprovementConfig(steps=10, max_drift=max_drift)
        spread["now"] = torch.ones(3)  # the BC members' rollouts
        trainer = ImprovementTrainer(data, ensemble_of(3), critics, scorer, cfg, seed=0, disagreement=lambda: spread["now"])  # type: ignore[arg-type]
        spread["now"] = torch.tensor([1.5, 3.0, 0.5])
        trainer.evaluate()
        assert trainer.accepted.tolist() == accepted, max_drift
    with pytest.raises(ValueError, match="max_drift needs"):
        ImprovementTrainer(data, ensemble_of(3), critics, scorer, ImprovementConfig(steps=10, max_drift=2.0), seed=0)  # type: ignore[arg-type]


class LuckyDraws:
    """A scorer whose every draw adds one luck to every policy it scores (the first draws' lucks given)."""

    def __init__(self, luck: list[float], target: float) -> None:
        self.luck, self.true_score = iter(luck), mean_action_score(target)
        self.draws: list[float] = []

    def __call__(self, policies: ActorEnsemble, evaluation: int | None = None) -> torch.Tensor:
        if evaluation is None or evaluation == len(self.draws):
            self.draws.append(next(self.luck))
        return self.true_score(policies) + self.draws[-1 if evaluation is None else evaluation]

    def pair(self, first: ActorEnsemble, second: ActorEnsemble) -> tuple[torch.Tensor, torch.Tensor]:
        evaluation = len(self.draws)
        return self(first, evaluation), self(second, evaluation)


def test_paired_acceptance_compares_on_the_learners_own_draw() -> None:
    """The BC members' first draw was lucky (+1), later ones are not; each learner is truly better than its
    behaviour policy. Against the best score so far (the paper's rule) the lucky first draw blocks every
    learner; paired, the behaviour policy is rescored on the learner's draw and every learner is accepted."""
    data = bandit(512)
    critics = CriticTrainer(data, CriticConfig(steps=0, q_hidden=(16,)), NET, seed=0).critics
    for acceptance, accepted in (("best", [0, 0, 0]), ("paired", [1, 1, 1])):
        scorer = LuckyDraws([1.0, 0.0, 0.0, 0.0], target=0.5)
        cfg = ImprovementConfig(steps=10, acceptance=acceptance)  # type: ignore[arg-type]
        trainer = ImprovementTrainer(data, ensemble_of(3), critics, scorer, cfg, seed=0, paired=scorer.pair)  # type: ignore[arg-type]
        with torch.no_grad():
            trainer.learner.params["mean_head.0.bias"] += 0.1  # towards the target 0.5 from BC's ~0
        trainer.evaluate()
        assert trainer.accepted.tolist() == accepted, acceptance
    with pytest.raises(ValueError, match="acceptance: paired needs"):
        ImprovementTrainer(data, ensemble_of(3), critics, scorer, ImprovementConfig(steps=10, acceptance="paired"), seed=0)  # type: ignore[arg-type]
