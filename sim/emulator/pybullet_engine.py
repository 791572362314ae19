"""The emulated Go1 in PyBullet, the second engine, in the PyBullet backend's world."""

from __future__ import annotations

import numpy as np

from unio4.deploy.observations import rotate_inverse
from unio4.robots.description import RobotDescription
from unio4.sim.backends import pybullet_world as world
from unio4.sim.emulator.imu import specific_force
from unio4.sim.emulator.motors import pd_torque


class SnapshotCopy:
    """A read-only attribute: a copy of the engine's per-tick snapshot field ``name``."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, engine: object, owner: type | None = None) -> np.ndarray:
        value: np.ndarray = getattr(engine, self.name)
        return value.copy()


class PybulletGo1:
    """The same Go1 (URDF generated from the same description) in PyBullet: the second engine.

    PyBullet has no built-in PD with feed-forward per motor, so the motors' law is evaluated here
    each tick and applied as joint torques (default velocity motors off); joint damping and
    friction come from the URDF as in MuJoCo.
    """

    def __init__(self, robot: RobotDescription, dt: float) -> None:
        pb = world.import_pybullet()
        self.pb, self.robot, self.dt = pb, robot, dt
        self.client, self.ground = world.create_world(pb, dt)
        with world.urdf_file(robot) as urdf:
            self.body = world.load_body(pb, self.client, urdf, 0.3)
        self._frame = world.TrunkFrame(pb, self.client, self.body)
        index = world.link_index(pb, self.client, self.body)
        self._joints = [index[n] for n in robot.joint_short_names]
        self._feet = [index[f"{leg}_foot"] for leg in robot.legs]
        world.set_friction(pb, self.client, self.body, self._feet, robot.body.foot_friction)
        world.release_motors(pb, self.client, self.body, self._joints)
        self._tau = np.zeros(robot.num_joints)
        self._read()
        self._prev_vel = self._lin_vel

    def reset_lying(self) -> None:
        pb, c = self.pb, self.client
        pos, orn = self._frame.base_pose(np.array([0.0, 0.0, self.robot.control.lying_height]), np.array([1.0, 0.0, 0.0, 0.0]))
        pb.resetBasePositionAndOrientation(self.body, pos, orn, physicsClientId=c)
        pb.resetBaseVelocity(self.body, [0, 0, 0], [0, 0, 0], physicsClientId=c)
        for j, q in zip(self._joints, self.robot.lying_joint_pos, strict=True):
            pb.resetJointState(self.body, j, float(q), 0.0, physicsClientId=c)
        self._read()
        passive = np.zeros(self.robot.num_joints)
        for _ in range(int(1.0 / self.dt)):
            self.step(passive, passive, passive, passive, passive)

    def step(self, q: np.ndarray, dq: np.ndarray, tau: np.ndarray, kp: np.ndarray, kd: np.ndarray) -> None:
        torque = pd_torque(q, dq, tau, kp, kd, self._q, self._dq)
        self._prev_vel = self._lin_vel
        self._tau = world.torque_step(self.pb, self.client, self.body, self._joints, torque, self.robot.torque_limits)
        self._read()

    def _read(self) -> None:
        """Query the engine once per tick; every property below reads this snapshot."""
        pb, c = self.pb, self.client
        self._pos, self._quat = self._frame.trunk_pose(*pb.getBasePositionAndOrientation(self.body, physicsClientId=c))
        self._com_vel, ang = pb.getBaseVelocity(self.body, physicsClientId=c)
        self._lin_vel = self._frame.trunk_velocity(self._com_vel, ang, self._quat)
        self._gyro = rotate_inverse(np, self._quat, np.array(ang))
        self._q, self._dq = world.joint_state(pb, c, self.body, self._joints)

    # the snapshot, as copies (callers may keep or change what they get)
    base_pos = SnapshotCopy("_pos")
    base_quat = SnapshotCopy("_quat")
    base_lin_vel_world = SnapshotCopy("_lin_vel")
    gyro = SnapshotCopy("_gyro")
    joint_pos = SnapshotCopy("_q")
    joint_vel = SnapshotCopy("_dq")
    joint_torque = SnapshotCopy("_tau")

    @property
    def accelerometer(self) -> np.ndarray:
        return specific_force(self._quat, self._lin_vel, self._prev_vel, self.dt)

    @property
    def foot_force(self) -> np.ndarray:
        return np.array([world.contact_force(self.pb, self.client, self.body, self.ground, foot) for foot in self._feet])

    def push(self, delta_vel_world: np.ndarray, delta_ang_vel_body: np.ndarray | None = None) -> None:
        ang_body = self._gyro + (delta_ang_vel_body if delta_ang_vel_body is not None else 0.0)
        ang_world = world.rotate(self._quat, ang_body)
        com_vel = np.asarray(self._com_vel) + delta_vel_world  # PyBullet's base velocity is its centre of mass's
        self.pb.resetBaseVelocity(self.body, com_vel.tolist(), ang_world.tolist(), physicsClientId=self.client)
        self._read()
