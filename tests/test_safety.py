"""The safety layer's triggers and target limits, and the serial e-stop over pyserial's loop://."""

from __future__ import annotations

import math

import numpy as np
import pytest

from deploy.estop import EStopConfig, SerialEStop
from deploy.protocol import LowState, Remote, encode_remote
from deploy.safety import JointLimits, SafetyConfig, SafetyMonitor, clip_targets, rate_limit, tilt
from robots.description import RobotDescription


def _state(tick: int = 1, quat: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0), buttons: frozenset[str] = frozenset()) -> LowState:
    z3, z12 = np.zeros(3), np.zeros(12)
    remote = encode_remote(Remote(buttons))
    return LowState(tick, np.array(quat), z3, np.array([0, 0, 9.81]), z3, z12.copy(), z12.copy(), z12, np.zeros(4), wireless_remote=remote)


def _rolled(angle: float) -> tuple[float, ...]:
    return (math.cos(angle / 2), math.sin(angle / 2), 0.0, 0.0)


def test_tilt_of_rolled_and_pitched_bases() -> None:
    assert tilt(np.array([1.0, 0, 0, 0])) == pytest.approx(0.0)
    assert tilt(np.array(_rolled(0.5))) == pytest.approx(0.5)
    pitched = np.array([math.cos(0.3), 0.0, math.sin(0.3), 0.0])
    assert tilt(pitched) == pytest.approx(0.6)
    yawed = np.array([math.cos(1.0), 0.0, 0.0, math.sin(1.0)])
    assert tilt(yawed) == pytest.approx(0.0, abs=1e-7)  # heading is not tilt


def test_monitor_triggers() -> None:
    cfg = SafetyConfig(max_tilt_rad=0.8, stale_ms=50.0)
    m = SafetyMonitor(cfg)
    assert m.check(_state(1), now=0.0) is None
    assert m.check(_state(2, _rolled(0.7)), now=0.002) is None
    assert "tilt 52 deg > 46 deg" in (m.check(_state(3, _rolled(0.9)), now=0.004) or "")
    assert m.check(_state(4), now=0.006) is None
    assert m.check(_state(4), now=0.050) is None  # the same tick for 44 ms: still fresh enough
    assert "stale state: no new LowState for 54 ms" in (m.check(_state(4), now=0.060) or "")
    bad = _state(5)
    bad.dq[3] = np.nan
    assert (m.check(bad, now=0.062) or "").startswith("non-finite state: dq")
    inf = _state(6)
    inf.quaternion[0] = np.inf
    assert (m.check(inf, now=0.064) or "").startswith("non-finite state: quaternion")
    assert m.check(_state(7, buttons=frozenset({"L2"})), now=0.066) is None
    assert m.check(_state(8, buttons=frozenset({"L2", "B", "up"})), now=0.068) == "remote stop combo L2+B"


def test_targets_stay_within_joint_and_torque_limits(go1: RobotDescription) -> None:
    cfg = SafetyConfig(joint_margin_rad=0.02, torque_fraction=0.9)
    limits = JointLimits(go1.joint_lower, go1.joint_upper, go1.torque_limits)
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


def test_estop_heartbeat_and_stop_byte_over_loop() -> None:
    estop = SerialEStop(EStopConfig(url="loop://", heartbeat_timeout_s=0.1), now=0.0)
    port = estop.port
    port.write(b"H")
    assert estop.poll(0.05) is None
    port.write(b"HH")
    assert estop.poll(0.14) is None and estop.heartbeats == 3
    assert estop.poll(0.20) is None  # 60 ms since the last heartbeat
    reason = estop.poll(0.30)
    assert reason is not None and reason.startswith("e-stop heartbeat lost: none for 160 ms")
    port.write(b"HS")
    assert estop.poll(0.31) == "e-stop pressed (loop://)"
    estop.close()


def test_estop_that_cannot_open_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"e-stop '/dev/nonexistent-estop': cannot open"):
        SerialEStop(EStopConfig(url="/dev/nonexistent-estop"), now=0.0)
