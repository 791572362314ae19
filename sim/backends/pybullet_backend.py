"""PyBullet backend: the second engine of the sim-to-sim gate, behind the same task.

Each env is its own PyBullet ``DIRECT`` world holding the Go1 URDF generated from the robot
description (PyBullet's MJCF loader drops the legs of Go1-style models) on a flat plane. The PD
law ``tau = clip(motor_strength (kp_scale Kp (q* - q) - kd_scale Kd dq), +-tau_max)`` is evaluated
here on every PyBullet step (``PD_SUBSTEPS`` per task substep of ``sim_dt``) and applied as joint torques (PyBullet's
velocity motors are switched off). Foot forces and trunk/thigh contacts are the summed normal
forces of the contact points, max over the substeps, as the MuJoCo backend's touch sensors.

PyBullet reports a base's position at its centre of mass; this backend converts to and from the
trunk link frame, which is what MuJoCo and the robot description use.

Flat ground only: heightfield terrain is a MuJoCo feature here.
"""

from __future__ import annotations

import numpy as np
import torch

from unio4.deploy.observations import rotate_inverse
from unio4.robots.description import RobotDescription
from unio4.sim.backends.interface import Dynamics, RobotState
from unio4.sim.backends.pybullet_world import (
    TrunkFrame,
    contact_force,
    create_world,
    import_pybullet,
    joint_state,
    link_index,
    load_body,
    release_motors,
    rotate,
    set_friction,
    torque_step,
    urdf_file,
)
from unio4.sim.terrain import Terrain

PD_SUBSTEPS = 3  # PyBullet steps per task substep (5 ms / 3 = 1.7 ms)


class PybulletBackend:
    """``num_envs`` Go1s, one PyBullet world each, stepped at the robot's ``sim_dt``."""

    def __init__(self, robot: RobotDescription, num_envs: int, terrain: Terrain, link_contacts: bool = False) -> None:
        """``link_contacts``: also read the hips' and calves' ground contacts every step (evaluation; costs time)."""
        pb = import_pybullet()
        if terrain.spec is not None:
            raise ValueError("backend 'pybullet': only flat terrain is supported (set terrain.kind: flat)")
        self.pb, self.robot, self.num_envs = pb, robot, num_envs
        self.decimation = robot.control.decimation
        # PyBullet models no rotor inertia (MuJoCo's armature), so an explicit PD at the task's
        # 5 ms is unstable on the light calves: the PD runs PD_SUBSTEPS times per substep instead.
        self.pd_substeps = PD_SUBSTEPS
        self.dt = robot.control.sim_dt / self.pd_substeps
        self.kp = np.full(robot.num_joints, robot.control.kp)
        self.kd = np.full(robot.num_joints, robot.control.kd)
        self.tau_max = np.asarray(robot.torque_limits, dtype=np.float64)
        self.clients: list[int] = []
        self.bodies: list[int] = []
        self.grounds: list[int] = []
        with urdf_file(robot) as urdf:
            for _ in range(num_envs):
                c, ground = create_world(pb, self.dt)
                body = load_body(pb, c, urdf, 0.4)
                self.clients.append(c)
                self.bodies.append(body)
                self.grounds.append(ground)
        c, body = self.clients[0], self.bodies[0]
        index = link_index(pb, c, body)
        self.joints = [index[n] for n in robot.joint_short_names]
        self.feet = [index[f"{leg}_foot"] for leg in robot.legs]
        self.thighs = [index[f"{leg}_thigh"] for leg in robot.legs]
        self.links = [index[f"{leg}_{part}"] for part in ("hip", "calf") for leg in robot.legs] if link_contacts else []
        self.frame = TrunkFrame(pb, c, body)  # the same URDF in every world: one conversion for all
        self.nominal_mass = pb.getDynamicsInfo(body, -1, physicsClientId=c)[0]
        for c, body in zip(self.clients, self.bodies):
            release_motors(pb, c, body, self.joints)
        n, nj = num_envs, robot.num_joints
        self.kp_scale, self.kd_scale, self.strength = np.ones(n), np.ones(n), np.ones(n)
        self._tau = np.zeros((n, nj))
        self._foot = np.zeros((n, 4))
        self._trunk = np.zeros(n)
        self._thigh = np.zeros((n, 4))
        self._link = np.zeros((n, len(self.links)))
        for c, body in zip(self.clients, self.bodies):
            set_friction(pb, c, body, self.feet, robot.body.foot_friction)

    # ---- interface -------------------------------------------------------------------------
    def reset(
        self,
        env_ids: torch.Tensor,
        base_pos: torch.Tensor,
        base_quat: torch.Tensor,
        base_lin_vel_world: torch.Tensor,
        base_ang_vel_body: torch.Tensor,
        joint_pos: torch.Tensor,
        joint_vel: torch.Tensor,
    ) -> None:
        pb = self.pb
        pos, quat = base_pos.cpu().double().numpy(), base_quat.cpu().double().numpy()
        lin, ang = base_lin_vel_world.cpu().double().numpy(), base_ang_vel_body.cpu().double().numpy()
        q, dq = joint_pos.cpu().double().numpy(), joint_vel.cpu().double().numpy()
        for k, i in enumerate(env_ids.tolist()):
            c, body = self.clients[i], self.bodies[i]
            com, orn = self.frame.base_pose(pos[k], quat[k])
            pb.resetBasePositionAndOrientation(body, com, orn, physicsClientId=c)
            omega = rotate(quat[k], ang[k])
            pb.resetBaseVelocity(body, self.frame.base_velocity(lin[k], omega, quat[k]).tolist(), omega.tolist(), physicsClientId=c)
            for j, joint in enumerate(self.joints):
                pb.resetJointState(body, joint, float(q[k, j]), float(dq[k, j]), physicsClientId=c)
            self._foot[i], self._trunk[i], self._thigh[i], self._link[i] = 0.0, 0.0, 0.0, 0.0

    def step(self, joint_targets: torch.Tensor) -> RobotState:
        pb = self.pb
        targets = joint_targets.detach().cpu().double().numpy()
        self._foot[:], self._trunk[:], self._thigh[:], self._link[:] = 0.0, 0.0, 0.0, 0.0
        for i, (c, body) in enumerate(zip(self.clients, self.bodies)):
            for s in range(self.decimation * self.pd_substeps):
                q, dq = joint_state(pb, c, body, self.joints)
                target = targets[i, s // self.pd_substeps]
                tau = self.strength[i] * (self.kp_scale[i] * self.kp * (target - q) - self.kd_scale[i] * self.kd * dq)
                self._tau[i] = torque_step(pb, c, body, self.joints, tau, self.tau_max)
                self._read_contacts(i)
        return self.state()

    def _read_contacts(self, i: int) -> None:
        pb, c, body, ground = self.pb, self.clients[i], self.bodies[i], self.grounds[i]
        self._foot[i] = np.maximum(self._foot[i], [contact_force(pb, c, body, ground, f) for f in self.feet])
        self._thigh[i] = np.maximum(self._thigh[i], [contact_force(pb, c, body, ground, t) for t in self.thighs])
        self._trunk[i] = max(self._trunk[i], contact_force(pb, c, body, ground, -1))
        if self.links:
            self._link[i] = np.maximum(self._link[i], [contact_force(pb, c, body, ground, k) for k in self.links])

    def state(self) -> RobotState:
        pb, n = self.pb, self.num_envs
        pos, quat, lin, ang = np.zeros((n, 3)), np.zeros((n, 4)), np.zeros((n, 3)), np.zeros((n, 3))
        q, dq = np.zeros((n, self.robot.num_joints)), np.zeros((n, self.robot.num_joints))
        for i, (c, body) in enumerate(zip(self.clients, self.bodies)):
            pos[i], quat[i] = self.frame.trunk_pose(*pb.getBasePositionAndOrientation(body, physicsClientId=c))
            v, omega = pb.getBaseVelocity(body, physicsClientId=c)
            lin[i], ang[i] = self.frame.trunk_velocity(v, omega, quat[i]), rotate_inverse(np, quat[i], np.array(omega))
            states = pb.getJointStates(body, self.joints, physicsClientId=c)
            q[i], dq[i] = [st[0] for st in states], [st[1] for st in states]

        def t(x: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(x).float()

        return RobotState(
            base_pos=t(pos),
            base_quat=t(quat),
            base_lin_vel_world=t(lin),
            base_ang_vel_body=t(ang),
            joint_pos=t(q),
            joint_vel=t(dq),
            joint_torque=t(self._tau),
            foot_force=t(self._foot),
            trunk_contact=t(self._trunk),
            thigh_contact=t(self._thigh),
            link_contact=t(self._link),  # (N, 0) without link_contacts
        )

    def set_dynamics(self, env_ids: torch.Tensor, dynamics: Dynamics) -> None:
        pb = self.pb
        for k, i in enumerate(env_ids.tolist()):
            c, body = self.clients[i], self.bodies[i]
            set_friction(pb, c, body, self.feet, float(dynamics.friction[k]))
            pb.changeDynamics(body, -1, mass=self.nominal_mass + float(dynamics.added_mass[k]), physicsClientId=c)
            self.kp_scale[i], self.kd_scale[i] = float(dynamics.kp_scale[k]), float(dynamics.kd_scale[k])
            self.strength[i] = float(dynamics.motor_strength[k])

    def push(self, env_ids: torch.Tensor, delta_lin_vel_world: torch.Tensor) -> None:
        pb = self.pb
        for k, i in enumerate(env_ids.tolist()):
            c, body = self.clients[i], self.bodies[i]
            v, omega = pb.getBaseVelocity(body, physicsClientId=c)
            pb.resetBaseVelocity(body, (np.array(v) + delta_lin_vel_world[k].cpu().double().numpy()).tolist(), omega, physicsClientId=c)

    def close(self) -> None:
        for c in self.clients:
            self.pb.disconnect(physicsClientId=c)
        self.clients.clear()
