"""``unio4 data stats``: what dataset files hold: transitions, episodes, the spread of episode returns,
and (Gymnasium locomotion tasks) the forward speed beside that of D4RL's file of the same task and level."""

from __future__ import annotations

import argparse
import dataclasses
import json

from unio4.commands.options import console

WORDS = ("data", "stats")
HELP = "what dataset files hold: transitions, episodes, min/mean/max episode return (and D4RL score)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+", help="HDF5 datasets, or minari:NAME (local Minari root)")
    p.add_argument("--env", default=None, help="Gymnasium id for the score references (default: each file's recorded env)")
    p.add_argument("--json", action="store_true", help="one JSON line per file instead of the table")


def run(args: argparse.Namespace) -> int:
    from rich.table import Table

    from unio4.learning.data.dataset import load_dataset
    from unio4.learning.data.statistics import dataset_statistics

    rows = [(path, dataset_statistics(load_dataset(path), args.env)) for path in args.files]
    if args.json:
        for path, stats in rows:
            print(json.dumps({"file": path, **dataclasses.asdict(stats)}))
        return 0
    table = Table(title="unio4 data stats")
    columns = ("file", "transitions", "episodes", "falls", "mean length", "return min / mean / max", "score min / mean / max")
    for column in (*columns, "forward speed mean +- std", "D4RL's"):
        table.add_column(column, justify="left" if column == "file" else "right")
    for path, s in rows:
        scores = "-" if s.score_mean is None else f"{s.score_min:.1f} / {s.score_mean:.1f} / {s.score_max:.1f}"
        returns = f"{s.return_min:.1f} / {s.return_mean:.1f} / {s.return_max:.1f}"
        speed = "-" if s.speed_mean is None else f"{s.speed_mean:.2f} +- {s.speed_std:.2f}"
        d4rl = "-" if s.d4rl_speed_mean is None else f"{s.d4rl_speed_mean:.2f} +- {s.d4rl_speed_std:.2f}"
        counts = (f"{s.transitions:,}", f"{s.episodes:,}", f"{s.terminals:,}", f"{s.mean_length:.0f}")
        table.add_row(path, *counts, returns, scores, speed, d4rl)
    console().print(table)
    return 0
