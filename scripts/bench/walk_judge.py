"""The walks-well judge of ``unio4 bench walk --well`` over several evaluation seeds.

One judge seed is one draw of 16 robots' commands, spawn poses and dynamics; a policy near a bar passes
on some draws and not others. This judges a checkpoint on each seed (16 robots x 10 s, MuJoCo, the mean
action) and prints one line per seed, then the mean +- std of each bar and how many seeds pass.

Usage: .venv/bin/python scripts/bench/walk_judge.py RUN/checkpoints/final.pt --task go1_flat --seeds 10000 10001 10002 10003 10004
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from pathlib import Path

import torch
from online_switches import spread  # the sibling script: mean +- std over seeds

from unio4.learning.bench.time_to_walk import WalkChecker, WalkCriterion
from unio4.learning.checkpoint import load_checkpoint
from unio4.learning.export import actor_from_checkpoint
from unio4.sim.config import load_task_config

BARS = ("lin_vel_error", "yaw_rate_error", "falls_per_robot_minute", "body_contacts_per_minute", "swing_apex", "torque_saturation")


def judge(actor: torch.nn.Module, task: str, seed: int, overrides: list[str]) -> tuple[dict[str, float], list[str]]:
    """The walks-well check of ``actor``'s mean action on judge seed ``seed``: each bar's value, the bars failed."""
    with tempfile.TemporaryDirectory() as tmp:
        criterion = replace(WalkCriterion.walks_well(), seed=seed)
        checker = WalkChecker(load_task_config(task, overrides), Path(tmp), 1, criterion, num_threads=1)
        checker.after_iteration(0, 0.0, 0.0, lambda obs: actor(obs)[0].detach(), last=True)
        row = checker.close().checks[-1]
    values = {**{k: row[k] for k in BARS[:3]}, **{k: row["gait"][k] for k in BARS[3:]}}
    return values, row["failed"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--task", default="go1_flat", help="the judge's task: its command range and randomisation (default: go1_flat)")
    p.add_argument("--seeds", type=int, nargs="+", default=[10_000, 10_001, 10_002, 10_003, 10_004])
    p.add_argument("--set", dest="overrides", action="append", default=[], help="a task override, e.g. randomization.friction=[0.32,0.32]")
    args = p.parse_args()
    torch.set_num_threads(1)
    actor = actor_from_checkpoint(load_checkpoint(args.checkpoint), args.checkpoint)
    rows, passes = [], 0
    print("seed | " + " | ".join(BARS) + " | verdict", flush=True)
    for seed in args.seeds:
        values, failed = judge(actor, args.task, seed, args.overrides)
        rows.append(values)
        passes += not failed
        verdict = "walks well" if not failed else "fails " + ", ".join(failed)
        print(f"{seed} | " + " | ".join(f"{values[k]:.3f}" for k in BARS) + f" | {verdict}", flush=True)
    cells = " | ".join(spread([r[k] for r in rows], 3) for k in BARS)
    print(f"mean +- std | {cells} | passes on {passes} of {len(rows)}")


if __name__ == "__main__":
    main()
