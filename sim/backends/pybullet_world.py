"""A Go1 in a PyBullet world: the pieces the PyBullet backend and the emulator's PyBullet engine share.

World setup (a flat plane, gravity, the URDF generated from the robot description, PyBullet's
velocity motors switched off), one explicit torque step (clip at the torque limits, apply as joint
torques, step), the summed normal force of a link's ground contacts, the body-to-world rotation
both use to talk to PyBullet's world-frame velocities, and the trunk's pose and velocity from the
base's (:class:`TrunkFrame`). Torch-free: the emulator imports it.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import ModuleType

import numpy as np

from unio4.deploy.observations import rotate_inverse
from unio4.robots.description import RobotDescription
from unio4.robots.mjcf_geometry import quat_mul
from unio4.robots.urdf import build_urdf

GRAVITY = 9.81


def import_pybullet() -> ModuleType:
    """The ``pybullet`` module, its build-time banner sent to stderr."""
    from unio4.deploy.banners import stdout_to_stderr

    with stdout_to_stderr():
        import pybullet

    return pybullet


def rotate(quat_wxyz: np.ndarray, vec: np.ndarray) -> np.ndarray:
    """Body-frame vector to world frame (the inverse of ``rotate_inverse``)."""
    return rotate_inverse(np, quat_wxyz * np.array([1.0, -1.0, -1.0, -1.0]), vec)


def create_world(pb: ModuleType, dt: float) -> tuple[int, int]:
    """A ``DIRECT`` world stepping ``dt`` under gravity with a flat ground (friction 1): its client and ground body."""
    c = pb.connect(pb.DIRECT)
    pb.setTimeStep(dt, physicsClientId=c)
    pb.setGravity(0, 0, -GRAVITY, physicsClientId=c)
    plane = pb.createCollisionShape(pb.GEOM_PLANE, physicsClientId=c)
    ground = pb.createMultiBody(0, plane, physicsClientId=c)
    pb.changeDynamics(ground, -1, lateralFriction=1.0, physicsClientId=c)
    return c, ground


@contextmanager
def urdf_file(robot: RobotDescription) -> Iterator[str]:
    """The path of ``robot``'s generated URDF, for the duration of the block."""
    with tempfile.NamedTemporaryFile("w", suffix=".urdf") as fh:
        fh.write(build_urdf(robot))
        fh.flush()
        yield fh.name


def load_body(pb: ModuleType, client: int, urdf_path: str, height: float) -> int:
    """The robot of ``urdf_path`` at ``height`` above the origin, with the URDF's inertias."""
    return pb.loadURDF(urdf_path, [0, 0, height], flags=pb.URDF_USE_INERTIA_FROM_FILE, physicsClientId=client)


class TrunkFrame:
    """Where the trunk link's frame sits in PyBullet's base frame.

    PyBullet poses a base by its centre of mass along the principal axes of its inertia (the URDF
    importer diagonalises a full inertia tensor), not by the link frame the URDF describes. With a
    payload off the trunk's centre those axes turn by many degrees (16-21 on zoo robots 12, 17, 20), so every
    pose PyBullet reports or is given for the base goes through this conversion.
    """

    def __init__(self, pb: ModuleType, client: int, body: int) -> None:
        info = pb.getDynamicsInfo(body, -1, physicsClientId=client)
        x, y, z, w = info[4]
        self.offset = np.array(info[3], dtype=np.float64)  # the centre of mass in the trunk frame
        self.rotation = np.array([w, x, y, z], dtype=np.float64)  # the principal axes in the trunk frame (w, x, y, z)
        self._inverse = self.rotation * np.array([1.0, -1.0, -1.0, -1.0])

    def trunk_pose(self, com: Sequence[float], orn_xyzw: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
        """The trunk's position and (w, x, y, z) orientation from the base pose PyBullet reports."""
        x, y, z, w = orn_xyzw
        quat = quat_mul(np.array([w, x, y, z], dtype=np.float64), self._inverse)
        return np.asarray(com, dtype=np.float64) - rotate(quat, self.offset), quat

    def base_pose(self, pos: np.ndarray, quat_wxyz: np.ndarray) -> tuple[list[float], list[float]]:
        """The base pose (position, (x, y, z, w)) PyBullet takes for a trunk at ``pos`` and ``quat_wxyz``."""
        w, x, y, z = quat_mul(np.asarray(quat_wxyz, dtype=np.float64), self.rotation)
        return (np.asarray(pos, dtype=np.float64) + rotate(quat_wxyz, self.offset)).tolist(), [x, y, z, w]

    def trunk_velocity(self, com_vel: Sequence[float], omega_world: Sequence[float], quat_wxyz: np.ndarray) -> np.ndarray:
        """The trunk origin's world velocity from the centre of mass's (PyBullet's base velocity)."""
        return np.asarray(com_vel, dtype=np.float64) - self._lever_velocity(omega_world, quat_wxyz)

    def base_velocity(self, trunk_vel: np.ndarray, omega_world: np.ndarray, quat_wxyz: np.ndarray) -> np.ndarray:
        """The centre of mass's world velocity (what PyBullet takes) for the trunk origin moving at ``trunk_vel``."""
        return np.asarray(trunk_vel, dtype=np.float64) + self._lever_velocity(omega_world, quat_wxyz)

    def _lever_velocity(self, omega_world: Sequence[float] | np.ndarray, quat_wxyz: np.ndarray) -> np.ndarray:
        """How much faster the centre of mass moves than the trunk origin under the rotation ``omega_world``."""
        return np.cross(np.asarray(omega_world, dtype=np.float64), rotate(quat_wxyz, self.offset))


def link_index(pb: ModuleType, client: int, body: int) -> dict[str, int]:
    """Link name -> joint index (each link is named after the child of its joint)."""
    return {pb.getJointInfo(body, i, physicsClientId=client)[12].decode(): i for i in range(pb.getNumJoints(body, physicsClientId=client))}


def release_motors(pb: ModuleType, client: int, body: int, joints: Sequence[int]) -> None:
    """Switch off PyBullet's default velocity motors, so only the torques applied here act."""
    pb.setJointMotorControlArray(body, joints, pb.VELOCITY_CONTROL, forces=[0.0] * len(joints), physicsClientId=client)


def set_friction(pb: ModuleType, client: int, body: int, links: Sequence[int], friction: float) -> None:
    """Lateral friction of ``links`` (the feet)."""
    for link in links:
        pb.changeDynamics(body, link, lateralFriction=friction, physicsClientId=client)


def joint_state(pb: ModuleType, client: int, body: int, joints: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Positions and velocities of ``joints``."""
    states = pb.getJointStates(body, joints, physicsClientId=client)
    return np.array([st[0] for st in states]), np.array([st[1] for st in states])


def torque_step(pb: ModuleType, client: int, body: int, joints: Sequence[int], torque: np.ndarray, limit: np.ndarray) -> np.ndarray:
    """One physics step under ``torque`` clipped at +-``limit``; returns the applied (clipped) torque."""
    applied = np.clip(torque, -limit, limit)
    pb.setJointMotorControlArray(body, joints, pb.TORQUE_CONTROL, forces=applied.tolist(), physicsClientId=client)
    pb.stepSimulation(physicsClientId=client)
    return applied


def contact_force(pb: ModuleType, client: int, body: int, ground: int, link: int) -> float:
    """Summed normal force of ``link``'s contact points with the ground (-1: the base)."""
    return float(sum(p[9] for p in pb.getContactPoints(body, ground, link, -1, physicsClientId=client)))
