"""The gap zoo (``sim/reality_zoo.py``): robots drawn reproducibly per seed, inside the declared ranges."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest

from unio4.configs.loader import load, resolve_config_path
from unio4.robots.description import load_robot
from unio4.sim.reality import MotorDrive, MotorModel
from unio4.sim.reality_zoo import SDK_TICK_S, ZooConfig, load_reality, zoo_profile

SEEDS = range(200)


def inside(value: float, bounds: tuple[float, float]) -> bool:
    return bounds[0] <= value <= bounds[1]


def test_a_zoo_robot_is_the_same_for_the_same_seed_and_differs_between_seeds() -> None:
    assert zoo_profile(7) == zoo_profile(7) == load_reality("zoo:7")
    assert len({zoo_profile(s) for s in range(20)}) == 20


def test_every_zoo_robot_stays_inside_the_declared_ranges() -> None:
    cfg = load(ZooConfig, resolve_config_path("go1", "zoo"))
    robots = [zoo_profile(s, cfg) for s in SEEDS]
    for r in robots:
        m, s = r.motor, r.sensors
        assert inside(r.payload_kg, cfg.payload_kg) and inside(r.friction_scale, cfg.friction_scale)
        x, y, z = r.payload_position
        assert inside(x, cfg.payload_x) and inside(y, cfg.payload_y) and z == cfg.payload_z
        assert all(inside(k, cfg.leg_strength) for k in m.leg_strength) and m.strength == 1.0
        assert inside(m.lag_s, cfg.lag_s) and inside(m.joint_friction_scale, cfg.joint_friction_scale)
        assert m.torque_speed == cfg.torque_speed
        assert inside(s.latency_ticks * SDK_TICK_S, (cfg.latency_s[0], cfg.latency_s[1] + SDK_TICK_S / 2))
        assert all(inside(b, cfg.gyro_bias) for b in s.gyro_bias) and all(inside(t, cfg.imu_tilt) for t in s.imu_tilt)
        for name in ("joint_pos_noise", "joint_vel_noise", "gyro_noise"):
            assert inside(getattr(s, name), getattr(cfg, name))
    pybullet = sum(r.physics == "pybullet" for r in robots) / len(robots)
    assert 0.1 < pybullet < 0.3  # 20 % declared
    payloads = np.array([r.payload_kg for r in robots])
    assert payloads.min() < 0.2 * cfg.payload_kg[1] and payloads.max() > 0.8 * cfg.payload_kg[1]  # the range is used, not a corner


def test_a_range_with_its_ends_swapped_or_a_bad_seed_is_refused() -> None:
    with pytest.raises(ValueError, match=r"friction_scale: low 1\.2 is above high 0\.4"):
        ZooConfig(friction_scale=(1.2, 0.4))
    with pytest.raises(ValueError, match="zoo:SEED"):
        load_reality("zoo:-1")
    result = subprocess.run([sys.executable, "-m", "unio4.cli", "emulate", "--reality", "zoo:abc"], capture_output=True, text=True)
    assert result.returncode == 2 and result.stderr.strip().splitlines()[-1].startswith("unio4: error: --reality zoo:abc")


def test_per_leg_strength_scales_each_legs_torque_and_limit() -> None:
    robot = load_robot("go1")
    legs = (0.8, 1.0, 0.9, 0.75)
    drive = MotorDrive(MotorModel(leg_strength=legs), robot, 0.002)
    command = np.full(12, 5.0)
    torque = drive(command, np.zeros(12))
    np.testing.assert_allclose(torque, 5.0 * np.repeat(legs, 3))
    drive = MotorDrive(dataclasses.replace(MotorModel(leg_strength=legs), strength=0.5), robot, 0.002)
    big = drive(np.full(12, 1e3), np.zeros(12))
    np.testing.assert_allclose(big, robot.torque_limits * np.repeat(legs, 3))  # the limit: x leg (x strength comes from apply)
