"""Options that several commands share: task selection, ``KEY=VALUE`` overrides, robot addresses."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from sim.backends import BACKENDS

WIDE = 200  # columns for tables when not on a terminal: a log file or pipe must not cut a number


def console() -> Any:
    """A Rich console: the terminal's width on a terminal, :data:`WIDE` columns anywhere else."""
    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=WIDE)


def add_overrides(p: argparse.ArgumentParser, flag: str, dest: str, example: str) -> None:
    """A repeatable ``flag KEY=VALUE`` that overrides one field of a YAML config."""
    help_text = f"override a config field, e.g. {flag} {example} (repeatable)"
    p.add_argument(flag, dest=dest, action="append", default=[], metavar="KEY=VALUE", help=help_text)


def add_task_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", default="go1_flat", help="task preset in configs/task/ or a YAML path (default: go1_flat)")
    add_overrides(p, "--set", "overrides", "commands.lin_vel_x=[0,1]")
    p.add_argument("--backend", default="mujoco", choices=BACKENDS, help="physics backend (default: mujoco)")
    p.add_argument("--num-envs", type=int, default=64, help="number of parallel robots (train online --env: default 1)")
    p.add_argument("--seed", type=int, default=0)


def velocity(text: str) -> tuple[float, float, float]:
    """``VX,VY,YAW`` -> three floats, with a one-line error otherwise."""
    try:
        vx, vy, yaw = (float(x) for x in text.split(","))
    except ValueError:
        raise ValueError(f"--command {text!r}: expected VX,VY,YAW") from None
    return vx, vy, yaw


def host_port(text: str, default_port: int) -> tuple[str, int]:
    host, _, port = text.partition(":")
    try:
        return host, int(port) if port else default_port
    except ValueError:
        raise ValueError(f"--robot {text!r}: expected IP[:PORT]") from None
