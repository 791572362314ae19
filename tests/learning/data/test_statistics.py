"""Dataset statistics (learning/data/statistics.py, ``unio4 data stats``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from unio4.learning.data.dataset import Dataset


def test_data_stats_reads_episodes_returns_and_scores(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Three episodes with known returns (one ends in a fall), scored with Hopper's D4RL references."""
    import json

    from unio4.cli import main
    from unio4.learning.data.statistics import dataset_statistics
    from unio4.learning.scores import normalized_score

    rewards = torch.tensor([1.0, 2.0, 3.0, 10.0, 0.5, 0.5, 0.5, 0.5])  # episodes: 6, 10, 2
    terminals = torch.zeros(8, dtype=torch.bool)
    timeouts = torch.zeros(8, dtype=torch.bool)
    timeouts[2], terminals[3], timeouts[7] = True, True, True
    obs = torch.randn(8, 3)
    data = Dataset(obs, torch.zeros(8, 1), rewards, terminals, timeouts, obs, metadata={"env": "Hopper-v4"})
    stats = dataset_statistics(data)
    assert (stats.transitions, stats.episodes, stats.terminals) == (8, 3, 1)
    assert (stats.return_min, stats.return_mean, stats.return_max) == pytest.approx((2.0, 6.0, 10.0))
    assert stats.score_mean == pytest.approx(normalized_score("Hopper-v4", 6.0))
    data.save(tmp_path / "d.h5")
    assert main(["data", "stats", str(tmp_path / "d.h5"), "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["episodes"] == 3 and row["return_max"] == pytest.approx(10.0)


def test_data_stats_reads_the_forward_speed_beside_d4rls_file_of_that_level() -> None:
    """Walker2d's forward velocity is observation 8: its mean and spread, and D4RL's medium file's beside them."""
    from unio4.learning.data.statistics import dataset_statistics
    from unio4.learning.scores import D4RL_FORWARD_VELOCITY

    obs = torch.zeros(4, 17)
    obs[:, 8] = torch.tensor([1.0, 2.0, 3.0, 6.0])  # mean 3, population std sqrt(3.5)
    obs[:, 7] = 100.0  # a neighbour that must not be read
    ends = torch.tensor([False, False, False, True])
    meta = {"env": "Walker2d-v4", "level": "medium"}
    data = Dataset(obs, torch.zeros(4, 6), torch.ones(4), ends, torch.zeros_like(ends), obs, metadata=meta)
    stats = dataset_statistics(data)
    assert stats.speed_mean == pytest.approx(3.0) and stats.speed_std == pytest.approx(3.5**0.5)
    assert (stats.d4rl_speed_mean, stats.d4rl_speed_std) == D4RL_FORWARD_VELOCITY[("walker2d", "medium")]
    # a level D4RL has no file of, and a task without a known velocity entry: nothing is made up
    data.metadata = {"env": "Walker2d-v4", "level": "random"}
    assert dataset_statistics(data).d4rl_speed_mean is None and dataset_statistics(data).speed_mean == pytest.approx(3.0)
    assert dataset_statistics(data, "Pendulum-v1").speed_mean is None
