"""PyBullet backend behind the same Go1 task: agreement with MuJoCo, standing, the trot, randomisation."""

from __future__ import annotations

import math

import pytest
import torch

from sim.backend import Dynamics
from sim.config import load_task_config
from sim.gait import walk
from sim.task import Go1VelocityTask

STILL = ["commands.lin_vel_x=[0,0]", "commands.lin_vel_y=[0,0]", "commands.ang_vel_yaw=[0,0]"]


def open_loop(backend: str, steps: int = 50) -> torch.Tensor:
    """Base position + orientation over 1 s of squats (the same joint-target sequence), no randomisation."""
    task = Go1VelocityTask(load_task_config("go1_flat", ["randomization.enabled=false", *STILL]), 1, backend=backend, seed=0)
    task.reset(seed=0)
    rows = []
    for t in range(steps):
        phase = 2 * math.pi * 2.0 * t * task.dt
        action = torch.zeros(1, 12)
        action[0, 1::3], action[0, 2::3] = 0.6 * math.sin(phase), -0.6 * math.sin(phase)
        task.step(action)
        rows.append(torch.cat([task.state.base_pos[0], task.state.base_quat[0]]))
    task.close()
    return torch.stack(rows)


def test_same_targets_same_trajectory_as_mujoco() -> None:
    """Tolerances over 1 s: 3 cm in position, 0.05 rad in orientation (measured: 1.3 cm xy, 2.0 cm z, 0.017 rad)."""
    mj, pb = open_loop("mujoco"), open_loop("pybullet")
    assert float((mj[:, :2] - pb[:, :2]).abs().max()) < 0.03
    assert float((mj[:, 2] - pb[:, 2]).abs().max()) < 0.03
    angle = 2 * torch.acos((mj[:, 3:] * pb[:, 3:]).sum(-1).abs().clamp(max=1.0))
    assert float(angle.max()) < 0.05
    assert float(mj[:, 2].max() - mj[:, 2].min()) > 0.05  # the squats really moved the base


def test_pybullet_robot_stands_and_trots() -> None:
    cfg = load_task_config("go1_flat", ["commands.lin_vel_x=[0.5,0.5]", "commands.lin_vel_y=[0,0]", "commands.ang_vel_yaw=[0,0]"])
    task = Go1VelocityTask(cfg, 3, backend="pybullet", seed=1)
    task.reset(seed=1)
    for _ in range(50):  # 1 s holding the default pose
        _, _, terminated, _, _ = task.step(torch.zeros(3, 12))
        assert not bool(terminated.any())
    assert bool(((task.state.base_pos[:, 2] > 0.22) & (task.state.base_pos[:, 2] < 0.34)).all())
    result = walk(task, 6.0)
    task.close()
    assert not bool(result.fell.any())
    assert float(result.distance.min()) > 0.5


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


def test_isaacgym_backend_says_what_it_needs(capsys: pytest.CaptureFixture[str]) -> None:
    """Isaac Gym is not installable here: selecting it is a one-line error naming what to install."""
    from unio4.cli import main

    assert main(["sim", "bench", "--backend", "isaacgym", "--num-envs", "2", "--steps", "1"]) == 2
    err = capsys.readouterr().err
    assert "needs NVIDIA Isaac Gym Preview 4" in err and "Python <= 3.8" in err
