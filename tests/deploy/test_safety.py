"""The safety layer's triggers and target limits (deploy/safety.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from unio4.deploy.protocol import LowState, Remote, encode_remote
from unio4.deploy.safety import RobotLimits, SafetyConfig, SafetyMonitor, clip_targets, command_fault, rate_limit, tilt
from unio4.robots.description import RobotDescription

GO1_POSE = np.array([-0.1, 0.8, -1.5, 0.1, 0.8, -1.5, -0.1, 1.0, -1.5, 0.1, 1.0, -1.5])


def _state(tick: int = 1, quat: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0), buttons: frozenset[str] = frozenset()) -> LowState:
    """A sane standing state whose joint angles differ with ``tick`` (so each tick is new data)."""
    z3 = np.zeros(3)
    remote = encode_remote(Remote(buttons))
    q = GO1_POSE + 1e-4 * (tick % 1000)
    accel = np.array([0, 0, 9.81])
    return LowState(tick, np.array(quat), z3, accel, np.zeros(3), q, np.zeros(12), np.zeros(12), np.zeros(4), wireless_remote=remote)


def _rolled(angle: float) -> tuple[float, ...]:
    return (math.cos(angle / 2), math.sin(angle / 2), 0.0, 0.0)


def test_tilt_of_rolled_and_pitched_bases() -> None:
    assert tilt(np.array([1.0, 0, 0, 0])) == pytest.approx(0.0)
    assert tilt(np.array(_rolled(0.5))) == pytest.approx(0.5)
    pitched = np.array([math.cos(0.3), 0.0, math.sin(0.3), 0.0])
    assert tilt(pitched) == pytest.approx(0.6)
    yawed = np.array([math.cos(1.0), 0.0, 0.0, math.sin(1.0)])
    assert tilt(yawed) == pytest.approx(0.0, abs=1e-7)  # heading is not tilt


def test_monitor_triggers(go1: RobotDescription) -> None:
    cfg = SafetyConfig(max_tilt_rad=0.8, stale_ms=50.0)
    m = SafetyMonitor(cfg, RobotLimits.of(go1))
    assert m.check(_state(1), now=0.0) is None
    assert m.check(_state(2, _rolled(0.7)), now=0.002) is None
    assert "tilt 52 deg > 46 deg" in (m.check(_state(3, _rolled(0.9)), now=0.004) or "")
    assert m.check(_state(4), now=0.006) is None and m.fresh
    for now in (0.020, 0.030, 0.040, 0.050):
        assert m.check(_state(4), now=now) is None and not m.fresh  # the same tick for 44 ms: still fresh enough
    assert "stale state: no new LowState for 54 ms" in (m.check(_state(4), now=0.060) or "")
    bad = _state(5)
    bad.dq[3] = np.nan
    assert (m.check(bad, now=0.062) or "").startswith("non-finite state: dq")
    inf = _state(6)
    inf.quaternion[0] = np.inf
    assert (m.check(inf, now=0.064) or "").startswith("non-finite state: quaternion")
    assert m.check(_state(7, buttons=frozenset({"L2"})), now=0.066) is None
    assert m.check(_state(8, buttons=frozenset({"L2", "B", "up"})), now=0.068) == "remote stop combo L2+B"


def test_a_runtime_that_stalled_is_not_a_silent_robot(go1: RobotDescription) -> None:
    """A runtime descheduled for 200 ms sent no command for a lockstep robot to answer: the first check after the
    gap is not stale, and a state fresh at the next tick goes on; a robot silent for stale_ticks checks is stale."""
    m = SafetyMonitor(SafetyConfig(stale_ms=50.0, stale_ticks=5), RobotLimits.of(go1))
    assert m.accept(_state(1), 0.0) is None
    assert m.check(_state(1), now=0.200) is None and not m.fresh  # the runtime's first tick after its stall
    assert m.check(_state(2), now=0.202) is None and m.fresh  # the robot answered the command sent then
    reasons = [m.check(_state(2), now=0.260 + 0.002 * k) for k in range(5)]
    assert reasons[:4] == [None] * 4 and (reasons[4] or "").startswith("stale state: no new LowState for 66 ms"), reasons


def test_finite_garbage_is_a_fault(go1: RobotDescription) -> None:
    """Values a sane robot cannot report end the run, each with a reason naming what is wrong."""
    cfg, limits = SafetyConfig(), RobotLimits.of(go1)
    cases = {
        "joint 4 angle 1e+30 rad outside": lambda s: s.q.__setitem__(4, 1e30),
        "joint 2 velocity 1e+06 rad/s beyond 40.1": lambda s: s.dq.__setitem__(2, 1e6),
        "gyroscope": lambda s: s.gyroscope.__setitem__(0, 100.0),
        "accelerometer": lambda s: s.accelerometer.__setitem__(2, 1e4),
        "quaternion [0. 0. 0. 0.] has norm 0": lambda s: s.quaternion.__setitem__(slice(None), 0.0),
        "quaternion [2. 0. 0. 0.] has norm 2": lambda s: s.quaternion.__setitem__(0, 2.0),
        "non-finite state: rpy": lambda s: s.rpy.__setitem__(1, np.nan),
        "non-finite state: accelerometer": lambda s: s.accelerometer.__setitem__(1, -np.inf),
    }
    for expected, corrupt in cases.items():
        state = _state(2)
        corrupt(state)
        monitor = SafetyMonitor(cfg, limits)
        assert monitor.accept(_state(1), 0.0) is None
        reason = monitor.check(state, 0.002) or ""
        assert expected in reason, (expected, reason)
        assert monitor.accept(state, 0.0) == reason  # a connect state is judged the same way


def test_replayed_old_packets_are_stale(go1: RobotDescription) -> None:
    """Two old packets sent alternately (ticks going back and forth) never count as new data."""
    m = SafetyMonitor(SafetyConfig(stale_ms=50.0), RobotLimits.of(go1))
    assert m.accept(_state(100), 0.0) is None
    old_a, old_b = _state(90), _state(91)
    reasons = [m.check(old_a if k % 2 else old_b, now=0.002 * k) for k in range(1, 40)]
    assert not m.fresh
    assert reasons[-1] is not None and reasons[-1].startswith("stale state")
    # an advancing tick carrying the very same sensor values is not new data either
    m = SafetyMonitor(SafetyConfig(stale_ms=50.0), RobotLimits.of(go1))
    frozen = _state(5)
    assert m.accept(frozen, 0.0) is None
    for k in range(1, 40):
        copy = _state(5)
        copy.tick = 5 + k
        reason = m.check(copy, now=0.002 * k)
    assert reason is not None and reason.startswith("stale state")
    # the uint32 tick wraps around: 2**32 - 1 -> 0 is an advance
    m = SafetyMonitor(SafetyConfig(), RobotLimits.of(go1))
    assert m.accept(_state((1 << 32) - 1), 0.0) is None
    assert m.check(_state(0), 0.002) is None and m.fresh


def test_command_check_refuses_what_must_not_reach_the_motors(go1: RobotDescription) -> None:
    limits = RobotLimits.of(go1)
    q = go1.default_joint_pos
    assert command_fault(limits, q, 20.0, 0.5) is None
    assert command_fault(limits, np.full(12, 10.0), 0.0, 2.0) is None  # damping: the target is not used
    nan_q = q.copy()
    nan_q[0] = np.nan
    assert "command q" in (command_fault(limits, nan_q, 20.0, 0.5) or "")
    assert "outside" in (command_fault(limits, q + np.r_[np.zeros(11), 5.0], 20.0, 0.5) or "")
    assert "gains Kp 2000" in (command_fault(limits, q, 2000.0, 0.5) or "")
    assert "gains Kp 20, Kd nan" in (command_fault(limits, q, 20.0, float("nan")) or "")
    assert "gains Kp -1" in (command_fault(limits, q, -1.0, 0.5) or "")
    assert "torque" in (command_fault(limits, q, 20.0, 0.5, tau=np.full(12, 100.0)) or "")
    assert "velocity" in (command_fault(limits, q, 20.0, 0.5, dq=np.full(12, 1e3)) or "")
    assert "12 finite values" in (command_fault(limits, q[:6], 20.0, 0.5) or "")


def test_targets_stay_within_joint_and_torque_limits(go1: RobotDescription) -> None:
    cfg = SafetyConfig(joint_margin_rad=0.02, torque_fraction=0.9)
    limits = RobotLimits.of(go1)
    rng = np.random.default_rng(0)
    kp, kd = 20.0, 0.5
    for _ in range(200):
        q = rng.uniform(go1.joint_lower, go1.joint_upper)
        dq = rng.normal(0, 10, 12)
        target = rng.normal(0, 5, 12)
        safe = clip_targets(cfg, limits, target, q, dq, kp, kd)
        assert np.all(safe >= go1.joint_lower + 0.02 - 1e-12) and np.all(safe <= go1.joint_upper - 0.02 + 1e-12)
        torque = kp * (safe - q) - kd * dq
        inside = (safe > go1.joint_lower + 0.02) & (safe < go1.joint_upper - 0.02)  # where the joint clip did not win
        assert np.all(np.abs(torque[inside]) <= 0.9 * go1.torque_limits[inside] + 1e-9)
    # a target already safe passes through unchanged
    q = go1.default_joint_pos
    assert np.array_equal(clip_targets(cfg, limits, q + 0.1, q, np.zeros(12), kp, kd), q + 0.1)


def test_rate_limit() -> None:
    cfg = SafetyConfig(max_target_rate=50.0)
    prev = np.zeros(3)
    np.testing.assert_allclose(rate_limit(cfg, np.array([2.0, -0.5, 0.3]), prev, 0.02), [1.0, -0.5, 0.3])
