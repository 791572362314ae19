"""``unio4 collect``: log quadruped data from a controller in the simulator (HDF5, D4RL keys)."""

from __future__ import annotations

import argparse
from pathlib import Path

from unio4.commands.options import add_out, add_task_args, check_out_file, overrides, suggest

WORDS = ("collect",)
HELP = "log quadruped data from a controller in the simulator (HDF5, D4RL keys)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_task_args(p)
    p.add_argument("--policy", default="gait", help="'gait' (the built-in trot) or a policy bundle directory (unio4 export)")
    p.add_argument("--explore", action="store_true", help="with a bundle: sample actions from its Gaussian instead of the mean")
    p.add_argument("--action-noise", type=float, default=0.0, help="std of Gaussian noise added to every action (action units; 0: none)")
    p.add_argument("--steps", type=int, default=500, help="policy steps per env")
    add_out(p, "HDF5 file to write", default="runs/data/gait.h5")


def run(args: argparse.Namespace) -> int:
    from unio4.learning.data.collect import collect
    from unio4.sim.config import load_task_config
    from unio4.sim.policies import bundle_policy, check_action_noise, gait_policy, with_action_noise
    from unio4.sim.task import Go1VelocityTask

    check_out_file(args.out)  # before any work
    check_action_noise(args.action_noise)  # before the task is built: bad input costs nothing
    if args.policy != "gait" and not Path(args.policy).is_dir():
        hint = suggest(args.policy, ["gait"]) or " (a bundle directory from unio4 export)"
        raise ValueError(f"--policy {args.policy!r}: neither 'gait' nor a policy bundle directory{hint}")
    task = Go1VelocityTask(load_task_config(args.task, overrides(args, "task")), args.num_envs, backend=args.backend, seed=args.seed)
    if args.policy == "gait":
        policy, source = gait_policy(task), "gait"
    else:
        policy, source = bundle_policy(args.policy, task, explore=args.explore, seed=args.seed), f"bundle:{args.policy}"
    if args.action_noise:
        policy, source = with_action_noise(policy, args.action_noise, seed=args.seed), f"{source}+noise:{args.action_noise:g}"
    data = collect(task, policy, args.steps, seed=args.seed, source=source, show_progress=True)
    task.close()
    data.save(Path(args.out))
    episodes = int((data.terminals | data.timeouts).sum())
    print(
        f"wrote {args.out}: {len(data)} transitions, {episodes} episodes, {int(data.terminals.sum())} terminals, "
        f"mean reward {float(data.rewards.mean()):+.4f}"
    )
    return 0
