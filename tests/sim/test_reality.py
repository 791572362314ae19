"""Reality-gap profiles: each knob moves what the SDK bytes report (or the robot's true motion) the way it should.

The emulator runs in-process; its LowStates go over a real UDP socket to this test and are decoded
with the SDK's byte layout, so the numbers checked are the ones a client would read.
"""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest

from unio4.configs.loader import load, resolve_config_path
from unio4.deploy import protocol
from unio4.sim.emulator import Emulator, EmulatorConfig, quat_to_rpy
from unio4.sim.reality import MotorModel, RealityConfig, SensorModel, add_point_mass, matrix_to_quat

ROOT = Path(__file__).resolve().parents[2]


N = 12


class Bench:
    """An in-process emulator whose LowStates a test socket receives."""

    def __init__(self, reality: RealityConfig, seed: int = 0) -> None:
        self.emu = Emulator(EmulatorConfig(port=0, reality=reality, seed=seed))
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(1.0)
        self.emu.client = self.sock.getsockname()
        self.default = self.emu.robot.default_joint_pos

    def command(self, q: np.ndarray, kp: float, kd: float = 0.5) -> None:
        zeros = np.zeros(N)
        self.emu.command = protocol.LowCmd(
            np.full(N, protocol.MODE_SERVO, np.uint8), np.asarray(q, float), zeros, zeros, np.full(N, kp), np.full(N, kd)
        )

    def run(self, seconds: float) -> list[protocol.LowState]:
        """Tick for ``seconds``; every LowState that arrived, decoded."""
        states = []
        for _ in range(round(seconds / self.emu.dt)):
            self.emu._physics_tick()
            self.emu._send_state()
            self.sock.setblocking(False)
            try:
                while True:
                    states.append(protocol.decode_low_state(self.sock.recv(4096)))
            except BlockingIOError:
                pass
        return states

    def stand(self) -> list[protocol.LowState]:
        """Stand up from lying (stiff, then the trained gains) and hold the default pose."""
        self.command(self.default, kp=40.0, kd=1.0)
        self.run(1.0)
        self.command(self.default, kp=20.0)
        return self.run(1.5)

    def close(self) -> None:
        self.emu.sock.close()
        self.sock.close()


def standing(reality: RealityConfig) -> tuple[float, np.ndarray, Bench]:
    """Base height (truth) and the reported joint angles' mean error from the held default pose, over the last 0.5 s."""
    bench = Bench(reality)
    states = bench.stand()[-250:]
    height = bench.emu.sim.base_pos[2]
    error = np.mean([s.q - bench.default for s in states], axis=0)
    return height, error, bench


def test_a_payload_and_weak_motors_lower_the_base_under_the_same_pd_hold() -> None:
    h0, e0, b0 = standing(RealityConfig())
    h_load, e_load, b1 = standing(RealityConfig(payload_kg=5.0))
    h_weak, e_weak, b2 = standing(RealityConfig(motor=MotorModel(strength=0.7)))
    for b in (b0, b1, b2):
        b.close()
    assert h_load < h0 - 0.01 and h_weak < h0 - 0.01, (h0, h_load, h_weak)
    knees = slice(2, None, 3)  # calves fold further under load: the reported angle drifts from the target
    assert np.abs(e_load[knees]).mean() > np.abs(e0[knees]).mean() + 0.02
    assert np.abs(e_weak[knees]).mean() > np.abs(e0[knees]).mean() + 0.02


def test_a_torque_lag_slows_the_reported_joint_response() -> None:
    moved = []
    for reality in (RealityConfig(), RealityConfig(motor=MotorModel(lag_s=0.03))):
        bench = Bench(reality)
        bench.stand()
        start = bench.run(0.002)[-1].q
        target = bench.default.copy()
        target[1::3] += 0.3  # every thigh forward
        bench.command(target, kp=20.0)
        moved.append(float(np.mean(bench.run(0.03)[-1].q[1::3] - start[1::3])))
        bench.close()
    assert moved[1] < 0.7 * moved[0], moved


def test_the_torque_speed_limit_and_joint_friction_slow_a_fast_swing() -> None:
    peaks = []
    for motor in (MotorModel(), MotorModel(torque_speed=True, no_load_speed_scale=0.3), MotorModel(joint_friction_scale=20.0)):
        bench = Bench(RealityConfig(motor=motor))
        bench.stand()
        target = bench.default.copy()
        target[0::3] += 0.5  # hips swing out
        bench.command(target, kp=40.0, kd=0.2)
        peaks.append(max(float(np.abs(s.dq[0::3]).max()) for s in bench.run(0.1)))
        bench.close()
    assert peaks[1] < 0.8 * peaks[0] and peaks[2] < 0.9 * peaks[0], peaks


def test_low_friction_lets_a_pushed_robot_slide_further() -> None:
    slid = []
    for scale in (1.0, 0.15):
        bench = Bench(RealityConfig(friction_scale=scale))
        bench.stand()
        start = bench.emu.sim.base_pos
        bench.emu.sim.push(np.array([0.0, 0.8, 0.0]))
        bench.run(0.5)
        slid.append(float(np.linalg.norm(bench.emu.sim.base_pos[:2] - start[:2])))
        bench.close()
    assert slid[1] > slid[0] + 0.02, slid


def test_sensor_knobs_move_the_reported_state() -> None:
    sensors = SensorModel(
        latency_ticks=5,
        joint_pos_noise=0.01,
        gyro_bias=(0.1, -0.05, 0.02),
        imu_tilt=(0.05, -0.04),
        foot_force_scale=1.6,
        foot_force_offset=15.0,
    )
    bench = Bench(RealityConfig(sensors=sensors))
    bench.stand()
    states, truth_q, truth_gyro, truth_feet = [], [], [], []
    for _ in range(200):
        states += bench.run(0.002)
        sim = bench.emu.sim
        truth_q.append(sim.joint_pos)
        truth_gyro.append(sim.gyro)
        truth_feet.append(sim.foot_force)
    last = states[-1]
    assert last.tick == bench.emu.ticks - 5  # 5 ticks late
    lag = 5  # compare each report with the truth of its own tick
    reported = states[-150:]
    q_err = np.array([s.q for s in reported]) - np.array(truth_q[-150 - lag : -lag])
    assert 0.007 < q_err.std() < 0.013
    gyro_err = np.array([s.gyroscope for s in reported]) - np.array(truth_gyro[-150 - lag : -lag])
    np.testing.assert_allclose(gyro_err.mean(0), [0.1, -0.05, 0.02], atol=1e-3)
    feet = np.array([s.foot_force for s in reported]) - (1.6 * np.array(truth_feet[-150 - lag : -lag]) + 15.0)
    assert np.abs(feet).max() < 0.5  # int16 on the wire
    rpy_true = quat_to_rpy(bench.emu.sim.base_quat)
    np.testing.assert_allclose(last.rpy[:2] - rpy_true[:2], [0.05, -0.04], atol=0.01)  # standing still: the mounting error
    bench.close()


def test_profiles_load_and_the_pybullet_profile_changes_the_engine() -> None:
    profiles = sorted(p.stem for p in (ROOT / "configs" / "reality").glob("*.yaml"))
    assert {"nominal", "payload", "weak_motors", "slippery", "go1_real", "pybullet"} <= set(profiles)
    for name in profiles:
        load(RealityConfig, resolve_config_path(name, "reality"))
    bench = Bench(load(RealityConfig, resolve_config_path("pybullet", "reality")))
    assert bench.emu.physics == "pybullet" and len(bench.stand()) > 100
    bench.close()


def test_a_point_mass_moves_the_centre_of_mass_and_keeps_the_inertia_valid() -> None:
    base = Emulator(EmulatorConfig(port=0)).robot.body.trunk
    loaded = add_point_mass(base, 5.204, np.array([0.2, 0.0, 0.0]) + np.asarray(base.com))
    assert loaded.mass == pytest.approx(2 * base.mass)
    np.testing.assert_allclose(loaded.com, np.asarray(base.com) + np.array([0.1, 0, 0]), atol=1e-9)
    full = loaded.inertia_matrix()
    np.testing.assert_allclose(full, full.T, atol=1e-12)
    assert full[1, 1] > base.inertia_matrix()[1, 1] + 5.204 * 0.1**2  # pitch inertia grows by the parallel axis
    rot = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    assert matrix_to_quat(rot) == pytest.approx((np.sqrt(0.5), 0.0, 0.0, np.sqrt(0.5)))  # 90 degrees about z


def test_an_unknown_engine_is_refused() -> None:
    with pytest.raises(ValueError, match="physics: expected 'mujoco' or 'pybullet'"):
        RealityConfig(physics="gazebo")  # type: ignore[arg-type]
