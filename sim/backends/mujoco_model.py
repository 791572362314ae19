"""The robot's MJCF compiled for a terrain, and where its joints, actuators and sensors live in it.

Shared by the engines that run this model (MuJoCo on CPU, MuJoCo Warp) and by the renderer, so
the SDK-order address maps are built, and checked, in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import mujoco
import numpy as np

from unio4.robots.description import RobotDescription
from unio4.robots.mjcf import build_mjcf

if TYPE_CHECKING:  # only the type: the emulator uses this module and must stay torch-free
    from unio4.sim.terrain import Terrain


def compile_model(robot: RobotDescription, terrain: Terrain | None = None, link_contacts: bool = False) -> mujoco.MjModel:
    """``robot`` on ``terrain``'s floor (a plane when None or flat), heights loaded into the heightfield;
    ``link_contacts``: with the hip and calf contact sensors (see :func:`unio4.robots.mjcf.build_mjcf`)."""
    spec = terrain.spec if terrain is not None else None
    model = mujoco.MjModel.from_xml_string(build_mjcf(robot, spec, link_contacts=link_contacts))
    if terrain is not None and spec is not None:
        model.hfield_data[:] = (terrain.heights / spec.max_height).ravel()
    return model


@dataclass(frozen=True)
class ModelIndex:
    """Addresses in the compiled model, every per-joint/per-leg array in SDK order."""

    qpos: np.ndarray  # (12,) qpos address of each joint
    qvel: np.ndarray  # (12,) qvel address of each joint
    ctrl: np.ndarray  # (12,) actuator of each joint
    foot_sensor: np.ndarray  # (4,) sensordata address of each foot's touch sensor
    thigh_sensor: np.ndarray  # (4,)
    trunk_sensor: int
    torque_sensor: np.ndarray  # (12,) actuator-force sensors
    trunk_body: int
    foot_geoms: np.ndarray  # (4,) the feet's spheres
    friction_geoms: np.ndarray  # the feet and the floor (geom 0): what friction randomisation changes
    link_sensor: np.ndarray | None = None  # (8,) the hips' then the calves' contact sensors (normal force), when compiled in

    @classmethod
    def of(cls, m: mujoco.MjModel, robot: RobotDescription) -> ModelIndex:
        obj = mujoco.mjtObj
        joints = [mujoco.mj_name2id(m, obj.mjOBJ_JOINT, name) for name in robot.joint_names]
        assert [j - 1 for j in joints] == list(robot.sdk_to_backend("mujoco")), "MJCF joint order must match backend_joint_order.mujoco"
        sensor = {mujoco.mj_id2name(m, obj.mjOBJ_SENSOR, i): int(m.sensor_adr[i]) for i in range(m.nsensor)}
        feet = [mujoco.mj_name2id(m, obj.mjOBJ_GEOM, f"{leg}_foot") for leg in robot.legs]
        return cls(
            qpos=np.array([m.jnt_qposadr[j] for j in joints]),
            qvel=np.array([m.jnt_dofadr[j] for j in joints]),
            ctrl=np.array([mujoco.mj_name2id(m, obj.mjOBJ_ACTUATOR, n) for n in robot.joint_short_names]),
            foot_sensor=np.array([sensor[f"{leg}_foot_force"] for leg in robot.legs]),
            thigh_sensor=np.array([sensor[f"{leg}_thigh_contact"] for leg in robot.legs]),
            trunk_sensor=sensor["trunk_contact"],
            torque_sensor=np.array([sensor[f"{n}_torque"] for n in robot.joint_short_names]),
            trunk_body=mujoco.mj_name2id(m, obj.mjOBJ_BODY, "trunk"),
            foot_geoms=np.array(feet),
            friction_geoms=np.array([*feet, 0]),
            link_sensor=_link_sensors(sensor, robot),
        )


def _link_sensors(sensor: dict[str, int], robot: RobotDescription) -> np.ndarray | None:
    """sensordata addresses of the hips' then the calves' contact sensors (SDK leg order), or None without them."""
    names = [f"{leg}_{part}_contact" for part in ("hip", "calf") for leg in robot.legs]
    return np.array([sensor[n] for n in names]) if all(n in sensor for n in names) else None
