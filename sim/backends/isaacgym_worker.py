"""The Go1 in Isaac Gym Preview 4, served to unio4 over :mod:`unio4.sim.backends.bridge` from the Isaac Gym interpreter.

Isaac Gym Preview 4 supports Python <= 3.8 and the torch builds of its time; unio4 needs Python >= 3.10
and torch 2.13. :class:`unio4.sim.backends.isaacgym_backend.IsaacGymBackend` therefore starts this file as a worker
under the Isaac Gym interpreter (``UNIO4_ISAACGYM_PYTHON``, e.g. the ``python3.8`` of the
``docker/isaacgym`` image) and sends it a spec made from the robot description: the generated Go1
URDF, joint and body names and the PD constants. This file must run there: Python 3.8 syntax, and
nothing from unio4 but two torch-free modules: ``bridge.py`` beside it and ``deploy/observations.py``
(both kept to Python 3.8 syntax for this reason; ruff checks them with a py38 target).

The engine is written against Isaac Gym's documented tensor API. The state lives in its GPU tensors
wrapped as torch tensors (``gymtorch.wrap_tensor``): actor root states (position, xyzw quaternion,
world linear and angular velocity), DOF states and net contact forces. The PD law runs in torch on
every physics substep and is applied with ``set_dof_actuation_force_tensor`` (DOFs in effort mode),
as the other backends do. Isaac Gym sorts the legs FL, FR, RL, RR; the map to the SDK's FR, FL, RR,
RL order comes from the DOF names. Friction and mass use the actor property setters, which the GPU
pipeline only honours before ``prepare_sim``: there they apply once, at creation; gains and motor
strength are randomised in the torch PD law at every reset.
"""

from __future__ import annotations

import importlib
import math
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

import numpy as np

if TYPE_CHECKING or __package__:
    from unio4.deploy import observations
    from unio4.sim.backends import bridge
else:  # run as a file by the Isaac Gym interpreter, which has no unio4: Python put this folder on the path
    import importlib.util

    import bridge

    _here = Path(__file__).resolve().parent  # drop it, so that no other unio4 module can shadow one of Isaac Gym's
    sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != _here]
    _spec = importlib.util.spec_from_file_location("observations", _here.parents[1] / "deploy" / "observations.py")
    assert _spec is not None and _spec.loader is not None
    observations = sys.modules["observations"] = importlib.util.module_from_spec(_spec)  # dataclasses look it up there
    _spec.loader.exec_module(observations)

if TYPE_CHECKING:
    import torch
    from isaacgym import gymapi

MISSING = (
    "backend 'isaacgym' needs NVIDIA Isaac Gym Preview 4 and its torch importable by the worker interpreter {python} "
    "(Isaac Gym is not on PyPI and supports Python <= 3.8; set UNIO4_ISAACGYM_PYTHON to its python), see docker/isaacgym"
)


class GymTorch(Protocol):
    """The two functions of ``isaacgym.gymtorch`` the engine uses (the stubs package has none)."""

    def wrap_tensor(self, gym_tensor: gymapi.Tensor) -> torch.Tensor: ...

    def unwrap_tensor(self, torch_tensor: torch.Tensor) -> gymapi.Tensor: ...


class IsaacGymEngine:
    """``spec["num_envs"]`` Go1s in one Isaac Gym PhysX simulation on ``spec["device"]``; numpy in and out."""

    def __init__(self, spec: dict[str, Any]) -> None:
        try:
            importlib.import_module("isaacgym")  # before torch: Isaac Gym refuses to load after it
            self.gymtorch = cast(GymTorch, importlib.import_module("isaacgym.gymtorch"))
            import torch
            from isaacgym import gymapi as ga  # typed by the isaacgym-stubs package
        except ImportError as exc:
            raise ImportError(f"{MISSING.format(python=sys.executable)} [{exc}]") from exc
        self.torch = torch
        self.num_envs = num_envs = int(spec["num_envs"])
        self.device = torch.device(spec["device"])
        self.decimation = int(spec["decimation"])
        self.gym = ga.acquire_gym()
        params = self._sim_params(float(spec["sim_dt"]))
        self.sim = self.gym.create_sim(self.device.index or 0, -1, ga.SIM_PHYSX, params)
        self._add_ground()
        asset = self._load_asset(spec["urdf"], float(spec["armature"]))
        dof_names = list(self.gym.get_asset_dof_names(asset))
        self.sdk_to_gym = torch.tensor([dof_names.index(n) for n in spec["joint_names"]], device=self.device)
        self.gym_to_sdk = torch.argsort(self.sdk_to_gym)
        bodies = self.gym.get_asset_rigid_body_dict(asset)
        self.feet = torch.tensor([bodies[leg + "_foot"] for leg in spec["legs"]], device=self.device)
        self.thighs = torch.tensor([bodies[leg + "_thigh"] for leg in spec["legs"]], device=self.device)
        self.trunk = bodies["trunk"]
        self.num_bodies = len(bodies)
        self.envs, self.actors = self._create_envs(asset, float(spec["nominal_base_height"]))
        self.env_origins = self._env_origins()
        self.gym.prepare_sim(self.sim)

        self.root = self.gymtorch.wrap_tensor(self.gym.acquire_actor_root_state_tensor(self.sim))  # (N, 13)
        self.dof = self.gymtorch.wrap_tensor(self.gym.acquire_dof_state_tensor(self.sim)).view(num_envs, -1, 2)
        self.contacts = self.gymtorch.wrap_tensor(self.gym.acquire_net_contact_force_tensor(self.sim)).view(num_envs, self.num_bodies, 3)
        self._init_pd_state(len(spec["joint_names"]), float(spec["kp"]), float(spec["kd"]), spec["torque_limits"])

    def _sim_params(self, sim_dt: float) -> gymapi.SimParams:
        """PhysX with z up, one substep per ``sim_dt`` (the PD law runs in torch), on the GPU pipeline for a CUDA device."""
        from isaacgym import gymapi as ga  # loaded by __init__, after isaacgym itself

        params = ga.SimParams()
        params.dt = sim_dt
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
        return params

    def _add_ground(self) -> None:
        """A flat ground plane, friction 1: the worker serves flat terrain only."""
        from isaacgym import gymapi as ga  # loaded by __init__, after isaacgym itself

        plane = ga.PlaneParams()
        plane.normal = ga.Vec3(0.0, 0.0, 1.0)
        plane.static_friction = plane.dynamic_friction = 1.0
        self.gym.add_ground(self.sim, plane)

    def _load_asset(self, urdf: str, armature: float) -> gymapi.Asset:
        """The generated URDF as an asset with effort-driven DOFs and its foot links kept."""
        from isaacgym import gymapi as ga  # loaded by __init__, after isaacgym itself

        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "go1.urdf").write_text(urdf)
            options = ga.AssetOptions()
            options.default_dof_drive_mode = int(ga.DOF_MODE_EFFORT)
            options.collapse_fixed_joints = False  # keep the foot links: their contact forces are the foot sensors
            options.fix_base_link = False
            options.armature = armature
            options.disable_gravity = False
            return self.gym.load_asset(self.sim, tmp, "go1.urdf", options)

    def _create_envs(self, asset: gymapi.Asset, base_height: float) -> tuple[list[Any], list[int]]:
        """One env per robot on a square grid, each actor's DOFs in effort mode with no built-in PD: the envs and actors."""
        from isaacgym import gymapi as ga  # loaded by __init__, after isaacgym itself

        dof_props = self.gym.get_asset_dof_properties(asset)
        dof_props["driveMode"][:] = int(ga.DOF_MODE_EFFORT)
        dof_props["stiffness"][:] = 0.0
        dof_props["damping"][:] = 0.0
        spacing = 2.0
        per_row = int(math.ceil(math.sqrt(self.num_envs)))
        lower, upper = ga.Vec3(-spacing, -spacing, 0.0), ga.Vec3(spacing, spacing, spacing)
        start = ga.Transform()
        start.p = ga.Vec3(0.0, 0.0, base_height)
        envs: list[Any] = []
        actors: list[int] = []
        for i in range(self.num_envs):
            env = self.gym.create_env(self.sim, lower, upper, per_row)
            actor = self.gym.create_actor(env, asset, start, "go1", i, 1, 0)  # collision group i, no self-collision
            self.gym.set_actor_dof_properties(env, actor, dof_props)
            envs.append(env)
            actors.append(actor)
        return envs, actors

    def _env_origins(self) -> torch.Tensor:
        """Each env's origin in the world: positions in and out are relative to it."""
        origins = self.torch.zeros(self.num_envs, 3, device=self.device)
        for i, env in enumerate(self.envs):
            origin = self.gym.get_env_origin(env)
            origins[i] = self.torch.tensor([origin.x, origin.y, origin.z])
        return origins

    def _init_pd_state(self, num_joints: int, kp: float, kd: float, torque_limits: list[float]) -> None:
        """Per-env PD gains and motor strength (randomised at resets), torque limits and the contact-force maxima."""
        torch, n = self.torch, self.num_envs
        self.nominal_kp, self.nominal_kd = kp, kd
        self.kp = torch.full((n, num_joints), self.nominal_kp, device=self.device)
        self.kd = torch.full((n, num_joints), self.nominal_kd, device=self.device)
        self.strength = torch.ones(n, 1, device=self.device)
        self.tau_max = torch.tensor(torque_limits, dtype=torch.float32, device=self.device)
        self.tau = torch.zeros(n, num_joints, device=self.device)
        self.foot_force = torch.zeros(n, 4, device=self.device)
        self.thigh_force = torch.zeros(n, 4, device=self.device)
        self.trunk_force = torch.zeros(n, device=self.device)
        self.nominal_mass: float | None = None

    def _t(self, array: np.ndarray) -> torch.Tensor:
        return self.torch.from_numpy(array).to(self.device)

    def reset(
        self,
        env_ids: np.ndarray,
        base_pos: np.ndarray,
        base_quat: np.ndarray,
        base_lin_vel_world: np.ndarray,
        base_ang_vel_body: np.ndarray,
        joint_pos: np.ndarray,
        joint_vel: np.ndarray,
    ) -> None:
        ids, quat = self._t(env_ids), self._t(base_quat)
        self.root[ids, 0:3] = self._t(base_pos) + self.env_origins[ids]
        self.root[ids, 3:7] = quat[:, [1, 2, 3, 0]]  # w, x, y, z -> x, y, z, w
        self.root[ids, 7:10] = self._t(base_lin_vel_world)
        conjugate = quat * self.torch.tensor([1.0, -1.0, -1.0, -1.0], device=self.device)
        self.root[ids, 10:13] = observations.rotate_inverse(self.torch, conjugate, self._t(base_ang_vel_body))  # body -> world
        self.dof[ids, :, 0] = self._t(joint_pos)[:, self.gym_to_sdk]
        self.dof[ids, :, 1] = self._t(joint_vel)[:, self.gym_to_sdk]
        indices, ut = ids.to(self.torch.int32), self.gymtorch.unwrap_tensor
        self.gym.set_actor_root_state_tensor_indexed(self.sim, ut(self.root), ut(indices), len(indices))
        self.gym.set_dof_state_tensor_indexed(self.sim, ut(self.dof), ut(indices), len(indices))
        self.foot_force[ids], self.thigh_force[ids], self.trunk_force[ids] = 0.0, 0.0, 0.0

    def step(self, joint_targets: np.ndarray) -> dict[str, np.ndarray]:
        targets = self._t(joint_targets)
        self.foot_force.zero_()
        self.thigh_force.zero_()
        self.trunk_force.zero_()
        for s in range(self.decimation):
            q, dq = self.dof[:, :, 0][:, self.sdk_to_gym], self.dof[:, :, 1][:, self.sdk_to_gym]
            tau = self.strength * (self.kp * (targets[:, s] - q) - self.kd * dq)
            self.tau = self.torch.maximum(self.torch.minimum(tau, self.tau_max), -self.tau_max)
            self.gym.set_dof_actuation_force_tensor(self.sim, self.gymtorch.unwrap_tensor(self.tau[:, self.gym_to_sdk].contiguous()))
            self.gym.simulate(self.sim)
            if self.device.type == "cpu":
                self.gym.fetch_results(self.sim, True)
            self.gym.refresh_dof_state_tensor(self.sim)
            self.gym.refresh_net_contact_force_tensor(self.sim)
            normal = self.contacts[:, :, 2].clamp(min=0.0)
            self.foot_force = self.torch.maximum(self.foot_force, normal[:, self.feet])
            self.thigh_force = self.torch.maximum(self.thigh_force, self.contacts[:, self.thighs].norm(dim=-1))
            self.trunk_force = self.torch.maximum(self.trunk_force, self.contacts[:, self.trunk].norm(dim=-1))
        self.gym.refresh_actor_root_state_tensor(self.sim)
        return self.state()

    def state(self) -> dict[str, np.ndarray]:
        quat = self.root[:, [6, 3, 4, 5]]  # x, y, z, w -> w, x, y, z
        fields = {
            "base_pos": self.root[:, 0:3] - self.env_origins,
            "base_quat": quat,
            "base_lin_vel_world": self.root[:, 7:10],
            "base_ang_vel_body": observations.rotate_inverse(self.torch, quat, self.root[:, 10:13]),
            "joint_pos": self.dof[:, :, 0][:, self.sdk_to_gym],
            "joint_vel": self.dof[:, :, 1][:, self.sdk_to_gym],
            "joint_torque": self.tau,
            "foot_force": self.foot_force,
            "trunk_contact": self.trunk_force,
            "thigh_contact": self.thigh_force,
        }
        return {name: value.float().cpu().numpy() for name, value in fields.items()}

    def set_dynamics(
        self,
        env_ids: np.ndarray,
        friction: np.ndarray,
        added_mass: np.ndarray,
        kp_scale: np.ndarray,
        kd_scale: np.ndarray,
        motor_strength: np.ndarray,
    ) -> None:
        for k, i in enumerate(env_ids.tolist()):
            env, actor = self.envs[i], self.actors[i]
            shapes = self.gym.get_actor_rigid_shape_properties(env, actor)
            for shape in shapes:
                shape.friction = float(friction[k])
            self.gym.set_actor_rigid_shape_properties(env, actor, shapes)
            bodies = self.gym.get_actor_rigid_body_properties(env, actor)
            if self.nominal_mass is None:
                self.nominal_mass = float(bodies[self.trunk].mass)
            bodies[self.trunk].mass = self.nominal_mass + float(added_mass[k])
            self.gym.set_actor_rigid_body_properties(env, actor, bodies, True)
        ids = self._t(env_ids)
        self.kp[ids] = self.nominal_kp * self._t(kp_scale).unsqueeze(1)
        self.kd[ids] = self.nominal_kd * self._t(kd_scale).unsqueeze(1)
        self.strength[ids] = self._t(motor_strength).unsqueeze(1)

    def push(self, env_ids: np.ndarray, delta_lin_vel_world: np.ndarray) -> None:
        ids = self._t(env_ids)
        self.root[ids, 7:10] += self._t(delta_lin_vel_world)
        indices, ut = ids.to(self.torch.int32), self.gymtorch.unwrap_tensor
        self.gym.set_actor_root_state_tensor_indexed(self.sim, ut(self.root), ut(indices), len(indices))

    def close(self) -> None:
        self.gym.destroy_sim(self.sim)


def main() -> None:
    """Serve the engine on stdin/stdout. Isaac Gym and PhysX print to stdout from C++, so the protocol
    keeps a private copy of the stdout descriptor and fd 1 is pointed at stderr before anything loads."""
    writer = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    bridge.serve(IsaacGymEngine, sys.stdin.buffer, writer)


if __name__ == "__main__":
    main()
