"""The on-robot check of a session's bundles: a session never leaves the robot worse than it found it.

The gate judges a new bundle in simulation, which is not the robot. So a bundle the gate accepts is a
*candidate*: before it becomes current it walks on the robot with its mean action at the check commands
(in identify mode these are the next iteration's identification walks, so the check costs no extra robot
time; the last iteration's candidate gets a final verification walk). Its speed error there is compared
with that of the last *verified* bundle (the session's start bundle, measured by the first iteration's
walks, or the last candidate that passed); one that tracks worse by more than the walks' noise is rolled
back, and the session says so.

The noise is measured on the walks themselves: each walk's steady part is cut into blocks of
``block_s`` seconds and the standard error of its mean speed is the spread of the block means over
sqrt(blocks). A candidate is worse when its error exceeds the verified one's by more than
``sigmas`` combined standard errors plus ``min_increase``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from unio4.configs.loader import bounded, check_fields
from unio4.learning.robot.identify import IdentifyConfig, forward_speeds
from unio4.sim.config import TaskConfig


@dataclass(frozen=True)
class RobotCheckConfig:
    """How a candidate bundle is verified on the robot (``session.check``)."""

    enabled: bool = True  # False: a bundle the gate accepts becomes current unwalked (the gate alone)
    # Forward speeds (m/s) walked, one mean-action walk each. None: the identification commands in identify mode
    # (the walks are shared), else the session command's forward speed (or the identification commands without one).
    commands: tuple[float, ...] | None = bounded(None, ge=-2, le=2)
    block_s: float = bounded(1.0, gt=0, le=60)  # block length for the walks' standard error
    sigmas: float = bounded(2.0, ge=0, le=10)  # standard errors of tolerance
    min_increase: float = bounded(0.02, ge=0, le=1)  # m/s tolerated on top: walk-to-walk differences the blocks do not see

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass(frozen=True)
class WalkMeasure:
    """A bundle's mean-action walks on the robot: mean |forward speed held - command| and its standard error."""

    bundle: str
    checkpoint: str
    error: float
    se: float
    walks: int
    iteration: int

    def as_dict(self) -> dict[str, Any]:
        """The fields, for the session's state file."""
        return dict(self.__dict__)


def measure_walks(runs: list[Path], task: TaskConfig, block_s: float) -> tuple[float, float]:
    """Speed error and standard error over the walks ``runs`` (after each walk's first ``IdentifyConfig.skip_s``).
    Walks that stopped before their steady part are left out; none left: (nan, nan).
    """
    errors, variances = [], []
    for run in runs:
        vx, speeds, dt = forward_speeds(run, task, IdentifyConfig().skip_s)
        if len(speeds) == 0:
            continue
        errors.append(abs(float(np.mean(speeds)) - vx))
        variances.append(block_standard_error(speeds, max(1, int(round(block_s / dt)))) ** 2)
    if not errors:
        return float("nan"), float("nan")
    return float(np.mean(errors)), math.sqrt(sum(variances)) / len(errors)


def block_standard_error(x: np.ndarray, block: int) -> float:
    """Standard error of the mean of a correlated series, from the spread of its means over whole blocks
    (0 when fewer than two blocks fit: no noise measurable, the tolerance's floor then decides).
    """
    n = len(x) // block
    if n < 2:
        return 0.0
    means = x[: n * block].reshape(n, block).mean(axis=1)
    return float(means.std(ddof=1) / math.sqrt(n))


def tolerance(candidate: WalkMeasure, verified: WalkMeasure, cfg: RobotCheckConfig) -> float:
    """How much more speed error than ``verified`` the candidate may show and still count as no worse."""
    return cfg.min_increase + cfg.sigmas * math.hypot(candidate.se, verified.se)


def walks_worse(candidate: WalkMeasure, verified: WalkMeasure, cfg: RobotCheckConfig) -> bool:
    """Whether the candidate tracks worse on the robot than the verified bundle, beyond the walks' noise
    (a candidate none of whose walks reached its steady part counts as worse: nothing verified it).
    """
    if not math.isfinite(candidate.error):
        return True
    return candidate.error > verified.error + tolerance(candidate, verified, cfg)
