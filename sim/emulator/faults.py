"""Fault injection and the sensor model: what the emulated robot gets wrong on purpose.

:class:`FaultConfig` holds the faults of ``unio4 emulate``'s flags; :class:`FaultInjector` applies
them, with a reality profile's sensor model, tick by tick. Every random number (pushes, noise,
corrupt CRCs, lost states) comes from one stream, so a seeded lockstep run repeats exactly.
"""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from unio4.configs.loader import bounded, finite
from unio4.deploy import protocol
from unio4.sim.emulator.engines import Go1Engine
from unio4.sim.reality import SensorModel, tilt_quat


@dataclass(frozen=True)
class FaultConfig:
    """Faults to inject; times are seconds of emulated time, < 0 means never."""

    state_loss: float = bounded(0.0, ge=0, le=1)  # probability that a LowState is not sent
    delay_ticks: int = bounded(0, ge=0)  # LowStates leave this many ticks late
    bad_crc: float = bounded(0.0, ge=0, le=1)  # probability that a LowState carries a wrong CRC
    noise_std: float = bounded(0.0, ge=0)  # Gaussian noise on q (rad), dq (rad/s x 10) and gyro (rad/s)
    push_interval_s: float = finite(-1.0)
    push_speed: float = bounded(0.0, ge=0)  # m/s, random horizontal direction
    fall_at_s: float = finite(-1.0)  # a roll impulse that topples the robot
    stop_combo_at_s: float = finite(-1.0)  # the remote's L2+B from then on
    freeze_at_s: float = finite(-1.0)  # no more LowStates from then on (a dead link)
    nan_at_s: float = finite(-1.0)  # the IMU reports NaN from then on (a broken sensor)


class Sensed(NamedTuple):
    """The readings a LowState reports, after the sensor model and the faults."""

    quaternion: np.ndarray
    gyroscope: np.ndarray
    q: np.ndarray
    dq: np.ndarray
    foot_force: np.ndarray
    remote: protocol.Remote


class FaultInjector:
    """The faults of ``cfg`` and the sensor model ``sensors``; counts what it does in ``stats``."""

    def __init__(self, cfg: FaultConfig, sensors: SensorModel, dt: float, seed: int, stats: collections.Counter[str]) -> None:
        self.cfg, self.sensors, self.dt, self.seed, self.stats = cfg, sensors, dt, seed, stats
        self.rng = np.random.default_rng(seed)
        self._outbox: collections.deque[bytes] = collections.deque()

    def reset(self) -> None:
        """As at start: the random stream reseeded, no states queued."""
        self.rng = np.random.default_rng(self.seed)
        self._outbox.clear()

    def disturb(self, sim: Go1Engine, since: int) -> None:
        """The pushes and the fall due ``since`` ticks after start or the last reset."""
        f, t = self.cfg, since * self.dt
        if f.push_interval_s > 0 and since > 0 and since % max(1, round(f.push_interval_s / self.dt)) == 0:
            angle = self.rng.uniform(0, 2 * math.pi)
            sim.push(f.push_speed * np.array([math.cos(angle), math.sin(angle), 0.0]))
            self.stats["pushes"] += 1
        if 0 <= f.fall_at_s <= t < f.fall_at_s + self.dt:
            sim.push(np.array([0.0, 1.5, 0.5]), np.array([12.0, 0.0, 0.0]))
            self.stats["falls"] += 1

    def sense(self, sim: Go1Engine, t: float) -> Sensed:
        """What the sensors report at run time ``t``: noise, gyro bias, IMU tilt, foot-force calibration, NaN IMU, stop combo."""
        f, sensors = self.cfg, self.sensors
        q, dq, gyro = sim.joint_pos, sim.joint_vel, sim.gyro
        q_std, dq_std, gyro_std = (
            np.hypot(f.noise_std, sensors.joint_pos_noise),
            np.hypot(10 * f.noise_std, sensors.joint_vel_noise),
            np.hypot(f.noise_std, sensors.gyro_noise),
        )
        if q_std > 0 or dq_std > 0 or gyro_std > 0:
            q = q + self.rng.normal(0, q_std, q.shape)
            dq = dq + self.rng.normal(0, dq_std, dq.shape)
            gyro = gyro + self.rng.normal(0, gyro_std, 3)
        gyro = gyro + np.asarray(sensors.gyro_bias)
        quat = tilt_quat(sim.base_quat, *sensors.imu_tilt) if any(sensors.imu_tilt) else sim.base_quat
        foot = sim.foot_force * sensors.foot_force_scale + sensors.foot_force_offset
        if 0 <= f.nan_at_s <= t:
            quat = np.full(4, np.nan)
        remote = protocol.Remote(frozenset({"L2", "B"})) if 0 <= f.stop_combo_at_s <= t else protocol.Remote()
        return Sensed(quat, gyro, q, dq, foot, remote)

    def corrupt(self, packet: bytes) -> bytes:
        """``packet``, or with probability ``bad_crc`` the same bytes under a wrong CRC."""
        if self.cfg.bad_crc > 0 and self.rng.random() < self.cfg.bad_crc:
            packet = packet[:-4] + bytes(4 - i for i in range(4))
            self.stats["bad_crc_sent"] += 1
        return packet

    def frozen(self, t: float) -> bool:
        """Whether the link is dead at run time ``t``."""
        return 0 <= self.cfg.freeze_at_s <= t

    def deliver(self, packet: bytes) -> bytes | None:
        """Queue ``packet``; the one due now after the delay and the sensors' latency, unless it is lost."""
        self._outbox.append(packet)
        if len(self._outbox) <= self.cfg.delay_ticks + self.sensors.latency_ticks:
            return None
        packet = self._outbox.popleft()
        if self.cfg.state_loss > 0 and self.rng.random() < self.cfg.state_loss:
            self.stats["states_lost"] += 1
            return None
        return packet
