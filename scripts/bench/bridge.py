"""What the process bridge costs: the Go1 MuJoCo backend in a worker process vs in-process.

The Isaac Gym backend runs its engine in a worker (``sim/backends/bridge.py``); Isaac Gym cannot run here, so
the same bridge is timed with MuJoCo served by ``tests/mujoco_worker.py``. Prints, per env count, the
round trip of ``state()`` (transport alone: no physics) and ``step()`` through the worker and in-process.

Usage: OMP_NUM_THREADS=1 .venv/bin/python scripts/bench/bridge.py [--num-envs 64 1024]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from unio4.robots.description import load_robot
from unio4.sim.backends.mujoco_backend import MujocoBackend
from unio4.sim.backends.remote_backend import RemoteBackend
from unio4.sim.terrain import TerrainConfig, make_terrain

WORKER = Path(__file__).resolve().parents[2] / "tests" / "mujoco_worker.py"


def ms_per_call(call: Callable[[], object], calls: int) -> float:
    t0 = time.perf_counter()
    for _ in range(calls):
        call()
    return 1e3 * (time.perf_counter() - t0) / calls


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--num-envs", type=int, nargs="+", default=[64, 1024])
    p.add_argument("--steps", type=int, default=20, help="step() calls timed per backend")
    args = p.parse_args()
    torch.set_num_threads(1)
    for n in args.num_envs:
        remote = RemoteBackend([sys.executable, str(WORKER)], {"num_envs": n}, "mujoco-worker")
        targets = torch.zeros(n, remote.decimation, 12)
        state_ms = ms_per_call(remote.state, 10 * args.steps)
        remote_ms = ms_per_call(lambda r=remote, t=targets: r.step(t), args.steps)
        remote.close()
        local = MujocoBackend(load_robot("go1"), n, make_terrain(TerrainConfig()), num_threads=1)
        local_ms = ms_per_call(lambda b=local, t=targets: b.step(t), args.steps)
        local.close()
        print(f"{n} envs: state() round trip {state_ms:.3f} ms; step() in a worker {remote_ms:.2f} ms, in-process {local_ms:.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
