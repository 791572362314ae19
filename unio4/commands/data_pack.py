"""``unio4 data pack``: rollout logs (unio4 deploy --out) -> HDF5 dataset, rewards recomputed from raw state."""

from __future__ import annotations

import argparse
from pathlib import Path

from unio4.commands.options import add_out, add_set, check_out_file, overrides

WORDS = ("data", "pack")
HELP = "rollout logs (unio4 deploy --out) -> HDF5 dataset, rewards recomputed from raw state"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", nargs="+", help="run directories, one episode each")
    add_out(p, "HDF5 file to write", required=True)
    p.add_argument("--task", default="go1_flat", help="task preset whose reward config scores the logs")
    add_set(p, "task.rewards.weights.tracking_lin_vel=2.0", "task")
    p.add_argument("--stance-force", type=float, default=20.0, help="foot force above which a foot carries the leg odometry")


def run(args: argparse.Namespace) -> int:
    from unio4.learning.data.pack import pack_runs
    from unio4.sim.config import load_task_config

    check_out_file(args.out)  # before any work
    dataset = pack_runs([Path(r) for r in args.runs], load_task_config(args.task, overrides(args, "task")), args.stance_force)
    out = Path(args.out)
    dataset.save(out)
    ret = float(dataset.rewards.sum()) / max(1, int((dataset.terminals | dataset.timeouts).sum()))
    print(f"wrote {out}: {len(dataset)} steps from {len(args.runs)} run(s), mean return {ret:.3f}")
    for note in dataset.metadata["notes"]:
        print(f"  note: {note}")
    return 0
