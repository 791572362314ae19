"""Isaac Gym (Preview 4) backend: the engine runs in a worker under Isaac Gym's own Python.

Isaac Gym Preview 4 ships bindings for Python <= 3.8 only, and unio4 needs Python >= 3.10 and torch
2.13, so the two cannot share an interpreter. This backend starts ``sim/backends/isaacgym_worker.py`` under
the interpreter named by ``UNIO4_ISAACGYM_PYTHON`` (default ``python3.8``; the ``docker/isaacgym``
image sets it) and talks to it through :mod:`unio4.sim.backends.bridge`: the task calls an ordinary
:class:`unio4.sim.backends.interface.PhysicsBackend`, every call is one exchange of numpy arrays over a pipe. The
robot description is turned into the worker's spec here (the generated Go1 URDF, names, PD
constants), so the worker needs nothing from unio4.

Cost of the bridge, stated plainly: state crosses process memory every policy step (about 250
bytes per robot each way) instead of staying on the GPU; the Isaac Gym worker itself runs its
PD law and PhysX on the GPU. The project's tests do not run Isaac Gym (it is not
on PyPI); the bridge is tested with the MuJoCo engine in a worker, and the engine is type-checked
against the ``isaacgym-stubs`` package.
"""

from __future__ import annotations

import os
from pathlib import Path

from unio4.robots.description import RobotDescription
from unio4.robots.urdf import build_urdf
from unio4.sim.backends.bridge import WorkerUnavailable
from unio4.sim.backends.isaacgym_worker import MISSING
from unio4.sim.backends.remote_backend import RemoteBackend
from unio4.sim.terrain import Terrain

WORKER = Path(__file__).resolve().with_name("isaacgym_worker.py")
PYTHON_VARIABLE = "UNIO4_ISAACGYM_PYTHON"


class IsaacGymBackend(RemoteBackend):
    """``num_envs`` Go1s in one Isaac Gym simulation on ``device``, in a worker process."""

    def __init__(self, robot: RobotDescription, num_envs: int, terrain: Terrain, device: str = "cuda:0") -> None:
        if terrain.spec is not None:
            raise ValueError("backend 'isaacgym': only flat terrain is wired so far (set terrain.type: flat)")
        control = robot.control
        spec = {
            "num_envs": num_envs,
            "device": device,
            "urdf": build_urdf(robot),
            "joint_names": robot.joint_names,
            "legs": list(robot.legs),
            "sim_dt": control.sim_dt,
            "decimation": control.decimation,
            "kp": float(control.kp),
            "kd": float(control.kd),
            "armature": float(robot.joints.armature),
            "torque_limits": [float(t) for t in robot.torque_limits],
            "nominal_base_height": control.nominal_base_height,
        }
        python = os.environ.get(PYTHON_VARIABLE, "python3.8")
        try:
            super().__init__([python, str(WORKER)], spec, "isaacgym")
        except WorkerUnavailable as exc:
            raise ImportError(f"{MISSING.format(python=python)} [{exc}]") from None
