"""``unio4 session``: on-robot fine-tuning: deploy (explore) -> pack -> PPO update -> export -> gate -> flash, resumable."""

from __future__ import annotations

import argparse
import dataclasses
import math
from pathlib import Path
from typing import TYPE_CHECKING

from unio4.commands.options import add_out, add_set, check_out_dir, console, overrides

if TYPE_CHECKING:
    from unio4.sim.config import TaskConfig

WORDS = ("session",)
HELP = "on-robot fine-tuning: deploy (explore) -> pack -> PPO update -> export -> gate -> flash, resumable"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_out(p, "session directory (state, logs, checkpoints, bundles)", required=True)
    p.add_argument("--init", default=None, help="checkpoint, or bundle with a checkpoint.pt, to start from (a new session)")
    p.add_argument("--config", default=None, help="session preset in configs/session/ or a YAML path (default: go1, or the stored one)")
    task_help = "task preset whose rewards score the logs, fine-tunes train on and the gate evaluates bundles on"
    task_help += " (default: the task --init was trained on, else go1_flat; on a resume the stored one)"
    p.add_argument("--task", default=None, help=task_help)
    add_set(p, "session.robot=127.0.0.1:8007", "session", "task")
    p.add_argument("--no-prompt", action="store_true", help="do not wait for the operator before each rollout")
    p.add_argument("--stop-after", default=None, help="stop after this phase (deploy, pack, update, export, gate, flash)")


def session_task(task_path: str | Path | None, init: Path | None, task_overrides: list[str]) -> TaskConfig:
    """The task named (``--task`` or the stored one); else, for a new session, the one ``init`` was trained on."""
    from unio4.learning.robot.session import start_task
    from unio4.sim.config import load_task_config

    if task_path is None and init is not None:
        return start_task(init, task_overrides)
    return load_task_config(task_path or "go1_flat", task_overrides)


def run(args: argparse.Namespace) -> int:
    from rich.table import Table

    from unio4.configs.loader import load, resolve_config_path
    from unio4.learning.robot.session import CONFIG_FILE, TASK_FILE, Session, SessionConfig, SessionError

    check_out_dir(args.out)  # before any work
    root = Path(args.out)
    resuming = (root / "state.json").is_file()
    stored, stored_task = root / CONFIG_FILE, root / TASK_FILE
    config_path = stored if resuming and stored.is_file() and args.config is None else resolve_config_path(args.config or "go1", "session")
    if not resuming and not args.init:
        raise ValueError(f"{root}: no session here yet; start one with --init CHECKPOINT")
    task_path = stored_task if resuming and stored_task.is_file() and args.task is None else args.task
    session_cfg = load(SessionConfig, config_path, overrides(args, "session"))
    session = Session(root, session_cfg, session_task(task_path, None if resuming else Path(args.init), overrides(args, "task")))
    if not resuming:
        session.start(Path(args.init))
    else:
        print(f"resuming {root}: iteration {session.state.iteration}, phase {session.state.phase}")
    if args.no_prompt:  # for this run only: the stored settings keep the operator prompts
        session.cfg = dataclasses.replace(session.cfg, prompt=False)
    try:
        rows = session.run(stop_after_phase=args.stop_after)
    except SessionError as exc:  # one line for the operator; the state on disk is resumable
        raise ValueError(str(exc)) from None
    table = Table(title=f"unio4 session {root}")
    columns: tuple[str, ...] = ("iteration", "steps", "logged return", "tracking / step", "robot speed error")
    columns += ("gate error (first / current -> new)",)
    columns += ("gate falls (current -> new)", "stops", "robot min")
    for col in (*columns, "accepted"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(
            str(r["iteration"]), str(r["steps"]), f"{r['logged_return']:.3f}", f"{r['tracking_per_step']:.4f}",
            f"{r.get('robot_speed_error', float('nan')):.3f}",
            f"{r.get('gate_error_start', float('nan')):.3f} / {r['gate_error_old']:.3f} -> {r['gate_error_new']:.3f}",
            f"{r.get('gate_falls_old', float('nan')):.2f} -> {r['gate_falls_new']:.2f}", str(r.get("safety_stops", "")),
            f"{r.get('robot_minutes', float('nan')):.2f}",
            "yes" if r["accepted"] else "no",
        )  # fmt: skip
    console().print(table)
    for r in rows:
        if r.get("gate_refused"):
            print(f"iteration {r['iteration']}: bundle refused by the gate: {r['gate_refused']}")
    for c in session.state.checks:
        walked = f"{c['error']:.3f} +- {c['se']:.3f} m/s speed error over {c['walks']} walks"
        if math.isfinite(c.get("tracked", math.nan)):
            walked = f"{c['tracked']:.3f} +- {c['tracked_se']:.3f} m/s speed error by the tracking camera over {c['walks']} walks"
            walked += f", {c['error']:.3f} by leg odometry"
        if c["verdict"] == "rolled back":
            worse = c.get("reason") or f"{walked}, the verified bundle's {c['reference_error']:.3f} + {c['tolerance']:.3f} allowed"
            print(f"iteration {c['iteration']}: {c['bundle']} walked worse on the robot ({worse}): rolled back")
        else:
            print(f"iteration {c['iteration']}: {c['bundle']} walked on the robot ({walked}): {c['verdict']}")
    budget = session.cfg.max_robot_minutes
    limit = f" of a {budget:g} min budget" + (" (spent: the session stopped there)" if session.state.budget_spent else "") if budget else ""
    print(f"robot time used: {session.state.robot_seconds / 60:.2f} min{limit}")
    print(f"current bundle: {session.state.bundle}")
    return 0
