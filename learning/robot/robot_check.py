"""The on-robot check of a session's bundles: a session never leaves the robot worse than it found it.

The gate judges a new bundle in simulation, which is not the robot. So a bundle the gate accepts is a
*candidate*: before it becomes current it walks on the robot with its mean action at the check commands:
forward (in identify mode the next iteration's identification walks, at no extra robot time), sideways,
turning and forward while turning (``extra_commands``), one walk each; the last iteration's candidate gets a final iteration of
these walks. Its tracking error there is compared with that of the last *verified* bundle (the session's
start bundle, measured by the first iteration's walks, or the last candidate that passed); one that
tracks worse by more than the walks' noise is rolled back, and the session says so.

A walk's error is the distance between the command and what the robot held over its steady part (leg
odometry's base velocity, the gyro's yaw rate): |(dvx, dvy, ``yaw_lever`` x dyaw-rate)|, the yaw rate
counted as the speed it gives at about the hips; the check's error is the mean over walks. The noise
is measured on the walks themselves: each walk's steady part is cut into blocks of ``block_s`` seconds,
and the standard error of its error is the spread of the blocks' errors over sqrt(blocks). A candidate
is worse when its error exceeds the verified one's by more than ``sigmas`` combined standard errors plus
``min_increase``.

Leg odometry reads a walking robot's speed off by a factor nobody on the robot can measure (0.74-1.05 x
the true speed in the walks measured: docs/benchmarks/go1-sessions.md, "Leg odometry's scale and the
check"), and a speed read low makes a bundle that overshoots its command look accurate. So the errors are compared at every scale in
``odometry_scale`` (odometry's reading / the true speed): the speeds are divided by it, and a candidate
worse at any one of them is worse. Where a tracking camera read both bundles' walks (``tracker`` in the session:
:mod:`unio4.deploy.tracker`), its speeds are compared instead, at their own noise, as the Uni-O4 authors measured
their robot's velocity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from unio4.configs.loader import bounded, check_fields
from unio4.learning.robot.identify import IdentifyConfig, all_tracked, steady_motions
from unio4.sim.config import TaskConfig


@dataclass(frozen=True)
class RobotCheckConfig:
    """How a candidate bundle is verified on the robot (``session.check``)."""

    enabled: bool = True  # False: a bundle the gate accepts becomes current unwalked (the gate alone)
    # Forward speeds (m/s) walked, one mean-action walk each. None: the identification commands in identify mode
    # (the walks are shared), else the session command's forward speed (or the identification commands without one).
    commands: tuple[float, ...] | None = bounded(None, ge=-2, le=2)
    # Walked too, one each: (vx m/s, vy m/s, yaw rate rad/s), the behaviours forward walks do not show: sideways,
    # turning, and forward while turning (a candidate can gain on each alone and lose on the two at once:
    # docs/benchmarks/go1-sessions.md, "A tracking camera for the check").
    extra_commands: tuple[tuple[float, float, float], ...] = bounded(((0.0, 0.3, 0.0), (0.0, 0.0, 0.6), (0.5, 0.0, 0.4)), ge=-2, le=2)
    yaw_lever: float = bounded(0.25, ge=0, le=2)  # m: a yaw-rate error counts as this times it, in m/s
    block_s: float = bounded(1.0, gt=0, le=60)  # block length for the walks' standard error
    sigmas: float = bounded(2.0, ge=0, le=10)  # standard errors of tolerance
    min_increase: float = bounded(0.005, ge=0, le=1)  # m/s tolerated on top: walk-to-walk differences the blocks do not see
    # leg odometry's speed reading / the true speed, lowest and highest: the range the comparison must hold over
    odometry_scale: tuple[float, float] = bounded((0.75, 1.05), gt=0, le=2)
    scale_points: int = bounded(7, ge=1, le=50)  # scales compared, evenly spread over odometry_scale
    # A walk counts as tracked when a tracking camera read at least this share of its steady part's steps; where both
    # bundles' walks all were, the camera's speeds are compared (no scale range: the camera measures the trunk itself).
    min_tracked: float = bounded(0.9, gt=0, le=1)

    def __post_init__(self) -> None:
        check_fields(self)
        if self.odometry_scale[0] > self.odometry_scale[1]:
            raise ValueError(f"odometry_scale: expected [low, high] with low <= high, got {list(self.odometry_scale)}")

    def scales(self) -> np.ndarray:
        """The odometry scales the comparison is made at."""
        return np.linspace(*self.odometry_scale, self.scale_points)


@dataclass(frozen=True)
class WalkReadings:
    """A bundle's check walks, read: the tracking error (mean over walks), its standard error and the error at each of
    the check's odometry scales, by leg odometry; the error and its standard error by the tracking camera (nan: the
    walks were not all tracked).
    """

    error: float
    se: float
    scaled: tuple[float, ...] = ()  # empty: unmeasured
    tracked: float = math.nan
    tracked_se: float = math.nan


@dataclass(frozen=True)
class WalkMeasure(WalkReadings):
    """A bundle's mean-action walks on the robot, read (:class:`WalkReadings`), and which bundle and iteration walked."""

    bundle: str = ""
    checkpoint: str = ""
    walks: int = 0
    iteration: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The fields, for the session's state file."""
        return dict(self.__dict__)


def measure_walks(runs: list[Path], task: TaskConfig, cfg: RobotCheckConfig) -> WalkReadings:
    """The check walks ``runs`` read (after each walk's first ``IdentifyConfig.skip_s``). Walks that stopped before
    their steady part are left out; none left: nan.
    """
    helds = steady_motions(runs, task, IdentifyConfig().skip_s, cfg.min_tracked)
    if not helds:
        return WalkReadings(math.nan, math.nan)
    error, se, scaled = read_walks([(h.command, h.odometry, h.dt) for h in helds], cfg, cfg.scales())
    if not all_tracked(helds):
        return WalkReadings(error, se, scaled)
    tracked, tracked_se, _ = read_walks([(h.command, h.tracked, h.dt) for h in helds if h.tracked is not None], cfg, np.ones(0))
    return WalkReadings(error, se, scaled, tracked, tracked_se)


Walk = tuple[np.ndarray, np.ndarray, float]  # command (3,), what the robot held (T, 3), the policy step (s)


def read_walks(walks: list[Walk], cfg: RobotCheckConfig, scales: np.ndarray) -> tuple[float, float, tuple[float, ...]]:
    """Tracking error, its standard error and the error at each of ``scales`` over ``walks`` (command, held (T, 3),
    policy step): each walk's error from its mean, its noise from the spread of its ``block_s`` blocks.
    """
    errors, variances, scaled = [], [], []
    weights = np.array([1.0, 1.0, cfg.yaw_lever])
    for command, held, dt in walks:
        mean = held.mean(axis=0)
        errors.append(float(np.linalg.norm((mean - command) * weights)))
        blocks = block_means(held, max(1, int(round(cfg.block_s / dt))))
        variances.append(standard_error(np.linalg.norm((blocks - command) * weights, axis=1)) ** 2)
        scaled.append([float(np.linalg.norm((rescaled(mean, s) - command) * weights)) for s in scales])
    return float(np.mean(errors)), math.sqrt(sum(variances)) / len(errors), tuple(float(e) for e in np.mean(scaled, axis=0))


def rescaled(held: np.ndarray, scale: float) -> np.ndarray:
    """A held (vx, vy, yaw rate) with odometry's speeds divided by ``scale`` (the gyro's yaw rate left as read)."""
    return held * np.array([1.0 / scale, 1.0 / scale, 1.0])


def block_means(x: np.ndarray, block: int) -> np.ndarray:
    """The means of ``x`` (T, ...) over its whole blocks of ``block`` rows (a trailing part block is dropped)."""
    n = len(x) // block
    return x[: n * block].reshape(n, block, *x.shape[1:]).mean(axis=1)


def standard_error(samples: np.ndarray) -> float:
    """Standard error of the mean of ``samples`` (block values, taken as independent); 0 with fewer than two,
    where no noise is measurable and the tolerance's floor decides.
    """
    return float(samples.std(ddof=1) / math.sqrt(len(samples))) if len(samples) >= 2 else 0.0


def tolerance(candidate: WalkMeasure, verified: WalkMeasure, cfg: RobotCheckConfig) -> float:
    """How much more speed error (by leg odometry) than ``verified`` the candidate may show and still count as no worse."""
    return cfg.min_increase + cfg.sigmas * math.hypot(candidate.se, verified.se)


def worst_comparison(candidate: WalkMeasure, verified: WalkMeasure, cfg: RobotCheckConfig) -> tuple[float, float, float]:
    """The odometry scale at which the candidate compares worst with the verified bundle: (scale, candidate's
    error, verified's error); scale 1 is the odometry as read.
    """
    rows = [(1.0, candidate.error, verified.error)]
    if candidate.scaled and len(candidate.scaled) == len(verified.scaled):
        rows += list(zip(cfg.scales().tolist(), candidate.scaled, verified.scaled, strict=True))
    return max(rows, key=lambda r: r[1] - r[2])


def comparison(candidate: WalkMeasure, verified: WalkMeasure, cfg: RobotCheckConfig) -> tuple[str, float, float, float]:
    """What the verdict compares: (how the speeds were read, the candidate's error, the verified bundle's, the
    tolerance). By the tracking camera where both bundles' walks were tracked; else by leg odometry at its worst scale.
    """
    if math.isfinite(candidate.tracked) and math.isfinite(verified.tracked):
        allowed = cfg.min_increase + cfg.sigmas * math.hypot(candidate.tracked_se, verified.tracked_se)
        return "by the tracking camera", candidate.tracked, verified.tracked, allowed
    scale, mine, theirs = worst_comparison(candidate, verified, cfg)
    how = "by leg odometry" if math.isclose(scale, 1.0) else f"with odometry read as {scale:.2f} x the true speed"
    return how, mine, theirs, tolerance(candidate, verified, cfg)


def walks_worse(candidate: WalkMeasure, verified: WalkMeasure, cfg: RobotCheckConfig) -> bool:
    """Whether the candidate tracks worse on the robot than the verified bundle, beyond the walks' noise (at any
    odometry scale, where no tracking camera read both); a candidate none of whose walks reached its steady part
    counts as worse: nothing verified it.
    """
    if not math.isfinite(candidate.error):
        return True
    _, mine, theirs, allowed = comparison(candidate, verified, cfg)
    return mine > theirs + allowed
