"""MuJoCo Warp backend: every robot is one world of a single batched MJWarp simulation.

The MJCF, the PD law (MuJoCo ``general`` actuators, see :mod:`unio4.robots.mjcf`), the substep and the
sensors are the CPU backend's, so the two engines differ only in the solver implementation. The
simulation lives in Warp arrays on ``device`` (a CUDA GPU, or Warp's CPU device for tests) and
torch reads and writes them through zero-copy views (:func:`warp.to_torch`): a reset, a dynamics
change or a push is an indexed torch write into the simulator's own memory.

One policy step is ``decimation`` substeps of [copy this substep's joint targets into ``ctrl``,
``mjw.step``, running max of the contact sensors]. On CUDA the whole loop is captured once as a
CUDA graph and replayed, so a policy step costs one graph launch. Friction, trunk mass and the PD
gains are per-world model fields (``put_model(batch_sizes=...)``), which is how domain
randomisation differs per robot without one model per robot.
"""

from __future__ import annotations

import mujoco
import torch

from unio4.robots.description import RobotDescription
from unio4.sim.backends.interface import Dynamics, RobotState
from unio4.sim.backends.mujoco_model import ModelIndex, compile_model
from unio4.sim.config import WarpConfig
from unio4.sim.terrain import Terrain

try:
    import mujoco_warp as mjw
    import warp as wp
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("the mujoco_warp backend needs `pip install unio4[gpu]` (mujoco-warp and warp-lang)") from exc

wp.config.log_level = wp.LOG_WARNING  # kernel compiles and cache loads are not the user's business

# Model fields that randomisation writes per world; every other field is shared by all worlds.
PER_WORLD_FIELDS = ("geom_friction", "body_mass", "actuator_gainprm", "actuator_biasprm")


@wp.kernel
def _set_ctrl(targets: wp.array3d(dtype=wp.float32), substep: int, ctrl: wp.array2d(dtype=wp.float32)):  # type: ignore[valid-type]
    world, act = wp.tid()  # type: ignore[misc]  # a 2-D launch
    ctrl[world, act] = targets[world, substep, act]


@wp.kernel
def _max_sensors(
    sensordata: wp.array2d(dtype=wp.float32),  # type: ignore[valid-type]
    first: int,
    running_max: wp.array2d(dtype=wp.float32),  # type: ignore[valid-type]
):
    world, i = wp.tid()  # type: ignore[misc]  # a 2-D launch
    if first == 1:
        running_max[world, i] = sensordata[world, i]
    else:
        running_max[world, i] = wp.max(running_max[world, i], sensordata[world, i])


def default_device() -> str:
    """``cuda:0`` when Warp sees a GPU, else Warp's CPU device."""
    wp.init()
    return "cuda:0" if wp.is_cuda_available() else "cpu"


def warp_device(name: str | None) -> wp.Device:
    """Warp's device for ``task.warp.device`` (None: :func:`default_device`), or a one-line error for one this machine lacks."""
    wp.init()
    name = name or default_device()
    if name.startswith("cuda") and not wp.is_cuda_available():
        raise ValueError(
            f"task.warp.device={name}: Warp sees no CUDA device on this machine (--backend mujoco_warp); use cpu, or leave it unset"
        )
    try:
        return wp.get_device(name)
    except (ValueError, RuntimeError) as exc:
        raise ValueError(f"task.warp.device={name}: {exc}; use cpu or cuda:N") from None


class MujocoWarpBackend:
    """``num_envs`` Go1s as the worlds of one MJWarp simulation on ``cfg.device``.

    ``state()`` returns tensors on ``output_device`` (the task's device): fresh copies, since the
    task keeps states across steps (on the same GPU a device-local copy; elsewhere one transfer).
    On CUDA, torch's writes (targets, resets, randomisation) and Warp's simulation run on different
    streams; each step makes the simulation stream wait for torch's and torch's for the simulation,
    on the GPU, without blocking the CPU.
    """

    def __init__(
        self,
        robot: RobotDescription,
        num_envs: int,
        terrain: Terrain,
        cfg: WarpConfig,
        output_device: str = "cpu",
    ) -> None:
        self.robot = robot
        self.num_envs = num_envs
        self.decimation = robot.control.decimation
        self.device = warp_device(cfg.device)
        self.torch_device = torch.device(wp.device_to_torch(self.device))
        self.output_device = torch.device(output_device)
        m = compile_model(robot, terrain)
        self.mj_model = m
        data = mujoco.MjData(m)
        mujoco.mj_resetDataKeyframe(m, data, 0)
        with wp.ScopedDevice(self.device):
            self.model = mjw.put_model(m, batch_sizes={name: num_envs for name in PER_WORLD_FIELDS})
            self.data = mjw.put_data(m, data, nworld=num_envs, nconmax=cfg.nconmax, njmax=cfg.njmax)
            self._targets = wp.zeros((num_envs, self.decimation, m.nu), dtype=wp.float32)
            self._sens_max = wp.zeros((num_envs, m.nsensordata), dtype=wp.float32)
        view = wp.to_torch
        self.qpos, self.qvel = view(self.data.qpos), view(self.data.qvel)
        self.sensordata, self.sensor_max = view(self.data.sensordata), view(self._sens_max)
        self.targets = view(self._targets)
        self.friction = view(self.model.geom_friction)
        self.body_mass = view(self.model.body_mass)
        self.gainprm, self.biasprm = view(self.model.actuator_gainprm), view(self.model.actuator_biasprm)

        # Index maps (SDK order -> MuJoCo addresses), the CPU backend's, as tensors on the simulation's device.
        idx, dev = ModelIndex.of(m, robot), self.torch_device
        self._qpos_idx, self._qvel_idx = torch.as_tensor(idx.qpos, device=dev), torch.as_tensor(idx.qvel, device=dev)
        self._ctrl_idx = torch.as_tensor(idx.ctrl, device=dev)
        self._foot_idx, self._thigh_idx = torch.as_tensor(idx.foot_sensor, device=dev), torch.as_tensor(idx.thigh_sensor, device=dev)
        self._trunk_idx = idx.trunk_sensor
        self._torque_idx = torch.as_tensor(idx.torque_sensor, device=dev)
        self._trunk_body = idx.trunk_body
        self._friction_geoms = torch.as_tensor(idx.friction_geoms, device=dev)
        self._nominal_mass = float(m.body_mass[self._trunk_body])
        self._nominal_gain = torch.as_tensor(m.actuator_gainprm[:, 0], dtype=torch.float32, device=dev)
        self._nominal_bias = torch.as_tensor(m.actuator_biasprm[:, 1:3], dtype=torch.float32, device=dev)

        self._graph = None
        if self.device.is_cuda and cfg.cuda_graph:
            # One eager policy step first, so every kernel MJWarp builds lazily is compiled and loaded
            # (a capture cannot do that); then the initial state is put back and the loop captured.
            wp.synchronize_device(self.device)
            restored = (self.qpos, self.qvel, view(self.data.time), self.sensordata, self.sensor_max)
            saved = [x.clone() for x in restored]
            with wp.ScopedDevice(self.device):
                self._substeps()
            wp.synchronize_device(self.device)
            for live, before in zip(restored, saved):
                live.copy_(before)
            with wp.ScopedDevice(self.device), wp.ScopedCapture() as capture:
                self._substeps()
            self._graph = capture.graph
        wp.synchronize_device(self.device)  # put_data's copies are done before torch reads the views

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
        ids = env_ids.to(self.torch_device)
        rows = ids.unsqueeze(1)
        dev = self.torch_device
        self.qpos[ids, 0:3] = base_pos.to(dev, torch.float32)
        self.qpos[ids, 3:7] = base_quat.to(dev, torch.float32)
        self.qpos[rows, self._qpos_idx] = joint_pos.to(dev, torch.float32)
        self.qvel[ids, 0:3] = base_lin_vel_world.to(dev, torch.float32)
        self.qvel[ids, 3:6] = base_ang_vel_body.to(dev, torch.float32)  # a free joint's angular velocity is in the body frame
        self.qvel[rows, self._qvel_idx] = joint_vel.to(dev, torch.float32)
        self.sensor_max[ids] = 0.0
        self.sensordata[ids] = 0.0

    def step(self, joint_targets: torch.Tensor) -> RobotState:
        self.targets[:, :, self._ctrl_idx] = joint_targets.detach().to(self.torch_device, torch.float32)
        with wp.ScopedDevice(self.device):
            if not self.device.is_cuda:
                self._substeps()
                return self.state()
            torch_stream, sim_stream = wp.stream_from_torch(self.torch_device), wp.get_stream(self.device)
            sim_stream.wait_stream(torch_stream)  # torch's writes land before the substeps read them
            if self._graph is not None:
                wp.capture_launch(self._graph)
            else:
                self._substeps()
            torch_stream.wait_stream(sim_stream)  # ... and torch reads the state after they ran
        return self.state()

    def state(self) -> RobotState:
        qpos, qvel, sens, last = self.qpos, self.qvel, self.sensor_max, self.sensordata
        out = self.output_device

        def take(x: torch.Tensor) -> torch.Tensor:
            return x.to(out, copy=True)  # the task keeps states across steps; never hand out live views

        return RobotState(
            base_pos=take(qpos[:, 0:3]),
            base_quat=take(qpos[:, 3:7]),
            base_lin_vel_world=take(qvel[:, 0:3]),
            base_ang_vel_body=take(qvel[:, 3:6]),
            joint_pos=take(qpos[:, self._qpos_idx]),
            joint_vel=take(qvel[:, self._qvel_idx]),
            joint_torque=take(last[:, self._torque_idx]),
            foot_force=take(sens[:, self._foot_idx]),
            trunk_contact=take(sens[:, self._trunk_idx]),
            thigh_contact=take(sens[:, self._thigh_idx]),
            link_contact=torch.zeros(self.num_envs, 0, device=out),  # hips and calves: the CPU engines' evaluation only
        )

    def set_dynamics(self, env_ids: torch.Tensor, dynamics: Dynamics) -> None:
        dev = self.torch_device
        ids = env_ids.to(dev)

        def per_env(x: torch.Tensor) -> torch.Tensor:
            return x.to(dev, torch.float32).unsqueeze(1)

        self.friction[ids.unsqueeze(1), self._friction_geoms, 0] = per_env(dynamics.friction)
        self.body_mass[ids, self._trunk_body] = self._nominal_mass + dynamics.added_mass.to(dev, torch.float32)
        strength = per_env(dynamics.motor_strength)
        kp = per_env(dynamics.kp_scale) * strength
        self.gainprm[ids, :, 0] = self._nominal_gain * kp
        self.biasprm[ids, :, 1] = self._nominal_bias[:, 0] * kp
        self.biasprm[ids, :, 2] = self._nominal_bias[:, 1] * per_env(dynamics.kd_scale) * strength

    def push(self, env_ids: torch.Tensor, delta_lin_vel_world: torch.Tensor) -> None:
        self.qvel[env_ids.to(self.torch_device), 0:3] += delta_lin_vel_world.to(self.torch_device, torch.float32)

    def close(self) -> None:
        self._graph = None

    # ---- internals ----------------------------------------------------------------------------
    def _substeps(self) -> None:
        """One policy step of physics; on CUDA this is what the graph records."""
        n, nu, ns = self.num_envs, self.mj_model.nu, self.mj_model.nsensordata
        self.data.qacc_warmstart.zero_()  # like the CPU backend: a step depends only on its start state
        for k in range(self.decimation):
            wp.launch(_set_ctrl, dim=(n, nu), inputs=[self._targets, k, self.data.ctrl])
            mjw.step(self.model, self.data)
            wp.launch(_max_sensors, dim=(n, ns), inputs=[self.data.sensordata, int(k == 0), self._sens_max])
