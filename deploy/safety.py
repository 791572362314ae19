"""The safety layer between the policy and the motors: target limits and the damping triggers.

Two jobs, both pure numpy:
- shape every PD target before it is sent: limit how far a new policy target may move from the
  last one (a rate, applied per policy step as the simulator applies actions), then, every tick,
  clip it to the joint limits (minus a margin) and so that the PD torque it asks for,
  ``Kp (q* - q) - Kd dq``, stays within the motor's torque limit;
- decide when to stop: tilt beyond a threshold, stale state (no new LowState for N ms),
  NaN/Inf anywhere in the state or the policy output, the remote's stop combo. The serial e-stop
  lives in :mod:`deploy.estop`. Any trigger latches damping mode (Kp 0, the manifest's ``damping_kd``,
  tau 0): the motors resist motion and the robot sinks slowly instead of collapsing or kicking.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from configs.loader import bounded
from deploy.protocol import LowState


@dataclass(frozen=True)
class SafetyConfig:
    """Thresholds of the safety layer (``safety:`` in a deploy config)."""

    max_tilt_rad: float = bounded(0.8, gt=0, lt=3.1416)  # angle between the base z axis and the vertical
    stale_ms: float = bounded(50.0, gt=0, le=1000)  # no new LowState for this long -> damping
    joint_margin_rad: float = bounded(0.02, ge=0, le=0.5)  # targets stay this far inside the joint limits
    max_target_rate: float = bounded(50.0, gt=0, le=100)  # rad/s a PD target may move (motors top out at 20-30 rad/s)
    torque_fraction: float = bounded(0.95, gt=0, le=1)  # of the torque limit a PD target may ask for
    stop_combo: tuple[str, ...] = ("L2", "B")  # remote buttons that stop the robot

    def __post_init__(self) -> None:
        if not 0 < self.max_tilt_rad < np.pi:
            raise ValueError("max_tilt_rad must be in (0, pi)")
        if self.stale_ms <= 0 or self.max_target_rate <= 0 or not 0 < self.torque_fraction <= 1:
            raise ValueError("stale_ms and max_target_rate must be > 0; torque_fraction in (0, 1]")


@dataclass(frozen=True)
class JointLimits:
    """Joint position and torque limits the targets are clipped to."""

    lower: np.ndarray
    upper: np.ndarray
    torque: np.ndarray


def tilt(quat: np.ndarray) -> float:
    """Angle (rad) between the body z axis and the world vertical, from a (w, x, y, z) quaternion."""
    x, y = quat[1], quat[2]
    cos_tilt = 1.0 - 2.0 * (x * x + y * y)
    return float(np.arccos(np.clip(cos_tilt, -1.0, 1.0)))


class SafetyMonitor:
    """Checks each tick's state; returns the reason to stop, or None."""

    def __init__(self, cfg: SafetyConfig) -> None:
        self.cfg = cfg
        self._last_tick: int | None = None
        self._last_fresh: float | None = None

    def check(self, state: LowState, now: float) -> str | None:
        """The reason to stop for this tick's ``state`` received at ``now`` (s), or None."""
        if self._last_tick != state.tick:
            self._last_tick, self._last_fresh = state.tick, now
        elif self._last_fresh is not None and (now - self._last_fresh) * 1e3 > self.cfg.stale_ms:
            return f"stale state: no new LowState for {(now - self._last_fresh) * 1e3:.0f} ms (limit {self.cfg.stale_ms:.0f} ms)"
        for name in ("quaternion", "gyroscope", "q", "dq"):
            values = getattr(state, name)
            if not np.all(np.isfinite(values)):
                return f"non-finite state: {name} = {np.array2string(values, precision=3)}"
        angle = tilt(state.quaternion)
        if angle > self.cfg.max_tilt_rad:
            return f"tilt {np.degrees(angle):.0f} deg > {np.degrees(self.cfg.max_tilt_rad):.0f} deg"
        if self.cfg.stop_combo and set(self.cfg.stop_combo) <= state.remote.buttons:
            return f"remote stop combo {'+'.join(self.cfg.stop_combo)}"
        return None


def rate_limit(cfg: SafetyConfig, target: np.ndarray, previous: np.ndarray, dt: float) -> np.ndarray:
    """``target`` moved at most ``max_target_rate * dt`` from ``previous`` (``dt``: time between them)."""
    step = cfg.max_target_rate * dt
    return np.clip(target, previous - step, previous + step)


def clip_targets(
    cfg: SafetyConfig, limits: JointLimits, target: np.ndarray, q: np.ndarray, dq: np.ndarray, kp: float, kd: float
) -> np.ndarray:
    """The nearest target to ``target`` inside the joint limits whose PD torque stays within the limits."""
    safe = target
    if kp > 0:
        tau_max = cfg.torque_fraction * limits.torque
        safe = np.clip(safe, q + (-tau_max + kd * dq) / kp, q + (tau_max + kd * dq) / kp)
    return np.clip(safe, limits.lower + cfg.joint_margin_rad, limits.upper - cfg.joint_margin_rad)
