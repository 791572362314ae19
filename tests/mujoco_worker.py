"""A bridge worker that serves the MuJoCo backend: the bridge's test engine, a real engine in a real process.

Isaac Gym is not on PyPI and needs a GPU, so ``tests/sim/backends/test_bridge.py`` drives :mod:`unio4.sim.backends.bridge` and
:class:`unio4.sim.backends.remote_backend.RemoteBackend` against this worker and compares it with MuJoCo in-process.
Spec: ``{"num_envs": N}``; the Go1 description on flat ground, as the ``go1_flat`` task builds it.
"""

from __future__ import annotations

import sys
from dataclasses import fields
from typing import Any

import numpy as np
import torch

from unio4.robots.description import load_robot
from unio4.sim.backends.bridge import Arrays, serve
from unio4.sim.backends.interface import Dynamics
from unio4.sim.backends.mujoco_backend import MujocoBackend
from unio4.sim.terrain import TerrainConfig, make_terrain


class MujocoEngine:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.backend = MujocoBackend(load_robot("go1"), int(spec["num_envs"]), make_terrain(TerrainConfig()), num_threads=1)
        self.num_envs, self.decimation = self.backend.num_envs, self.backend.decimation

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
        arrays = (env_ids, base_pos, base_quat, base_lin_vel_world, base_ang_vel_body, joint_pos, joint_vel)
        self.backend.reset(*(torch.from_numpy(a) for a in arrays))

    def step(self, joint_targets: np.ndarray) -> Arrays:
        self.backend.step(torch.from_numpy(joint_targets))
        return self.state()

    def state(self) -> Arrays:
        state = self.backend.state()
        return {f.name: getattr(state, f.name).numpy() for f in fields(state)}

    def set_dynamics(
        self,
        env_ids: np.ndarray,
        friction: np.ndarray,
        added_mass: np.ndarray,
        kp_scale: np.ndarray,
        kd_scale: np.ndarray,
        motor_strength: np.ndarray,
    ) -> None:
        parameters = (friction, added_mass, kp_scale, kd_scale, motor_strength)
        self.backend.set_dynamics(torch.from_numpy(env_ids), Dynamics(*(torch.from_numpy(a) for a in parameters)))

    def push(self, env_ids: np.ndarray, delta_lin_vel_world: np.ndarray) -> None:
        self.backend.push(torch.from_numpy(env_ids), torch.from_numpy(delta_lin_vel_world))

    def close(self) -> None:
        self.backend.close()


if __name__ == "__main__":
    torch.set_num_threads(1)
    serve(MujocoEngine, sys.stdin.buffer, sys.stdout.buffer)
