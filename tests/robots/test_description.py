"""The MJCF and the URDF generated from one description describe the same robot."""

from __future__ import annotations

from pathlib import Path

import mujoco
import numpy as np
import pybullet as pb
import pytest

from unio4.robots.description import RobotDescription
from unio4.robots.mjcf import build_mjcf
from unio4.robots.urdf import build_urdf


@pytest.fixture(scope="module")
def engines(go1: RobotDescription, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    model = mujoco.MjModel.from_xml_string(build_mjcf(go1))
    urdf = Path(tmp_path_factory.mktemp("urdf")) / "go1.urdf"
    urdf.write_text(build_urdf(go1))
    client = pb.connect(pb.DIRECT)
    body = pb.loadURDF(str(urdf), [0, 0, 0], useFixedBase=False, flags=pb.URDF_USE_INERTIA_FROM_FILE, physicsClientId=client)
    joints = {pb.getJointInfo(body, j, physicsClientId=client)[1].decode(): j for j in range(pb.getNumJoints(body, physicsClientId=client))}
    yield model, client, body, joints
    pb.disconnect(client)


def pb_link(joints: dict[str, int], name: str) -> int:
    """PyBullet link index of the child link of joint ``name`` (-1 for the base)."""
    return -1 if name == "trunk" else joints[f"{name}_joint"]


def test_masses_and_inertias_agree(go1: RobotDescription, engines) -> None:  # type: ignore[no-untyped-def]
    model, client, body, joints = engines
    assert model.body_mass[1:].sum() == pytest.approx(12.743448, abs=1e-5)
    names = ["trunk"] + [f"{leg}_{p}" for leg in go1.legs for p in ("hip", "thigh", "calf")]
    for name in names:
        bid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, name)
        info = pb.getDynamicsInfo(body, pb_link(joints, name), physicsClientId=client)
        assert info[0] == pytest.approx(model.body_mass[bid], rel=1e-6), name
        assert sorted(info[2]) == pytest.approx(sorted(model.body_inertia[bid]), rel=1e-4), name
        # COM in the body frame
        pb_com = np.asarray(info[3])
        assert pb_com == pytest.approx(model.body_ipos[bid], abs=1e-6), name


def measured_axis(client: int, body: int, joint: int, angle: float = 0.1) -> np.ndarray:
    """Rotation axis, in the child link's URDF frame, of a small turn of ``joint``."""

    def frame() -> np.ndarray:
        quat = pb.getLinkState(body, joint, computeForwardKinematics=True, physicsClientId=client)[5]
        return np.asarray(pb.getMatrixFromQuaternion(quat)).reshape(3, 3)

    pb.resetJointState(body, joint, 0.0, physicsClientId=client)
    before = frame()
    pb.resetJointState(body, joint, angle, physicsClientId=client)
    rel = before.T @ frame()
    pb.resetJointState(body, joint, 0.0, physicsClientId=client)
    axis = np.array([rel[2, 1] - rel[1, 2], rel[0, 2] - rel[2, 0], rel[1, 0] - rel[0, 1]])
    return axis / np.linalg.norm(axis)


def test_joint_axes_and_limits_agree(go1: RobotDescription, engines) -> None:  # type: ignore[no-untyped-def]
    model, client, body, joints = engines
    for i, name in enumerate(go1.joint_names):
        jid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, name)
        info = pb.getJointInfo(body, joints[name], physicsClientId=client)
        # PyBullet reports axes in its own inertial frame; measure the axis the joint turns about.
        assert measured_axis(client, body, joints[name]) == pytest.approx(model.jnt_axis[jid], abs=1e-6), name
        assert (info[8], info[9]) == pytest.approx(tuple(model.jnt_range[jid])), name
        assert (info[8], info[9]) == pytest.approx((go1.joint_lower[i], go1.joint_upper[i]))
        assert info[10] == pytest.approx(go1.torque_limits[i])


def test_foot_positions_agree_over_random_poses(go1: RobotDescription, engines) -> None:  # type: ignore[no-untyped-def]
    model, client, body, joints = engines
    data = mujoco.MjData(model)
    rng = np.random.default_rng(0)
    for _ in range(20):
        q = rng.uniform(go1.joint_lower, go1.joint_upper)
        data.qpos[:] = 0
        data.qpos[3] = 1.0
        data.qpos[7:] = q  # MuJoCo joint order == SDK order (checked in test_index_maps)
        mujoco.mj_kinematics(model, data)
        for i, name in enumerate(go1.joint_names):
            pb.resetJointState(body, joints[name], q[i], physicsClientId=client)
        # PyBullet poses the base by its inertial frame: express feet in the trunk's URDF frame.
        com_pos, com_orn = pb.getBasePositionAndOrientation(body, physicsClientId=client)
        local = pb.getDynamicsInfo(body, -1, physicsClientId=client)
        inv_local = pb.invertTransform(local[3], local[4])
        link_pos, link_orn = pb.multiplyTransforms(com_pos, com_orn, *inv_local)
        to_link = pb.invertTransform(link_pos, link_orn)
        for leg in go1.legs:
            mj_foot = data.geom(f"{leg}_foot").xpos
            world = pb.getLinkState(body, joints[f"{leg}_foot_fixed"], computeForwardKinematics=True, physicsClientId=client)[4]
            pb_foot = pb.multiplyTransforms(*to_link, world, [0, 0, 0, 1])[0]
            assert np.asarray(pb_foot) == pytest.approx(mj_foot, abs=1e-5), leg


def test_index_maps(go1: RobotDescription, engines) -> None:  # type: ignore[no-untyped-def]
    model, _client, _body, joints = engines
    mj_names = [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_JOINT, j) for j in range(1, model.njnt)]
    pb_names = [n for n, _ in sorted(joints.items(), key=lambda kv: kv[1]) if not n.endswith("_fixed")]
    for backend, names in (("mujoco", mj_names), ("pybullet", pb_names)):
        idx = go1.sdk_to_backend(backend)
        assert [names[idx[i]] for i in range(12)] == go1.joint_names, backend
        assert np.array_equal(go1.backend_to_sdk(backend)[idx], np.arange(12))
    # The URDF's leg order differs from the SDK's on purpose, so the map is not the identity.
    assert not np.array_equal(go1.sdk_to_backend("pybullet"), np.arange(12))
    isaac = go1.sdk_to_backend("isaacgym")
    assert list(isaac[:3]) == [3, 4, 5]  # SDK FR -> Isaac Gym's second leg (FL, FR, RL, RR)
    with pytest.raises(KeyError, match="no joint order for backend"):
        go1.sdk_to_backend("gazebo")


def test_constants(go1: RobotDescription) -> None:
    assert go1.joint_short_names[:3] == ["FR_hip", "FR_thigh", "FR_calf"]
    assert go1.default_joint_pos[:6] == pytest.approx([-0.1, 0.8, -1.5, 0.1, 0.8, -1.5])
    assert go1.action_scales[0] == pytest.approx(0.125) and go1.action_scales[1] == pytest.approx(0.25)
    assert go1.control.policy_dt == pytest.approx(0.02)
    assert list(go1.torque_limits[:3]) == pytest.approx([23.7, 23.7, 35.55])
