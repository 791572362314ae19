"""``unio4 demo``: the whole pipeline on a CPU, ending in RUN_DIR/report.html."""

from __future__ import annotations

import argparse
from pathlib import Path

from unio4.commands.options import add_out

WORDS = ("demo",)
HELP = "the whole pipeline on a CPU, ending in RUN_DIR/report.html"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_out(p, "where every stage's outputs and report.html go", default="runs/demo")
    p.add_argument("--iterations", type=int, default=60, help="online fine-tuning iterations")
    p.add_argument("--num-envs", type=int, default=128, help="online fine-tuning envs")
    p.add_argument("--quick", action="store_true", help="a cut-down run (about a minute): every stage, tiny sizes")


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from unio4.demo import TINY, DemoScale, run_demo

    scale = TINY if args.quick else replace(DemoScale(), online_iterations=args.iterations, online_envs=args.num_envs)
    return run_demo(Path(args.out), scale)
