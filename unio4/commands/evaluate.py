"""``unio4 eval``: a bundle on the Go1 task under randomisation: tracking error, falls, power and gait quality (sim-to-sim gate)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from unio4.commands.options import add_out, add_set, check_out_file, console, overrides
from unio4.sim.backends import BACKENDS

if TYPE_CHECKING:  # types only: the CLI loads every command module, also where torch is missing
    from rich.table import Table

    from unio4.sim.gait_metrics import GaitMetrics

WORDS = ("eval",)
HELP = "a bundle on the Go1 task under randomisation: tracking error, falls, power, gait quality (sim-to-sim gate)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("bundle", help="policy bundle directory (unio4 export)")
    p.add_argument("--backend", nargs="+", default=["mujoco", "pybullet"], choices=BACKENDS, help="engines to evaluate in (default: both)")
    p.add_argument("--task", default="go1_flat", help="task preset in configs/task/ or a YAML path")
    add_set(p, "task.commands.lin_vel_x=[0.5,0.5]", "task")
    p.add_argument("--num-envs", type=int, default=16)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--seed", type=int, default=0)
    add_out(p, "also write the numbers to this JSON file")
    p.add_argument(
        "--full-range",
        action="store_true",
        help="command the task's full ranges (default: the ranges the bundle was trained on, from its manifest; "
        "a --set task.commands.* override implies the task's ranges)",
    )


def run(args: argparse.Namespace) -> int:
    import json

    from rich.table import Table

    from unio4.sim.config import load_task_config
    from unio4.sim.evaluate import evaluate_bundle_gait, trained_range_config

    check_out_file(args.out)  # before any work
    cfg = load_task_config(args.task, overrides(args, "task"))
    full = args.full_range or any(o.startswith("commands.") for o in overrides(args, "task"))
    shown = cfg if full else trained_range_config(cfg, args.bundle)
    c = shown.commands
    ranges = f"vx {list(c.lin_vel_x)}, vy {list(c.lin_vel_y)}, yaw {list(c.ang_vel_yaw)} ({'task' if full else 'trained'} ranges)"
    results = {
        b: evaluate_bundle_gait(args.bundle, shown, b, args.num_envs, args.seconds, seed=args.seed, full_range=True) for b in args.backend
    }
    rows = {b: tracking for b, (tracking, _) in results.items()}
    print(f"unio4 eval {args.bundle}: {args.num_envs} randomised robots x {args.seconds:.0f} s, task {args.task}")
    print(f"  commands: {ranges}")
    table = Table()
    for col in ("backend", "lin vel error m/s", "yaw rate error rad/s", "falls / robot-minute", "power W"):
        table.add_column(col, justify="right")
    for backend, r in rows.items():
        table.add_row(
            backend, f"{r['lin_vel_error']:.3f}", f"{r['yaw_rate_error']:.3f}", f"{r['falls_per_robot_minute']:.2f}", f"{r['power']:.1f}"
        )
    console().print(table)
    gait = {b: metrics for b, (_, metrics) in results.items()}
    console().print(gait_table(gait))
    if args.out:
        Path(args.out).write_text(json.dumps({b: {**rows[b], "gait": gait[b].as_dict()} for b in rows}, indent=2))
    return 0


def gait_table(rows: dict[str, GaitMetrics]) -> Table:
    """The gait metrics (unio4.sim.gait_metrics, docs/gait.md), one row per engine."""
    from rich.table import Table

    from unio4.sim.gait_metrics import gait_cells, gait_columns

    table = Table(title="gait (docs/gait.md)")
    for col in ("backend", *gait_columns()):
        table.add_column(col, justify="right")
    for backend, m in rows.items():
        table.add_row(backend, *gait_cells(m))
    return table
