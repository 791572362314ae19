"""A :class:`unio4.sim.backends.interface.PhysicsBackend` whose engine is a worker process (:mod:`unio4.sim.backends.bridge`).

The task sees an ordinary backend; every call becomes one request/answer exchange of numpy arrays
with the worker. Inputs may live on any device (they are copied to host memory for the trip);
state comes back as CPU tensors, as the CPU backends return it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from typing import Any

import numpy as np
import torch

from unio4.sim.backends.bridge import Arrays, BridgeError, EngineProcess
from unio4.sim.backends.interface import Dynamics, RobotState

OPTIONAL_FIELDS = ("link_contact",)  # served by workers that have them; (N, 0) otherwise
STATE_FIELDS = tuple(f.name for f in fields(RobotState) if f.name not in OPTIONAL_FIELDS)


def _host(tensor: torch.Tensor, dtype: type[np.generic] = np.float32) -> np.ndarray:
    return tensor.detach().cpu().numpy().astype(dtype, copy=False)


class RemoteBackend:
    """``num_envs`` robots simulated by the engine the worker ``argv`` serves, built from ``spec``."""

    def __init__(self, argv: Sequence[str], spec: dict[str, Any], name: str, env: dict[str, str] | None = None) -> None:
        self.worker = EngineProcess(argv, spec, name, env)
        self.num_envs = int(self.worker.info["num_envs"])
        self.decimation = int(self.worker.info["decimation"])

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
        self.worker.call(
            "reset",
            env_ids=_host(env_ids, np.int64),
            base_pos=_host(base_pos),
            base_quat=_host(base_quat),
            base_lin_vel_world=_host(base_lin_vel_world),
            base_ang_vel_body=_host(base_ang_vel_body),
            joint_pos=_host(joint_pos),
            joint_vel=_host(joint_vel),
        )

    def step(self, joint_targets: torch.Tensor) -> RobotState:
        return self._state(self.worker.call("step", joint_targets=_host(joint_targets))[1])

    def state(self) -> RobotState:
        return self._state(self.worker.call("state")[1])

    def set_dynamics(self, env_ids: torch.Tensor, dynamics: Dynamics) -> None:
        # foot_contact stays here: the worker's engine keeps its own contact model
        arrays = {f.name: _host(getattr(dynamics, f.name)) for f in fields(Dynamics) if f.name != "foot_contact"}
        self.worker.call("set_dynamics", None, env_ids=_host(env_ids, np.int64), **arrays)

    def push(self, env_ids: torch.Tensor, delta_lin_vel_world: torch.Tensor) -> None:
        self.worker.call("push", env_ids=_host(env_ids, np.int64), delta_lin_vel_world=_host(delta_lin_vel_world))

    def close(self) -> None:
        self.worker.close()

    def _state(self, arrays: Arrays) -> RobotState:
        missing = [name for name in STATE_FIELDS if name not in arrays]
        if missing:
            raise BridgeError(f"{self.worker.name} worker: state lacks {', '.join(missing)}")
        state = {name: arrays[name] for name in STATE_FIELDS}
        state.update({name: arrays.get(name, np.zeros((self.num_envs, 0), np.float32)) for name in OPTIONAL_FIELDS})
        for name, array in state.items():
            if array.shape[:1] != (self.num_envs,):
                raise BridgeError(
                    f"{self.worker.name} worker: state field {name!r} has shape {array.shape}, expected ({self.num_envs}, ...)"
                )
        return RobotState(**{name: torch.from_numpy(a.astype(np.float32, copy=False)) for name, a in state.items()})
