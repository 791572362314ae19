"""``unio4 sim gait``: walk with the built-in model-free trot and report distance and falls."""

from __future__ import annotations

import argparse

from unio4.commands.options import add_task_args, overrides

WORDS = ("sim", "gait")
HELP = "walk with the built-in model-free trot and report distance and falls"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_task_args(p)
    p.set_defaults(num_envs=10)
    p.add_argument("--vx", type=float, default=0.8, help="commanded forward speed, m/s")
    p.add_argument("--seconds", type=float, default=10.0)


def run(args: argparse.Namespace) -> int:
    from unio4.sim.config import load_task_config
    from unio4.sim.gait import walk
    from unio4.sim.task import Go1VelocityTask

    straight = [f"commands.lin_vel_x=[{args.vx},{args.vx}]", "commands.lin_vel_y=[0,0]", "commands.ang_vel_yaw=[0,0]"]
    cfg = load_task_config(args.task, [*straight, *overrides(args, "task")])
    task = Go1VelocityTask(cfg, args.num_envs, backend=args.backend, seed=args.seed)
    result = walk(task, args.seconds)
    task.close()
    distance, fell = result.distance, result.fell
    print(
        f"trot at vx={args.vx} m/s for {args.seconds:.0f} s over {args.num_envs} randomised robots: "
        f"distance min {distance.min():.2f} m, mean {distance.mean():.2f} m, falls {int(fell.sum())}"
    )
    return 0
