"""PPO from scratch on a reduced Go1 task against standing still: a quick check of the learner on the Go1 task.

``go1_flat`` without domain randomisation (no dynamics randomisation, sensor noise or pushes) and with unshaped
PD targets, 256 robots, 130 iterations (0.8 M samples, 5-10 minutes on 2 CPU cores). Prints the mean action's
linear-velocity and yaw-rate errors against standing still on the same 16 robots and commands, and whether both
are at least 10 % lower (docs/benchmarks/time-to-walk.md, "Time to walk": the reduced check). The full goal,
walking from scratch with randomisation, is ``unio4 bench walk``.

Usage: .venv/bin/python scripts/bench/ppo_reduced_go1.py [--iterations 130] [--seed 0] [--out DIR]
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from pathlib import Path

import torch

from unio4.configs.loader import load, resolve_config_path
from unio4.learning.online.runner import OnlineConfig, train_online
from unio4.learning.policy import GaussianActor
from unio4.sim.config import load_task_config
from unio4.sim.evaluate import tracking_metrics
from unio4.sim.task import Go1VelocityTask

REDUCED = ["randomization.enabled=false", "targets.enabled=false"]
BAR = 0.9  # the learned policy's errors must be below this share of standing still's


def train(iterations: int, seed: int, out: Path) -> GaussianActor:
    """PPO (the ``ppo_go1`` preset) from scratch on 256 robots of the reduced task: the last actor."""
    preset = load(OnlineConfig, resolve_config_path("ppo_go1", "train"), [])
    env = Go1VelocityTask(load_task_config("go1_flat", REDUCED), 256, seed=seed, training=True)
    trained: list[GaussianActor] = []

    def keep(iteration: int, scalars: dict[str, float], actor: GaussianActor) -> bool:
        trained.append(actor)
        return False

    train_online(env, replace(preset, iterations=iterations, seed=seed), out, show_progress=True, on_iteration=keep)
    env.close()
    return trained[-1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--iterations", type=int, default=130)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="the training run's folder (default: a temporary one)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        actor = train(args.iterations, args.seed, args.out or Path(tmp))
    judge = Go1VelocityTask(load_task_config("go1_flat", REDUCED), 16, seed=10_000)
    with torch.no_grad():
        stand = tracking_metrics(judge, lambda obs: torch.zeros(obs.shape[0], 12), 250, seed=10_000)
        learned = tracking_metrics(judge, lambda obs: actor(obs)[0], 250, seed=10_000)
    judge.close()
    for key, unit in (("lin_vel_error", "m/s"), ("yaw_rate_error", "rad/s")):
        print(f"{key}: learned {learned[key]:.3f} {unit}, standing {stand[key]:.3f} {unit}, ratio {learned[key] / stand[key]:.2f}")
    beats = all(learned[k] < BAR * stand[k] for k in ("lin_vel_error", "yaw_rate_error"))
    print(f"beats standing by 10 % on both: {'yes' if beats else 'no'}")


if __name__ == "__main__":
    main()
