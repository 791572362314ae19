"""What a dataset holds, per episode: how many, how long, how good (``unio4 data stats``).

An offline method is only as good as what its data covers, so a regenerated D4RL-style file is
read the way D4RL's are described: transitions, episodes, and the spread of episode returns (as
D4RL-normalised scores when the task has reference returns). For Gymnasium's locomotion tasks it
also reads the forward speed over all transitions, beside the same statistic of D4RL's file of that
task and level: the one per-file statistic of D4RL's that is on record.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from unio4.learning.data.dataset import Dataset
from unio4.learning.scores import D4RL_FORWARD_VELOCITY, FORWARD_VELOCITY_INDEX, normalized_score, reference_returns, task_family


@dataclass(frozen=True)
class DatasetStatistics:
    """Counts and the spread of episode returns (and scores, where the task has references)."""

    transitions: int
    episodes: int
    terminals: int  # episodes that end in a true terminal (a fall), not a time-out
    mean_length: float
    return_min: float
    return_mean: float
    return_max: float
    score_min: float | None = None
    score_mean: float | None = None
    score_max: float | None = None
    speed_mean: float | None = None  # the torso's forward velocity over all transitions (locomotion tasks)
    speed_std: float | None = None
    d4rl_speed_mean: float | None = None  # the same over D4RL's file of this task and level
    d4rl_speed_std: float | None = None


def episode_returns(dataset: Dataset) -> torch.Tensor:
    """The undiscounted return of every episode, in file order."""
    ends = dataset.episode_ends()
    sums = torch.cumsum(dataset.rewards.double(), 0)[ends]
    return torch.diff(sums, prepend=sums.new_zeros(1))


def dataset_statistics(dataset: Dataset, env_id: str | None = None) -> DatasetStatistics:
    """Statistics of ``dataset``; ``env_id`` (default: the file's ``env`` metadata) selects the score references
    and the forward-velocity entry, the file's ``level`` metadata D4RL's file to set beside it.
    """
    if len(dataset) == 0:
        raise ValueError("the dataset holds no transitions")
    returns = episode_returns(dataset)
    env_id = env_id or dataset.metadata.get("env")
    scores = None
    if env_id is not None and reference_returns(env_id) is not None:
        scores = [normalized_score(env_id, float(r)) for r in (returns.min(), returns.mean(), returns.max())]
    speed: tuple[float | None, float | None] = (None, None)
    d4rl: tuple[float | None, float | None] = (None, None)
    family = task_family(env_id) if env_id is not None else ""
    index = FORWARD_VELOCITY_INDEX.get(family)
    if index is not None and dataset.observations.shape[1] > index:
        velocity = dataset.observations[:, index].double()
        speed = (float(velocity.mean()), float(velocity.std(correction=0)))
        d4rl = D4RL_FORWARD_VELOCITY.get((family, str(dataset.metadata.get("level"))), d4rl)
    return DatasetStatistics(
        transitions=len(dataset),
        episodes=len(returns),
        terminals=int(dataset.terminals.sum()),
        mean_length=len(dataset) / len(returns),
        return_min=float(returns.min()),
        return_mean=float(returns.mean()),
        return_max=float(returns.max()),
        score_min=scores[0] if scores else None,
        score_mean=scores[1] if scores else None,
        score_max=scores[2] if scores else None,
        speed_mean=speed[0],
        speed_std=speed[1],
        d4rl_speed_mean=d4rl[0],
        d4rl_speed_std=d4rl[1],
    )
