"""The safety layer between the robot and the policy: what may come in, what may go out, when to stop.

Pure numpy. Three jobs:

- **Check every LowState before it is used** (:class:`SafetyMonitor`), the one the runtime connects
  on included: every value finite; joint angles within the robot description's limits plus
  ``state_joint_margin_rad``; joint velocities within ``joint_vel_factor`` x the motors' rated
  speed; gyro and accelerometer within what an IMU can report; a unit quaternion (a zero or
  scaled one would read as upright); and fresh: the tick must advance (a repeated, replayed or
  reordered packet does not count as new) and the sensor values must differ from the last fresh
  packet. No fresh state for ``stale_ms`` is a fault too. Tilt and the remote's stop combo also end
  a run.
- **Shape every PD target before it is sent**: limit how far a new policy target may move from
  the last one (a rate, applied per policy step as the simulator applies actions), then, every
  tick, clip it to the joint limits (minus a margin) and so that the PD torque it asks for,
  ``Kp (q* - q) - Kd dq``, stays within the motor's torque limit.
- **Check every LowCmd immediately before it is sent** (:func:`command_fault`, called by the SDK
  link itself): finite, targets within the joint limits, gains within the robot description's
  ``max_kp``/``max_kd``, feed-forward torque within the torque limits. A failing command is never
  sent; damping is.

Any trigger latches damping mode (Kp 0, ``damping_kd``, tau 0): the motors resist motion and the
robot sinks slowly instead of collapsing or kicking. The serial e-stop lives in :mod:`unio4.deploy.estop`.
All limits come from the robot description (``robots/<robot>/<robot>.yaml``), never from a bundle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from unio4.configs.loader import bounded, check_fields
from unio4.deploy.protocol import LowState
from unio4.robots.description import RobotDescription

TICK_WRAP = 1 << 32  # LowState.tick is a uint32


@dataclass(frozen=True)
class SafetyConfig:
    """Thresholds of the safety layer (``safety:`` in a deploy config)."""

    max_tilt_rad: float = bounded(0.8, gt=0, lt=np.pi)  # angle between the base z axis and the vertical
    stale_ms: float = bounded(50.0, gt=0, le=1000)  # no fresh LowState for this long -> damping
    # ... and none over this many ticks in a row: a runtime that was itself descheduled has sent nothing, so a
    # robot answering each command (the lockstep emulator) has had nothing to answer; a silent robot is caught
    # by stale_ms alone at 500 Hz (25 ticks in 50 ms)
    stale_ticks: int = bounded(5, ge=1, le=1000)
    joint_margin_rad: float = bounded(0.02, ge=0, le=0.5)  # targets stay this far inside the joint limits
    max_target_rate: float = bounded(50.0, gt=0, le=100)  # rad/s a PD target may move (motors top out at 20-30 rad/s)
    torque_fraction: float = bounded(0.95, gt=0, le=1)  # of the torque limit a PD target may ask for
    stop_combo: tuple[str, ...] = ("L2", "B")  # remote buttons that stop the robot
    # What a sane LowState may report. A joint angle this far outside its mechanical range, a joint
    # faster than this multiple of its motor's rated speed, or an IMU reading beyond its range is a
    # broken sensor or a forged packet, not the robot.
    state_joint_margin_rad: float = bounded(0.3, ge=0, le=1.0)
    joint_vel_factor: float = bounded(2.0, ge=1, le=10)
    max_gyro: float = bounded(35.0, gt=0, le=100)  # rad/s: the Go1's IMU reads up to 2000 deg/s
    max_accel: float = bounded(160.0, gt=0, le=1000)  # m/s^2: 16 g
    quat_norm_tolerance: float = bounded(0.05, gt=0, le=0.5)  # | |q| - 1 | above this: not an orientation

    def __post_init__(self) -> None:
        check_fields(self)  # the declared ranges, for a config built in Python as for one loaded from YAML


@dataclass(frozen=True)
class RobotLimits:
    """What the robot description allows: joint range, torque, speed, gains (SDK order)."""

    lower: np.ndarray
    upper: np.ndarray
    torque: np.ndarray
    velocity: np.ndarray
    max_kp: float
    max_kd: float
    damping_kd: float

    @classmethod
    def of(cls, robot: RobotDescription) -> RobotLimits:
        """The limits of ``robot``'s description."""
        c = robot.control
        return cls(robot.joint_lower, robot.joint_upper, robot.torque_limits, robot.velocity_limits, c.max_kp, c.max_kd, c.damping_kd)


def tilt(quat: np.ndarray) -> float:
    """Angle (rad) between the body z axis and the world vertical, from a unit (w, x, y, z) quaternion."""
    x, y = quat[1], quat[2]
    cos_tilt = 1.0 - 2.0 * (x * x + y * y)
    return float(np.arccos(np.clip(cos_tilt, -1.0, 1.0)))


def _show(values: np.ndarray) -> str:
    return np.array2string(np.asarray(values), precision=3, max_line_width=1000)


def state_fault(cfg: SafetyConfig, limits: RobotLimits, state: LowState) -> str | None:
    """Why ``state`` must not be used (non-finite, out of range, not an orientation), or None."""
    for name in ("quaternion", "gyroscope", "accelerometer", "rpy", "q", "dq", "tau_est", "foot_force"):
        values = np.asarray(getattr(state, name), dtype=np.float64)
        if not np.all(np.isfinite(values)):
            return f"non-finite state: {name} = {_show(values)}"
    if state.q.shape != limits.lower.shape or state.dq.shape != limits.lower.shape:
        return f"state: {state.q.shape[0]} joint angles, the robot has {limits.lower.shape[0]}"
    m = cfg.state_joint_margin_rad
    outside = (state.q < limits.lower - m) | (state.q > limits.upper + m)
    if outside.any():
        j = int(np.argmax(outside))
        return f"state: joint {j} angle {state.q[j]:.3g} rad outside [{limits.lower[j] - m:.3f}, {limits.upper[j] + m:.3f}]"
    too_fast = np.abs(state.dq) > cfg.joint_vel_factor * limits.velocity
    if too_fast.any():
        j = int(np.argmax(too_fast))
        return f"state: joint {j} velocity {state.dq[j]:.3g} rad/s beyond {cfg.joint_vel_factor * limits.velocity[j]:.1f}"
    if np.max(np.abs(state.gyroscope)) > cfg.max_gyro:
        return f"state: gyroscope {_show(state.gyroscope)} rad/s beyond {cfg.max_gyro:g}"
    if np.max(np.abs(state.accelerometer)) > cfg.max_accel:
        return f"state: accelerometer {_show(state.accelerometer)} m/s^2 beyond {cfg.max_accel:g}"
    norm = float(np.linalg.norm(state.quaternion))
    if abs(norm - 1.0) > cfg.quat_norm_tolerance:
        return f"state: quaternion {_show(state.quaternion)} has norm {norm:.3g}, not 1"
    return None


def _content(state: LowState) -> bytes:
    """The sensor values of a state (what must change between genuinely new packets)."""
    return b"".join(
        np.ascontiguousarray(v, dtype=np.float64).tobytes()
        for v in (state.q, state.dq, state.quaternion, state.gyroscope, state.accelerometer)
    )


class SafetyMonitor:
    """Checks each tick's state; returns the reason to stop, or None.

    After :meth:`check`, :attr:`fresh` says whether the state was new (the tick advanced and the
    sensor values changed); a runtime keeps using the last fresh state until a new one arrives or
    ``stale_ms`` passes with no fresh state over the last ``stale_ticks`` checks.
    """

    def __init__(self, cfg: SafetyConfig, limits: RobotLimits) -> None:
        self.cfg, self.limits = cfg, limits
        self._last_tick: int | None = None
        self._last_content: bytes | None = None
        self._last_fresh: float | None = None
        self._missed = 0  # checks in a row without a fresh state
        self.fresh = False

    def accept(self, state: LowState, now: float) -> str | None:
        """Validate a first state (the one connected on) and take it as the fresh reference."""
        fault = state_fault(self.cfg, self.limits, state)
        if fault is None:
            self._last_tick, self._last_content, self._last_fresh = state.tick, _content(state), now
        return fault

    def check(self, state: LowState, now: float) -> str | None:
        """The reason to stop for this tick's ``state`` received at ``now`` (s), or None."""
        fault = state_fault(self.cfg, self.limits, state)
        if fault is not None:
            self.fresh = False
            return fault
        advance = None if self._last_tick is None else (state.tick - self._last_tick) % TICK_WRAP
        content = _content(state)
        self.fresh = (advance is None or 0 < advance < TICK_WRAP // 2) and content != self._last_content
        self._missed = 0 if self.fresh else self._missed + 1
        if self.fresh:
            self._last_tick, self._last_content, self._last_fresh = state.tick, content, now
        elif self._last_fresh is not None and (now - self._last_fresh) * 1e3 > self.cfg.stale_ms and self._missed >= self.cfg.stale_ticks:
            return f"stale state: no new LowState for {(now - self._last_fresh) * 1e3:.0f} ms (limit {self.cfg.stale_ms:.0f} ms)"
        if not self.fresh:
            return None  # the caller keeps the last fresh state; tilt and buttons were judged on it
        angle = tilt(state.quaternion / np.linalg.norm(state.quaternion))
        if angle > self.cfg.max_tilt_rad:
            return f"tilt {np.degrees(angle):.0f} deg > {np.degrees(self.cfg.max_tilt_rad):.0f} deg"
        if self.cfg.stop_combo and set(self.cfg.stop_combo) <= state.remote.buttons:
            return f"remote stop combo {'+'.join(self.cfg.stop_combo)}"
        return None


def command_fault(
    limits: RobotLimits, q: np.ndarray, kp: float, kd: float, dq: np.ndarray | None = None, tau: np.ndarray | None = None
) -> str | None:
    """Why a servo command must not be sent (non-finite, target out of range, gains or torque too big), or None."""
    n = limits.lower.shape[0]
    fields = {"q": q, "dq": np.zeros(n) if dq is None else dq, "tau": np.zeros(n) if tau is None else tau}
    for name, values in fields.items():
        values = np.asarray(values, dtype=np.float64)
        if values.shape != (n,) or not np.all(np.isfinite(values)):
            return f"command {name} = {_show(values)}: expected {n} finite values"
    if not (np.isfinite(kp) and np.isfinite(kd)) or not 0.0 <= kp <= limits.max_kp or not 0.0 <= kd <= limits.max_kd:
        return f"command gains Kp {kp:g}, Kd {kd:g}: expected 0 <= Kp <= {limits.max_kp:g}, 0 <= Kd <= {limits.max_kd:g}"
    outside = (fields["q"] < limits.lower) | (fields["q"] > limits.upper)
    if kp > 0 and outside.any():
        j = int(np.argmax(outside))
        return f"command target of joint {j}: {q[j]:.3g} rad outside [{limits.lower[j]:.3f}, {limits.upper[j]:.3f}]"
    if np.any(np.abs(fields["tau"]) > limits.torque):
        return f"command feed-forward torque {_show(fields['tau'])} beyond the limits {_show(limits.torque)}"
    if np.any(np.abs(fields["dq"]) > limits.velocity):
        return f"command velocity {_show(fields['dq'])} beyond the rated speeds"
    return None


def limit_step(xp: Any, target: Any, previous: Any, max_step: float) -> Any:
    """``target`` moved at most ``max_step`` from ``previous``, in numpy or torch (``xp``).

    The simulator shapes a policy's targets with this and :func:`within_joint_range`, as this layer
    does on the robot: a policy trained on unshaped targets learns to ask for targets past the
    joint limits (more torque near the limit) and walks slower on the robot than in simulation.
    """
    return xp.clip(target, previous - max_step, previous + max_step)


def within_joint_range(xp: Any, target: Any, lower: Any, upper: Any, margin: float) -> Any:
    """``target`` clipped to ``margin`` inside the joint range [``lower``, ``upper``], numpy or torch."""
    return xp.clip(target, lower + margin, upper - margin)


def rate_limit(cfg: SafetyConfig, target: np.ndarray, previous: np.ndarray, dt: float) -> np.ndarray:
    """``target`` moved at most ``max_target_rate * dt`` from ``previous`` (``dt``: time between them)."""
    return limit_step(np, target, previous, cfg.max_target_rate * dt)


def clip_targets(
    cfg: SafetyConfig, limits: RobotLimits, target: np.ndarray, q: np.ndarray, dq: np.ndarray, kp: float, kd: float
) -> np.ndarray:
    """The nearest target to ``target`` inside the joint limits whose PD torque stays within the limits."""
    safe = target
    if kp > 0:
        tau_max = cfg.torque_fraction * limits.torque
        safe = np.clip(safe, q + (-tau_max + kd * dq) / kp, q + (tau_max + kd * dq) / kp)
    return within_joint_range(np, safe, limits.lower, limits.upper, cfg.joint_margin_rad)
