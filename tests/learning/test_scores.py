"""D4RL-normalised scores (learning/scores.py)."""

from __future__ import annotations

import pytest

from unio4.learning.scores import normalized_score


def test_d4rl_normalised_scores() -> None:
    assert normalized_score("Hopper-v4", 3234.3) == pytest.approx(100.0)
    assert normalized_score("halfcheetah-medium-v2", -280.178953) == pytest.approx(0.0)
    assert normalized_score("Walker2d-v4", 1.629008 + 0.5 * (4592.3 - 1.629008)) == pytest.approx(50.0)
    with pytest.raises(ValueError, match="no D4RL reference"):
        normalized_score("Ant-v4", 1.0)
