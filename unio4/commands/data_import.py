"""``unio4 data import``: walk-these-ways deploy logs (the Uni-O4 authors' real Go1 data) -> HDF5 dataset."""

from __future__ import annotations

import argparse
from pathlib import Path

from unio4.commands.options import add_out, add_set, check_out_file, overrides

WORDS = ("data", "import")
HELP = "walk-these-ways deploy logs (e.g. the Uni-O4 authors' real Go1 data) -> HDF5 dataset, unio4 observations and rewards"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("logs", nargs="+", help="HDF5 log files, or directories searched for *.hdf5 / *.h5 (one file = one episode)")
    add_out(p, "HDF5 dataset to write", required=True)
    p.add_argument("--format", default="uni_o4_go1", help="log layout preset in configs/import/ or a YAML path")
    p.add_argument("--task", default="go1_flat", help="task preset whose observation and reward config the data gets")
    add_set(p, "task.rewards.weights.tracking_lin_vel=2.0", "task", "import")


def run(args: argparse.Namespace) -> int:
    from unio4.configs.loader import load, resolve_config_path
    from unio4.learning.data.wtw_import import WtwLogFormat, import_logs
    from unio4.sim.config import load_task_config

    check_out_file(args.out)  # before any work
    fmt = load(WtwLogFormat, resolve_config_path(args.format, "import"), overrides(args, "import"))
    task = load_task_config(args.task, overrides(args, "task"))
    count = [0]

    def progress(path: Path) -> None:
        count[0] += 1
        if count[0] % 20 == 0:
            print(f"  read {count[0]} files (last {path.name})", flush=True)

    dataset = import_logs([Path(p) for p in args.logs], fmt, task, progress)
    out = Path(args.out)
    dataset.save(out)
    episodes = int((dataset.terminals | dataset.timeouts).sum())
    print(f"wrote {out}: {len(dataset)} steps in {episodes} episodes ({int(dataset.terminals.sum())} end in a fall)")
    aside = ", ".join(dataset.metadata["set_aside_terms"]) or "none"
    print(f"  mean reward/step {float(dataset.rewards.mean()):+.4f}; reward terms set aside (no foot forces): {aside}")
    for note in dataset.metadata["notes"]:
        print(f"  note: {note}")
    return 0
