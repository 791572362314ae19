"""PyBullet-specific checks; agreement with MuJoCo, standing and the trot are in tests/test_cross_backend.py."""

from __future__ import annotations

import pytest
import torch

from unio4.sim.backends import pybullet_world as world
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


def test_the_trunk_pose_is_the_link_frame_not_pybullets_principal_axes() -> None:
    """An off-centre payload turns the trunk's principal axes (19 degrees on zoo robot 17), and PyBullet poses
    a base by them. The emulated robot must still read its trunk link's own pose: the hips, fixed to the
    trunk, sit where they sit on the nominal robot in the frame it reports, and a pose set is the pose read.
    """
    import numpy as np

    from unio4.deploy.observations import rotate_inverse
    from unio4.robots.description import load_robot
    from unio4.sim.emulator.pybullet_engine import PybulletGo1
    from unio4.sim.reality_zoo import zoo_profile

    def hips_in_trunk_frame(engine: PybulletGo1) -> np.ndarray:
        pb, index = engine.pb, world.link_index(engine.pb, engine.client, engine.body)
        hips = [pb.getLinkState(engine.body, index[f"{leg}_hip"], physicsClientId=engine.client)[4] for leg in engine.robot.legs]
        return rotate_inverse(np, engine.base_quat, np.array(hips) - engine.base_pos)

    nominal = load_robot("go1")
    loaded = zoo_profile(17).apply(nominal)
    engines = [PybulletGo1(r, r.control.sim_dt) for r in (nominal, loaded)]
    frame = world.TrunkFrame(engines[1].pb, engines[1].client, engines[1].body)
    assert 2 * np.degrees(np.arccos(min(1.0, abs(frame.rotation[0])))) > 10  # the axes really turned
    for engine in engines:
        engine.reset_lying()
    np.testing.assert_allclose(hips_in_trunk_frame(engines[1]), hips_in_trunk_frame(engines[0]), atol=1e-6)
    pos, quat = np.array([0.1, -0.2, 0.3]), np.array([0.96, 0.1, -0.2, 0.17]) / np.linalg.norm([0.96, 0.1, -0.2, 0.17])
    got_pos, got_quat = frame.trunk_pose(*frame.base_pose(pos, quat))
    np.testing.assert_allclose(got_pos, pos, atol=1e-9)
    np.testing.assert_allclose(got_quat * np.sign(got_quat[0]), quat, atol=1e-9)
