"""PyBullet-specific checks; agreement with MuJoCo, standing and the trot are in tests/test_cross_backend.py."""

from __future__ import annotations

import pytest
import torch

from unio4.sim.backends.interface import Dynamics
from unio4.sim.config import load_task_config
from unio4.sim.task import Go1VelocityTask

STILL = ["commands.lin_vel_x=[0,0]", "commands.lin_vel_y=[0,0]", "commands.ang_vel_yaw=[0,0]"]


def test_randomisation_reaches_the_engine() -> None:
    import pybullet as pb

    task = Go1VelocityTask(load_task_config("go1_flat", STILL), 2, backend="pybullet", seed=0)
    backend = task.backend
    ids = torch.tensor([1])
    one = torch.ones(1)
    backend.set_dynamics(
        ids, Dynamics(friction=0.4 * one, added_mass=2.0 * one, kp_scale=0.9 * one, kd_scale=1.1 * one, motor_strength=one)
    )
    client, body = backend.clients[1], backend.bodies[1]  # type: ignore[attr-defined]
    assert pb.getDynamicsInfo(body, backend.feet[0], physicsClientId=client)[1] == pytest.approx(0.4)  # type: ignore[attr-defined]
    assert pb.getDynamicsInfo(body, -1, physicsClientId=client)[0] == pytest.approx(backend.nominal_mass + 2.0)  # type: ignore[attr-defined]
    task.close()


def test_heightfield_terrain_is_refused() -> None:
    with pytest.raises(ValueError, match="only flat terrain"):
        Go1VelocityTask(load_task_config("go1_rough"), 1, backend="pybullet")
