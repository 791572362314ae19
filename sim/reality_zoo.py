"""The gap zoo: reality profiles drawn at random, reproducibly per seed, from a declared distribution of
plausible real-Go1 deviations (``configs/zoo/go1.yaml``, :class:`ZooConfig`).

A designed profile (``configs/reality/``) tests one guess about the real robot; a session method that is
tuned on it may only work there. ``unio4 emulate --reality zoo:SEED`` is robot number SEED of a population
nobody tuned on: payload anywhere on the back, floor friction, per-leg motor strength, torque lag, sensor
latency, joint friction, sensor noise, IMU mounting error and gyro bias, and for some the other engine.
Every draw is uniform in its declared range; the ranges and where they come from: docs/reality-zoo.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from unio4.configs.loader import apply_overrides, bounded, check_fields, from_dict, load, resolve_config_path, to_dict
from unio4.sim.reality import MotorModel, RealityConfig, SensorModel

ZOO_PREFIX = "zoo:"
SDK_TICK_S = 0.002  # the emulator's state period: latency is drawn in seconds and sent in whole ticks

Range = tuple[float, float]


@dataclass(frozen=True)
class ZooConfig:
    """The distribution zoo robots are drawn from: a (low, high) range per deviation, drawn uniformly."""

    payload_kg: Range = bounded((0.0, 4.0), ge=0, le=10)
    payload_x: Range = bounded((-0.12, 0.12), ge=-0.5, le=0.5)  # m, base frame: along the back
    payload_y: Range = bounded((-0.05, 0.05), ge=-0.5, le=0.5)  # m: across it
    payload_z: float = bounded(0.07, ge=-0.5, le=0.5)  # m: on top of the trunk
    friction_scale: Range = bounded((0.4, 1.2), gt=0, le=3)
    leg_strength: Range = bounded((0.75, 1.05), gt=0, le=2)  # drawn per leg
    lag_s: Range = bounded((0.0, 0.015), ge=0, le=0.1)  # first-order torque lag
    torque_speed: bool = True  # every motor's available torque falls with speed, as a real motor's does
    latency_s: Range = bounded((0.0, 0.010), ge=0, le=0.1)  # state latency, rounded to 2 ms ticks
    joint_friction_scale: Range = bounded((1.0, 3.0), ge=0, le=20)
    joint_pos_noise: Range = bounded((0.0, 0.01), ge=0, le=0.5)  # rad (std)
    joint_vel_noise: Range = bounded((0.0, 1.0), ge=0, le=20)  # rad/s (std)
    gyro_noise: Range = bounded((0.0, 0.1), ge=0, le=5)  # rad/s (std)
    gyro_bias: Range = bounded((-0.02, 0.02), ge=-1, le=1)  # rad/s, per axis
    imu_tilt: Range = bounded((-0.035, 0.035), ge=-0.3, le=0.3)  # rad, roll and pitch of the mounting
    pybullet_fraction: float = bounded(0.2, ge=0, le=1)  # share of robots emulated by PyBullet instead of MuJoCo

    def __post_init__(self) -> None:
        check_fields(self)
        for name, value in self.__dict__.items():  # a range's ends in order: no per-field bound says that
            if isinstance(value, tuple) and value[0] > value[1]:
                raise ValueError(f"{name}: low {value[0]:g} is above high {value[1]:g}")


def zoo_profile(seed: int, cfg: ZooConfig | None = None) -> RealityConfig:
    """Zoo robot ``seed``: every deviation drawn from ``cfg`` (default: ``configs/zoo/go1.yaml``) by a generator
    seeded with ``seed`` alone, in a fixed order, so the same seed is the same robot on any machine.
    """
    cfg = cfg or load(ZooConfig, resolve_config_path("go1", "zoo"))
    rng = np.random.default_rng(seed)

    def draw(r: Range, n: int | None = None) -> np.ndarray:
        return rng.uniform(r[0], r[1], size=n)

    payload = (float(draw(cfg.payload_kg)), (float(draw(cfg.payload_x)), float(draw(cfg.payload_y)), cfg.payload_z))
    friction = float(draw(cfg.friction_scale))
    legs = tuple(float(x) for x in draw(cfg.leg_strength, 4))
    motor = MotorModel(
        leg_strength=(legs[0], legs[1], legs[2], legs[3]),
        lag_s=float(draw(cfg.lag_s)),
        torque_speed=cfg.torque_speed,
        joint_friction_scale=float(draw(cfg.joint_friction_scale)),
    )
    bias, tilt = draw(cfg.gyro_bias, 3), draw(cfg.imu_tilt, 2)
    sensors = SensorModel(
        latency_ticks=int(round(float(draw(cfg.latency_s)) / SDK_TICK_S)),
        joint_pos_noise=float(draw(cfg.joint_pos_noise)),
        joint_vel_noise=float(draw(cfg.joint_vel_noise)),
        gyro_noise=float(draw(cfg.gyro_noise)),
        gyro_bias=(float(bias[0]), float(bias[1]), float(bias[2])),
        imu_tilt=(float(tilt[0]), float(tilt[1])),
    )
    physics: Literal["mujoco", "pybullet"] = "pybullet" if rng.uniform() < cfg.pybullet_fraction else "mujoco"
    return RealityConfig(
        physics=physics, payload_kg=payload[0], payload_position=payload[1], friction_scale=friction, motor=motor, sensors=sensors
    )


def load_reality(spec: str, overrides: Sequence[str] = ()) -> RealityConfig:
    """The profile ``spec`` names (a preset of ``configs/reality/``, a YAML path, or ``zoo:SEED``), ``overrides`` applied."""
    if not spec.startswith(ZOO_PREFIX):
        return load(RealityConfig, resolve_config_path(spec, "reality"), list(overrides))
    seed = spec.removeprefix(ZOO_PREFIX)
    if not seed.isdigit():
        raise ValueError(f"--reality {spec}: expected zoo:SEED with SEED a whole number >= 0, e.g. zoo:3")
    profile = zoo_profile(int(seed))
    return from_dict(RealityConfig, apply_overrides(to_dict(profile), list(overrides)), where=spec)
