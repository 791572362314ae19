"""Isaac Gym (Preview 4) backend, written against its documented tensor API.

The Go1 URDF generated from the robot description is loaded once and instanced per env; the
state lives in Isaac Gym's GPU tensors wrapped as torch tensors (``gymtorch.wrap_tensor``):
actor root states (position, xyzw quaternion, world linear and angular velocity), DOF states
and net contact forces. The PD law runs in torch on every physics substep and is applied with
``set_dof_actuation_force_tensor`` (DOFs in effort mode), as the other backends do.

Isaac Gym's DOF order sorts legs FL, FR, RL, RR; ``RobotDescription.sdk_to_backend("isaacgym")``
maps the SDK's FR, FL, RR, RL order onto it, and the generated URDF uses the same order so the map
is exercised in the MuJoCo/PyBullet tests too.

Limits, stated plainly: Isaac Gym Preview 4 is not on PyPI and supports Python <= 3.8, while unio4
needs Python >= 3.10, so this adapter cannot run in unio4's own environment today; it is type-
checked in CI against the ``isaacgym-stubs`` package and waits for an Isaac Gym build for a newer
Python (or a process bridge). Friction and mass randomisation use the actor property setters,
which Isaac Gym's GPU pipeline only honours before ``prepare_sim``: with the GPU pipeline they are
applied once, at creation; gains and motor strength are randomised in the torch PD law at every reset.
"""

from __future__ import annotations

import importlib
import math
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

import torch

from robots.description import RobotDescription
from robots.urdf import build_urdf
from sim.backend import Dynamics, RobotState
from sim.observations import rotate_inverse
from sim.terrain import Terrain

if TYPE_CHECKING:
    from isaacgym import gymapi

MISSING = (
    "backend 'isaacgym' needs NVIDIA Isaac Gym Preview 4 importable as `isaacgym` (not on PyPI; it supports Python <= 3.8), "
    "see docker/README.md"
)


class GymTorch(Protocol):
    """The two functions of ``isaacgym.gymtorch`` this backend uses (the stubs package has none)."""

    def wrap_tensor(self, gym_tensor: gymapi.Tensor) -> torch.Tensor: ...

    def unwrap_tensor(self, torch_tensor: torch.Tensor) -> gymapi.Tensor: ...


def import_gymtorch() -> GymTorch:
    """``isaacgym.gymtorch``, or an ImportError that says what is needed (``isaacgym`` itself imports first)."""
    try:
        importlib.import_module("isaacgym")
        return cast(GymTorch, importlib.import_module("isaacgym.gymtorch"))
    except ImportError as exc:
        raise ImportError(MISSING) from exc


class IsaacGymBackend:
    """``num_envs`` Go1s in one Isaac Gym PhysX simulation on ``device``."""

    def __init__(self, robot: RobotDescription, num_envs: int, terrain: Terrain, device: str = "cuda:0") -> None:
        if terrain.spec is not None:
            raise ValueError("backend 'isaacgym': only flat terrain is wired so far (set terrain.type: flat)")
        self.gymtorch = import_gymtorch()
        from isaacgym import gymapi as ga  # typed by the isaacgym-stubs package

        self.robot, self.num_envs = robot, num_envs
        self.device = torch.device(device)
        self.decimation = robot.control.decimation
        self.gym = ga.acquire_gym()
        params = ga.SimParams()
        params.dt = robot.control.sim_dt
        params.substeps = 1
        params.up_axis = ga.UP_AXIS_Z
        params.gravity = ga.Vec3(0.0, 0.0, -9.81)
        params.use_gpu_pipeline = self.device.type == "cuda"
        params.physx.use_gpu = self.device.type == "cuda"
        params.physx.num_position_iterations = 4
        params.physx.num_velocity_iterations = 0
        params.physx.contact_offset = 0.01
        params.physx.rest_offset = 0.0
        params.physx.max_depenetration_velocity = 1.0
        gpu = self.device.index or 0
        self.sim = self.gym.create_sim(gpu, -1, ga.SIM_PHYSX, params)
        plane = ga.PlaneParams()
        plane.normal = ga.Vec3(0.0, 0.0, 1.0)
        plane.static_friction = plane.dynamic_friction = 1.0
        self.gym.add_ground(self.sim, plane)

        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "go1.urdf").write_text(build_urdf(robot))
            options = ga.AssetOptions()
            options.default_dof_drive_mode = int(ga.DOF_MODE_EFFORT)
            options.collapse_fixed_joints = False  # keep the foot links: their contact forces are the foot sensors
            options.fix_base_link = False
            options.armature = float(robot.joints.armature)
            options.disable_gravity = False
            asset = self.gym.load_asset(self.sim, tmp, "go1.urdf", options)
        dof_names = list(self.gym.get_asset_dof_names(asset))
        self.sdk_to_gym = torch.tensor([dof_names.index(n) for n in robot.joint_names], device=self.device)
        self.gym_to_sdk = torch.argsort(self.sdk_to_gym)
        bodies = self.gym.get_asset_rigid_body_dict(asset)
        self.feet = torch.tensor([bodies[f"{leg}_foot"] for leg in robot.legs], device=self.device)
        self.thighs = torch.tensor([bodies[f"{leg}_thigh"] for leg in robot.legs], device=self.device)
        self.trunk = bodies["trunk"]
        self.num_bodies = len(bodies)

        dof_props = self.gym.get_asset_dof_properties(asset)
        dof_props["driveMode"][:] = int(ga.DOF_MODE_EFFORT)
        dof_props["stiffness"][:] = 0.0
        dof_props["damping"][:] = 0.0
        spacing = 2.0
        per_row = int(math.ceil(math.sqrt(num_envs)))
        lower, upper = ga.Vec3(-spacing, -spacing, 0.0), ga.Vec3(spacing, spacing, spacing)
        start = ga.Transform()
        start.p = ga.Vec3(0.0, 0.0, robot.control.nominal_base_height)
        self.envs: list[Any] = []
        self.actors: list[int] = []
        for i in range(num_envs):
            env = self.gym.create_env(self.sim, lower, upper, per_row)
            actor = self.gym.create_actor(env, asset, start, "go1", i, 1, 0)  # collision group i, no self-collision
            self.gym.set_actor_dof_properties(env, actor, dof_props)
            self.envs.append(env)
            self.actors.append(actor)
        self.env_origins = torch.zeros(num_envs, 3, device=self.device)
        for i, env in enumerate(self.envs):
            origin = self.gym.get_env_origin(env)
            self.env_origins[i] = torch.tensor([origin.x, origin.y, origin.z])
        self.gym.prepare_sim(self.sim)

        self.root = self.gymtorch.wrap_tensor(self.gym.acquire_actor_root_state_tensor(self.sim))  # (N, 13)
        self.dof = self.gymtorch.wrap_tensor(self.gym.acquire_dof_state_tensor(self.sim)).view(num_envs, -1, 2)
        self.contacts = self.gymtorch.wrap_tensor(self.gym.acquire_net_contact_force_tensor(self.sim)).view(num_envs, self.num_bodies, 3)
        nj = robot.num_joints
        self.kp = torch.full((num_envs, nj), float(robot.control.kp), device=self.device)
        self.kd = torch.full((num_envs, nj), float(robot.control.kd), device=self.device)
        self.strength = torch.ones(num_envs, 1, device=self.device)
        self.tau_max = torch.as_tensor(robot.torque_limits, dtype=torch.float32, device=self.device)
        self.tau = torch.zeros(num_envs, nj, device=self.device)
        self.foot_force = torch.zeros(num_envs, 4, device=self.device)
        self.thigh_force = torch.zeros(num_envs, 4, device=self.device)
        self.trunk_force = torch.zeros(num_envs, device=self.device)
        self.nominal_kp, self.nominal_kd = float(robot.control.kp), float(robot.control.kd)

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
        ids = env_ids.to(self.device)
        quat = base_quat.to(self.device)
        self.root[ids, 0:3] = base_pos.to(self.device) + self.env_origins[ids]
        self.root[ids, 3:7] = quat[:, [1, 2, 3, 0]]  # w, x, y, z -> x, y, z, w
        self.root[ids, 7:10] = base_lin_vel_world.to(self.device)
        conjugate = quat * torch.tensor([1.0, -1.0, -1.0, -1.0], device=self.device)
        self.root[ids, 10:13] = rotate_inverse(torch, conjugate, base_ang_vel_body.to(self.device))  # body -> world
        self.dof[ids, :, 0] = joint_pos.to(self.device)[:, self.gym_to_sdk]
        self.dof[ids, :, 1] = joint_vel.to(self.device)[:, self.gym_to_sdk]
        indices = ids.to(torch.int32)
        ut = self.gymtorch.unwrap_tensor
        self.gym.set_actor_root_state_tensor_indexed(self.sim, ut(self.root), ut(indices), len(indices))
        self.gym.set_dof_state_tensor_indexed(self.sim, ut(self.dof), ut(indices), len(indices))
        self.foot_force[ids], self.thigh_force[ids], self.trunk_force[ids] = 0.0, 0.0, 0.0

    def step(self, joint_targets: torch.Tensor) -> RobotState:
        targets = joint_targets.to(self.device)
        self.foot_force.zero_()
        self.thigh_force.zero_()
        self.trunk_force.zero_()
        for s in range(self.decimation):
            q, dq = self.dof[:, :, 0][:, self.sdk_to_gym], self.dof[:, :, 1][:, self.sdk_to_gym]
            tau = self.strength * (self.kp * (targets[:, s] - q) - self.kd * dq)
            self.tau = torch.maximum(torch.minimum(tau, self.tau_max), -self.tau_max)
            self.gym.set_dof_actuation_force_tensor(self.sim, self.gymtorch.unwrap_tensor(self.tau[:, self.gym_to_sdk].contiguous()))
            self.gym.simulate(self.sim)
            if self.device.type == "cpu":
                self.gym.fetch_results(self.sim, True)
            self.gym.refresh_dof_state_tensor(self.sim)
            self.gym.refresh_net_contact_force_tensor(self.sim)
            normal = self.contacts[:, :, 2].clamp(min=0.0)
            self.foot_force = torch.maximum(self.foot_force, normal[:, self.feet])
            self.thigh_force = torch.maximum(self.thigh_force, self.contacts[:, self.thighs].norm(dim=-1))
            self.trunk_force = torch.maximum(self.trunk_force, self.contacts[:, self.trunk].norm(dim=-1))
        self.gym.refresh_actor_root_state_tensor(self.sim)
        return self.state()

    def state(self) -> RobotState:
        quat = self.root[:, [6, 3, 4, 5]]  # x, y, z, w -> w, x, y, z
        return RobotState(
            base_pos=(self.root[:, 0:3] - self.env_origins).cpu(),
            base_quat=quat.cpu(),
            base_lin_vel_world=self.root[:, 7:10].cpu(),
            base_ang_vel_body=rotate_inverse(torch, quat, self.root[:, 10:13]).cpu(),
            joint_pos=self.dof[:, :, 0][:, self.sdk_to_gym].cpu(),
            joint_vel=self.dof[:, :, 1][:, self.sdk_to_gym].cpu(),
            joint_torque=self.tau.cpu(),
            foot_force=self.foot_force.cpu(),
            trunk_contact=self.trunk_force.cpu(),
            thigh_contact=self.thigh_force.cpu(),
        )

    def set_dynamics(self, env_ids: torch.Tensor, dynamics: Dynamics) -> None:
        for k, i in enumerate(env_ids.tolist()):
            env, actor = self.envs[i], self.actors[i]
            shapes = self.gym.get_actor_rigid_shape_properties(env, actor)
            for shape in shapes:
                shape.friction = float(dynamics.friction[k])
            self.gym.set_actor_rigid_shape_properties(env, actor, shapes)
            bodies = self.gym.get_actor_rigid_body_properties(env, actor)
            if not hasattr(self, "_nominal_mass"):
                self._nominal_mass = bodies[self.trunk].mass
            bodies[self.trunk].mass = self._nominal_mass + float(dynamics.added_mass[k])
            self.gym.set_actor_rigid_body_properties(env, actor, bodies, True)
        ids = env_ids.to(self.device)
        self.kp[ids] = self.nominal_kp * dynamics.kp_scale.to(self.device).unsqueeze(1)
        self.kd[ids] = self.nominal_kd * dynamics.kd_scale.to(self.device).unsqueeze(1)
        self.strength[ids] = dynamics.motor_strength.to(self.device).unsqueeze(1)

    def push(self, env_ids: torch.Tensor, delta_lin_vel_world: torch.Tensor) -> None:
        ids = env_ids.to(self.device)
        self.root[ids, 7:10] += delta_lin_vel_world.to(self.device)
        indices = ids.to(torch.int32)
        ut = self.gymtorch.unwrap_tensor
        self.gym.set_actor_root_state_tensor_indexed(self.sim, ut(self.root), ut(indices), len(indices))

    def close(self) -> None:
        self.gym.destroy_sim(self.sim)
