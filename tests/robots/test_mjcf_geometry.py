"""The robot geometry posed in numpy (robots/mjcf_geometry.py) matches MuJoCo's forward kinematics."""

from __future__ import annotations

import mujoco
import numpy as np

from unio4.robots.description import load_robot
from unio4.robots.mjcf_geometry import RobotGeometry
from unio4.sim.backends.mujoco_model import ModelIndex, compile_model
from unio4.sim.rerun_view import MujocoPoser


def test_numpy_poses_match_mujoco_forward_kinematics() -> None:
    """The robot side poses the legs without MuJoCo: the same numbers as mj_kinematics, geoms included."""
    robot = load_robot("go1")
    geometry = RobotGeometry.of(robot)
    rng = np.random.default_rng(0)
    quat = rng.normal(size=(5, 4))
    quat /= np.linalg.norm(quat, axis=1, keepdims=True)
    args = rng.normal(size=(5, 3)), quat, rng.uniform(-1, 1, (5, 12))
    for ours, theirs in zip(geometry.body_poses(*args), MujocoPoser(robot, geometry)(*args)):
        np.testing.assert_allclose(np.abs(ours), np.abs(theirs), atol=1e-9)  # +-q: the same rotation
    model = compile_model(robot)
    assert len(ModelIndex.of(model, robot).qpos) == 12
    for g in geometry.geoms:
        gid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, g.name)
        np.testing.assert_allclose(g.pos, model.geom_pos[gid], atol=1e-9)
        np.testing.assert_allclose(g.size, model.geom_size[gid][: len(g.size)], atol=1e-9)
        assert g.group == model.geom_group[gid], g.name  # the class defaults resolved as MuJoCo does
        np.testing.assert_allclose(g.rgba, model.geom_rgba[gid], atol=1e-6)
    assert {g.name for g in geometry.drawn} == {g.name for g in geometry.geoms if g.name.endswith("_visual")}  # not the collision shapes
