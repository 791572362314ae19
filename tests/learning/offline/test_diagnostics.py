"""Offline diagnostics on known models: an action-dependent Q is reported sensitive, a flat one flagged,
a known ranking recovered (the pipeline writing them: tests/learning/offline/test_pipeline.py)."""

from __future__ import annotations

import pytest
import torch

from unio4.learning.offline.diagnostics import FLAT_RATIO, NARROW_COVERAGE, Drift, action_coverage, action_sensitivity, rank_correlation

OBS = torch.randn(4000, 6, generator=torch.Generator().manual_seed(0))


ACTIONS = torch.rand(4000, 2, generator=torch.Generator().manual_seed(1)) * 2 - 1


def test_a_q_that_depends_on_the_action_is_sensitive() -> None:
    result = action_sensitivity(lambda s, a: s[:, 0] - 3.0 * (a**2).sum(1), OBS, ACTIONS)
    assert not result.flat and result.ratio > 0.2 and "sensitive" in result.line()


def test_a_q_flat_in_the_action_is_flagged() -> None:
    result = action_sensitivity(lambda s, a: 10.0 * s[:, 0] + 1e-3 * a[:, 0], OBS, ACTIONS)
    assert result.flat and result.ratio < FLAT_RATIO and "FLAT" in result.line()


def test_a_weak_but_real_action_effect_is_not_flagged() -> None:
    """Critics that drove real improvements on hopper-medium had ratios of about 0.04: not flat."""
    unit = action_sensitivity(lambda s, a: 10.0 * s[:, 0] + a[:, 0], OBS, ACTIONS).ratio
    scale = 0.04 / unit  # the ratio is linear in the action term's weight
    result = action_sensitivity(lambda s, a: 10.0 * s[:, 0] + scale * a[:, 0], OBS, ACTIONS)
    assert result.ratio == pytest.approx(0.04, rel=1e-3)
    assert not result.flat and "sensitive to the action" in result.line()


def test_action_coverage_flags_one_action_per_state_and_measures_known_noise() -> None:
    """A deterministic behaviour (the trot's logs) is flagged; Gaussian exploration of known size is measured."""
    weights = torch.randn(6, 2, generator=torch.Generator().manual_seed(2))

    def behaviour(s: torch.Tensor) -> torch.Tensor:
        return torch.tanh(s @ weights)

    deterministic = action_coverage(behaviour, OBS, behaviour(OBS))
    assert deterministic.unexplained < 1e-9 and deterministic.narrow and "one action per state" in deterministic.line()
    noise = 0.3 * torch.randn(4000, 2, generator=torch.Generator().manual_seed(3))
    explored = behaviour(OBS) + noise
    expected = float(noise.square().mean(0).sum() / explored.var(0, unbiased=False).sum())
    result = action_coverage(behaviour, OBS, explored, num_states=4000)
    assert result.unexplained == pytest.approx(expected, rel=0.05) and result.unexplained > NARROW_COVERAGE
    assert not result.narrow and "alternatives" in result.line()
    # an ensemble's means, (members, B, act): the members' residuals are averaged
    two = action_coverage(lambda s: torch.stack([behaviour(s), behaviour(s) + 0.3]), OBS, explored, num_states=4000)
    shifted = float(((noise - 0.3).square().mean(0).sum()) / explored.var(0, unbiased=False).sum())
    assert two.unexplained == pytest.approx((expected + shifted) / 2, rel=0.05)


def test_rank_correlation_recovers_a_known_ranking() -> None:
    assert rank_correlation([1.0, 2.0, 3.0, 4.0], [10.0, 20.0, 30.0, 40.0]) == pytest.approx(1.0)
    assert rank_correlation([1.0, 2.0, 3.0, 4.0], [40.0, 30.0, 20.0, 10.0]) == pytest.approx(-1.0)
    assert rank_correlation([0.1, 0.5, 0.3, 0.9, 0.7], [1.0, 3.0, 2.0, 5.0, 4.0]) == pytest.approx(1.0)  # monotone, not linear
    assert rank_correlation([1.0, 1.0, 2.0], [1.0, 2.0, 3.0]) == pytest.approx(0.866, abs=1e-3)  # ties share a rank
    with pytest.raises(ValueError):
        rank_correlation([1.0], [1.0])


def test_improved_policies_far_from_the_data_are_flagged() -> None:
    far = Drift(bc=[0.06, 0.07], behaviour=[0.09, 0.09], learner=[0.1, 0.1])
    assert far.ratio == pytest.approx(0.09 / 0.065) and far.extrapolating
    assert "left the data" in far.line()
    near = Drift(bc=[0.06, 0.07], behaviour=[0.066, 0.066], learner=[0.07, 0.07])
    assert not near.extrapolating and "within the data" in near.line()
