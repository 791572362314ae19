"""The MJCF's visual geometry (robots/mjcf.py): drawn only, no contacts, no mass, thighs that reach the knees."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import mujoco
import numpy as np
import pytest

from unio4.robots.description import RobotDescription, quat_to_matrix
from unio4.robots.mjcf import HIDDEN_GROUP, VISUAL_GROUP, build_mjcf
from unio4.sim.backends.mujoco_model import ModelIndex


def without_visuals(mjcf: str) -> str:
    """The same MJCF with every geom of class ``visual`` removed."""
    root = ET.fromstring(mjcf)
    for parent in root.iter():
        for geom in parent.findall("geom"):
            if geom.get("class") == "visual":
                parent.remove(geom)
    return ET.tostring(root, encoding="unicode")


@pytest.fixture(scope="module")
def models(go1: RobotDescription) -> tuple[mujoco.MjModel, mujoco.MjModel]:
    """The robot with its visual geoms and without them (contact sensors on the hips and calves too)."""
    mjcf = build_mjcf(go1, link_contacts=True)
    return mujoco.MjModel.from_xml_string(mjcf), mujoco.MjModel.from_xml_string(without_visuals(mjcf))


def geom_names(model: mujoco.MjModel) -> list[str]:
    return [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_GEOM, i) for i in range(model.ngeom)]


def test_visual_geoms_are_drawn_and_never_touch_anything(models: tuple[mujoco.MjModel, mujoco.MjModel]) -> None:
    model, bare = models
    names = geom_names(model)
    visual = [i for i, n in enumerate(names) if n.endswith("_visual")]
    assert len(visual) == 1 + 4 * 6 == model.ngeom - bare.ngeom  # trunk; hip and thigh motors, thigh, knee, calf, foot per leg
    assert np.all(model.geom_contype[visual] == 0) and np.all(model.geom_conaffinity[visual] == 0)
    assert np.all(model.geom_group[visual] == VISUAL_GROUP)
    # What renderers show by default (groups 0-2): the floor and the visual geoms; collision shapes and sensor sites are hidden.
    shown = {names[i] for i in range(model.ngeom) if model.geom_group[i] < HIDDEN_GROUP}
    assert shown == {"floor", *(names[i] for i in visual)}
    assert np.all(model.site_group == HIDDEN_GROUP)
    assert set(geom_names(bare)) == set(names) - {names[i] for i in visual}  # the collision geoms keep their names


def test_visual_geoms_change_no_mass_inertia_or_dynamics(go1: RobotDescription, models: tuple[mujoco.MjModel, mujoco.MjModel]) -> None:
    model, bare = models
    for field in ("body_mass", "body_inertia", "body_ipos", "body_iquat", "body_subtreemass"):
        np.testing.assert_array_equal(getattr(model, field), getattr(bare, field), err_msg=field)
    assert np.all(model.geom_bodyid[[i for i, n in enumerate(geom_names(model)) if n.endswith("_visual")]] > 0)
    # The names the engines look up find the same geoms and sensors (foot friction, contact sensors).
    index, bare_index = ModelIndex.of(model, go1), ModelIndex.of(bare, go1)
    assert [geom_names(model)[i] for i in index.friction_geoms] == [geom_names(bare)[i] for i in bare_index.friction_geoms]
    assert index.link_sensor is not None and bare_index.link_sensor is not None
    np.testing.assert_array_equal(index.link_sensor, bare_index.link_sensor)
    np.testing.assert_array_equal(index.foot_sensor, bare_index.foot_sensor)
    # Stepped side by side from the home pose with a push (the robot drops, lands and stands): bit-identical.
    runs = []
    for m in (model, bare):
        data = mujoco.MjData(m)
        mujoco.mj_resetDataKeyframe(m, data, 0)
        data.qvel[0:2] = (0.8, -0.5)
        states = []
        for _ in range(300):
            mujoco.mj_step(m, data)
            states.append(np.concatenate([data.qpos, data.qvel, data.sensordata]))
        runs.append(np.stack(states))
    assert runs[0].tobytes() == runs[1].tobytes()
    assert runs[0][:, model.nq + model.nv + index.foot_sensor].any()  # the feet touched down


def test_thigh_visual_reaches_the_knee_and_calf_the_foot(go1: RobotDescription, models: tuple[mujoco.MjModel, mujoco.MjModel]) -> None:
    model, _ = models
    gid = lambda name: mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, name)  # noqa: E731
    for leg in go1.legs:
        calf_origin = model.body_pos[mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, f"{leg}_calf")]  # in the thigh frame
        for name, target in ((f"{leg}_thigh_visual", calf_origin), (f"{leg}_calf_visual", np.array([0, 0, -go1.body.calf_length]))):
            g = gid(name)
            axis = quat_to_matrix(model.geom_quat[g])[:, 2]
            half = model.geom_size[g][2] if model.geom_type[g] == mujoco.mjtGeom.mjGEOM_BOX else model.geom_size[g][1]
            ends = [model.geom_pos[g] + s * half * axis for s in (-1.0, 1.0)]
            assert min(np.linalg.norm(e - target) for e in ends) < 0.01, name
            assert min(np.linalg.norm(e) for e in ends) < 0.01, name  # and starts at its joint
        assert model.geom_bodyid[gid(f"{leg}_thigh_visual")] == mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, f"{leg}_thigh")
