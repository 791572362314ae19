"""Where the PPO loop's time goes on the Go1 task: samples/s of each phase, for thread splits.

    python scripts/bench/ppo_phases.py --num-envs 256 --iterations 12 --threads 2 --physics-threads 2

Runs ``unio4 train online``'s loop (:func:`unio4.learning.online.runner.train_online`, preset ``ppo_go1``) from
scratch and times, per iteration: physics (the backend's step), the task's own work around it
(actions, rewards, observations, resets), the policy's sampling, storage and GAE, and the update.
The first ``--warmup`` iterations are not counted. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from unio4.configs.loader import load, resolve_config_path
from unio4.learning.online.ppo import PPO
from unio4.learning.online.runner import OnlineConfig, train_online
from unio4.sim.config import load_task_config
from unio4.sim.task import Go1VelocityTask


def timed(totals: dict[str, float], key: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` that adds its wall clock to ``totals[key]``."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            totals[key] = totals.get(key, 0.0) + time.perf_counter() - t0

    return wrapper


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--num-envs", type=int, default=256)
    p.add_argument("--iterations", type=int, default=12)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--physics-threads", type=int, default=2, help="MuJoCo rollout threads")
    p.add_argument("--config", default="ppo_go1")
    p.add_argument("--set", action="append", default=[], help="train preset override KEY=VALUE")
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    task_cfg = load_task_config("go1_flat")
    cfg = replace(load(OnlineConfig, resolve_config_path(args.config, "train"), args.set), iterations=args.iterations)
    env = Go1VelocityTask(task_cfg, args.num_envs, seed=0, num_threads=args.physics_threads, training=True)
    totals: dict[str, float] = {}
    env.backend.step = timed(totals, "physics", env.backend.step)  # type: ignore[method-assign]
    env.step = timed(totals, "env_step", env.step)  # type: ignore[method-assign]
    for name in ("act", "process_env_step", "compute_returns", "update"):
        setattr(PPO, name, timed(totals, name, getattr(PPO, name)))
    per_iteration = args.num_envs * cfg.ppo.num_steps
    marks: list[tuple[float, dict[str, float]]] = []

    def on_iteration(iteration: int, scalars: dict[str, float], actor: object) -> bool:
        marks.append((time.perf_counter(), dict(totals)))
        return False

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        train_online(env, cfg, Path(tmp), on_iteration=on_iteration, show_progress=False)
    env.close()
    (t_start, start), (t_end, end) = marks[args.warmup - 1], marks[-1]
    counted = len(marks) - args.warmup
    samples = counted * per_iteration
    seconds = {k: end.get(k, 0.0) - start.get(k, 0.0) for k in end}
    wall = t_end - t_start
    phases = {
        "physics": seconds["physics"],
        "task (rewards, observations, resets)": seconds["env_step"] - seconds["physics"],
        "policy sampling": seconds["act"],
        "storage + GAE": seconds["process_env_step"] + seconds["compute_returns"],
        "update": seconds["update"],
    }
    phases["other (logging, copies, loop)"] = wall - sum(phases.values())
    print(
        json.dumps(
            {
                "num_envs": args.num_envs,
                "torch_threads": args.threads,
                "physics_threads": args.physics_threads,
                "samples": samples,
                "samples_per_s": samples / wall,
                "collect_samples_per_s": samples / (wall - seconds["update"]),
                "update_samples_per_s": samples / seconds["update"],
                "seconds": {k: round(v, 3) for k, v in phases.items()},
                "share": {k: round(v / wall, 3) for k, v in phases.items()},
                "total_s_including_setup": round(time.perf_counter() - t0, 1),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
