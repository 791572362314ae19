"""MuJoCo (CPU) backend: one MjModel per env, batched over threads with ``mujoco.rollout``.

Each policy step is one ``Rollout.rollout`` call over all envs for ``decimation`` substeps; the
PD law runs inside MuJoCo on every substep (see :mod:`unio4.robots.mjcf`). Per-env models carry the
per-env randomisation (friction, trunk mass, gains). The solver warm start is reset to zero at
every policy step so a rollout depends only on its initial state and controls, whichever thread
runs it: same seed, same rollout.
"""

from __future__ import annotations

import copy
import os

import mujoco
import mujoco.rollout
import numpy as np
import torch

from unio4.robots.description import RobotDescription
from unio4.sim.backends.interface import Dynamics, RobotState
from unio4.sim.backends.mujoco_model import ModelIndex, compile_model
from unio4.sim.terrain import Terrain

STATE_SPEC = mujoco.mjtState.mjSTATE_FULLPHYSICS
STIFF_SOLIMP = np.array([0.9, 0.95, 0.001, 0.5, 2.0])  # MuJoCo's default impedance (dmin, dmax, width, midpoint, power): stiff


MAX_PHYSICS_THREADS = 8  # past this, threads add little on one model's small per-env steps


def default_physics_threads() -> int:
    """Physics threads when a caller names none: the cores this process may run on, or ``OMP_NUM_THREADS``
    where it is set. A process told to keep its thread pools to one thread (runs sharing the cores, a
    test worker beside real-time processes) then steps physics on one thread too, instead of on every core."""
    limit = os.environ.get("OMP_NUM_THREADS", "")
    cores = int(limit) if limit.isdigit() and int(limit) > 0 else len(os.sched_getaffinity(0))
    return max(1, min(cores, MAX_PHYSICS_THREADS))


class MujocoBackend:
    """Batched MuJoCo simulation of ``num_envs`` robots on ``terrain``."""

    def __init__(
        self, robot: RobotDescription, num_envs: int, terrain: Terrain, num_threads: int | None = None, link_contacts: bool = False
    ) -> None:
        """``link_contacts``: the model gets hip and calf contact sensors and the state reports them (evaluation)."""
        self.robot = robot
        self.num_envs = num_envs
        self.decimation = robot.control.decimation
        self.base_model = m = compile_model(robot, terrain, link_contacts=link_contacts)
        self.models = [copy.copy(m) for _ in range(num_envs)]
        self.num_threads = num_threads or default_physics_threads()
        self.datas = [mujoco.MjData(m) for _ in range(self.num_threads)]
        self._rollout = mujoco.rollout.Rollout(nthread=self.num_threads)
        self.nstate = mujoco.mj_stateSize(m, STATE_SPEC)
        # Index maps into the full physics state [time, qpos, qvel, ...] and sensordata, SDK order.
        idx = ModelIndex.of(m, robot)
        self._qpos_idx = 1 + idx.qpos
        self._qvel_idx = 1 + m.nq + idx.qvel
        self._ctrl_idx = idx.ctrl
        self._foot_idx, self._thigh_idx, self._trunk_idx = idx.foot_sensor, idx.thigh_sensor, idx.trunk_sensor
        self._torque_idx = idx.torque_sensor
        self._link_idx = idx.link_sensor if idx.link_sensor is not None else np.zeros(0, dtype=np.int64)  # none: (N, 0)
        self._trunk_body = idx.trunk_body
        self._friction_geoms = idx.friction_geoms
        self._nominal = (m.body_mass[self._trunk_body], m.actuator_gainprm[:, 0].copy(), m.actuator_biasprm[:, 1:3].copy())
        self._feet = idx.foot_geoms
        self._pads = (m.geom_solimp[self._feet].copy(), m.geom_friction[self._feet, 1:].copy())  # the feet's contact as built
        # Buffers (float64, what MuJoCo reads/writes).
        data = mujoco.MjData(m)
        mujoco.mj_resetDataKeyframe(m, data, 0)
        home = np.zeros(self.nstate)
        mujoco.mj_getState(m, data, home, STATE_SPEC)
        self._state = np.tile(home, (num_envs, 1))
        self._warmstart = np.zeros((num_envs, m.nv))
        self._ctrl = np.zeros((num_envs, self.decimation, m.nu))
        self._traj = np.zeros((num_envs, self.decimation, self.nstate))
        self._sens = np.zeros((num_envs, self.decimation, m.nsensordata))

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
        ids = env_ids.cpu().numpy()
        s = self._state
        s[ids, 0] = 0.0
        s[ids, 1:4] = base_pos.cpu().double().numpy()
        s[ids, 4:8] = base_quat.cpu().double().numpy()
        s[np.ix_(ids, self._qpos_idx)] = joint_pos.cpu().double().numpy()
        qv = 1 + self.base_model.nq
        s[ids, qv : qv + 3] = base_lin_vel_world.cpu().double().numpy()
        s[ids, qv + 3 : qv + 6] = base_ang_vel_body.cpu().double().numpy()
        s[np.ix_(ids, self._qvel_idx)] = joint_vel.cpu().double().numpy()
        self._sens[ids] = 0.0

    def step(self, joint_targets: torch.Tensor) -> RobotState:
        self._ctrl[:, :, self._ctrl_idx] = joint_targets.detach().cpu().double().numpy()
        self._rollout.rollout(
            self.models,
            self.datas,
            self._state,
            self._ctrl,
            initial_warmstart=self._warmstart,
            state=self._traj,
            sensordata=self._sens,
            skip_checks=True,
            nstep=self.decimation,
        )
        self._state[:] = self._traj[:, -1]
        return self.state()

    def state(self) -> RobotState:
        s = torch.from_numpy(self._state).float()
        sens_max = torch.from_numpy(self._sens.max(axis=1)).float()
        last = torch.from_numpy(self._sens[:, -1]).float()
        qv = 1 + self.base_model.nq
        return RobotState(
            base_pos=s[:, 1:4],
            base_quat=s[:, 4:8],
            base_lin_vel_world=s[:, qv : qv + 3],
            base_ang_vel_body=s[:, qv + 3 : qv + 6],
            joint_pos=s[:, self._qpos_idx],
            joint_vel=s[:, self._qvel_idx],
            joint_torque=last[:, self._torque_idx],
            foot_force=sens_max[:, self._foot_idx],
            trunk_contact=sens_max[:, self._trunk_idx],
            thigh_contact=sens_max[:, self._thigh_idx],
            link_contact=sens_max[:, self._link_idx],
        )

    def set_dynamics(self, env_ids: torch.Tensor, dynamics: Dynamics) -> None:
        mass, gain, bias = self._nominal
        for k, i in enumerate(env_ids.tolist()):
            model = self.models[i]
            model.geom_friction[self._friction_geoms, 0] = float(dynamics.friction[k])
            model.body_mass[self._trunk_body] = mass + float(dynamics.added_mass[k])
            strength = float(dynamics.motor_strength[k])
            kp = float(dynamics.kp_scale[k]) * strength
            model.actuator_gainprm[:, 0] = gain * kp
            model.actuator_biasprm[:, 1] = bias[:, 0] * kp
            model.actuator_biasprm[:, 2] = bias[:, 1] * float(dynamics.kd_scale[k]) * strength
            if dynamics.foot_contact is not None:
                self._set_foot_contact(model, float(dynamics.foot_contact[k]))

    def _set_foot_contact(self, model: mujoco.MjModel, blend: float) -> None:
        """Blend the feet's contact from the pads as built (0) to MuJoCo's stiff default without twist friction (1)."""
        solimp, twist = self._pads
        model.geom_solimp[self._feet] = (1 - blend) * solimp + blend * STIFF_SOLIMP
        model.geom_friction[self._feet, 1:] = (1 - blend) * twist

    def push(self, env_ids: torch.Tensor, delta_lin_vel_world: torch.Tensor) -> None:
        qv = 1 + self.base_model.nq
        self._state[env_ids.cpu().numpy(), qv : qv + 3] += delta_lin_vel_world.cpu().double().numpy()

    def close(self) -> None:
        self._rollout.close()
