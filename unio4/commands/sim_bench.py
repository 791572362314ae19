"""``unio4 sim bench``: policy and physics steps/s of a backend."""

from __future__ import annotations

import argparse

from unio4.commands.options import add_task_args, console, overrides

WORDS = ("sim", "bench")
HELP = "policy and physics steps/s of a backend"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_task_args(p)
    p.set_defaults(num_envs=256)
    p.add_argument("--num-envs-list", type=int, nargs="+", help="several env counts in one table")
    p.add_argument("--steps", type=int, default=100, help="timed policy steps")
    p.add_argument("--threads", type=int, default=None, help="physics threads (default: the usable cores or OMP_NUM_THREADS)")


def run(args: argparse.Namespace) -> int:
    from rich.table import Table

    from unio4.sim.bench import bench_task
    from unio4.sim.config import load_task_config

    cfg = load_task_config(args.task, overrides(args, "task"))
    table = Table(title=f"unio4 sim bench ({args.task})")
    for col in ("backend", "envs", "policy steps/s", "physics steps/s", "raw policy steps/s", "task overhead"):
        table.add_column(col, justify="right")
    for n in args.num_envs_list or [args.num_envs]:
        r = bench_task(cfg, args.backend, n, steps=args.steps, seed=args.seed, num_threads=args.threads)
        table.add_row(
            r.backend,
            str(n),
            f"{r.policy_steps_per_s:,.0f}",
            f"{r.physics_steps_per_s:,.0f}",
            f"{r.raw_policy_steps_per_s:,.0f}",
            f"{100 * r.task_overhead:.1f} %",
        )
    console().print(table)
    return 0
