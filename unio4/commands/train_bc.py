"""``unio4 train bc``: behaviour-cloning ensemble on a dataset (Uni-O4's offline BC stage)."""

from __future__ import annotations

import argparse
from pathlib import Path

from unio4.commands.options import add_logger, add_out, add_set, check_out_file, logger_line, overrides

WORDS = ("train", "bc")
HELP = "behaviour-cloning ensemble on a dataset (Uni-O4's offline BC stage)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="HDF5 dataset (unio4 collect, or D4RL-style), or minari:NAME (local Minari root)")
    p.add_argument("--config", default="bc_go1", help="BC preset in configs/train/ or a YAML path")
    add_set(p, "train.steps=5000", "train")
    add_out(p, "checkpoint to write (--logger writes beside it, in OUT's name + _logs/)", default="runs/bc/bc.pt")
    add_logger(p)


def run(args: argparse.Namespace) -> int:
    from unio4.configs.loader import load, resolve_config_path
    from unio4.learning.data.dataset import dataset_action_bound, load_dataset
    from unio4.learning.loggers import check_logger, make_logger
    from unio4.learning.offline.bc import BCConfig, save_bc_checkpoint, train_bc

    check_out_file(args.out)  # before any work
    check_logger(args.logger)
    cfg = load(BCConfig, resolve_config_path(args.config, "train"), overrides(args, "train"))
    data = load_dataset(args.data)
    logs = logs_dir(Path(args.out))
    sink = make_logger(args.logger, logs, {"train": cfg}, logs.name, "train bc")

    def on_log(step: int, stats: dict[str, float]) -> None:
        for key, value in stats.items():
            sink.scalar(f"bc/{key}", value, step)

    ensemble, template, history = train_bc(data, cfg, dataset_action_bound(data), show_progress=True, on_log=on_log)
    sink.close()
    save_bc_checkpoint(Path(args.out), ensemble, template, cfg, data)
    print(
        f"wrote {args.out}: {cfg.members} member(s), final negative log-likelihood {history[-1]['nll']:.3f}{logger_line(args.logger, logs)}"
    )
    return 0


def logs_dir(out: Path) -> Path:
    """Where ``--logger`` writes for the checkpoint ``out``: ``runs/bc/bc.pt`` -> ``runs/bc/bc_logs``."""
    return out.parent / f"{out.stem}_logs"
