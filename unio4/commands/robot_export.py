"""``unio4 robot export``: write the generated MJCF and URDF of a robot."""

from __future__ import annotations

import argparse
from pathlib import Path

from unio4.commands.options import add_out, check_out_dir

WORDS = ("robot", "export")
HELP = "write the generated MJCF and URDF of a robot"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--robot", default="go1")
    add_out(p, "directory for the URDF and MJCF", default="runs/robot")


def run(args: argparse.Namespace) -> int:
    from unio4.robots.description import load_robot
    from unio4.robots.mjcf import build_mjcf
    from unio4.robots.urdf import build_urdf

    check_out_dir(args.out)  # before any work
    robot = load_robot(args.robot)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{robot.name}.xml").write_text(build_mjcf(robot))
    (out / f"{robot.name}.urdf").write_text(build_urdf(robot))
    print(f"wrote {out / (robot.name + '.xml')} and {out / (robot.name + '.urdf')}")
    return 0
