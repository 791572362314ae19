"""Options that several commands share: task selection, ``--set TARGET.KEY=VALUE`` overrides, ``-o/--out``, robot addresses."""

from __future__ import annotations

import argparse
import difflib
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from unio4.configs.command_line import SetAction
from unio4.sim.backends import BACKENDS

WIDE = 200  # columns for tables when not on a terminal: a log file or pipe must not cut a number


def console() -> Any:
    """A Rich console: the terminal's width on a terminal, :data:`WIDE` columns anywhere else."""
    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=WIDE)


# What a ``--set TARGET.KEY=VALUE`` override can target: one config each, the same word in every command.
TARGETS: dict[str, str] = {
    "task": "the task (configs/task/)",
    "train": "the training config (configs/train/)",
    "runtime": "the robot runtime (configs/deploy/)",
    "session": "the on-robot session (configs/session/)",
    "data": "the dataset generator (configs/data/)",
    "import": "the log layout (configs/import/)",
    "reality": "the emulated robot's reality gap (configs/reality/)",
    "identify": "the identification grid and feature scales",
}


def suggest(word: str, choices: Sequence[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``, or nothing."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def add_set(p: argparse.ArgumentParser, example: str, *targets: str) -> None:
    """The one override flag: ``--set TARGET.KEY=VALUE`` (repeatable), ``TARGET`` naming the config it changes."""
    names = "; ".join(f"{t}: {TARGETS[t]}" for t in targets)
    help_text = f"override a config field, e.g. --set {example} (repeatable; {names})"
    p.add_argument("--set", dest="sets", action=SetAction, targets=targets, default=None, metavar="TARGET.KEY=VALUE", help=help_text)


def overrides(args: argparse.Namespace, target: str) -> list[str]:
    """The ``KEY=VALUE`` overrides given for one target."""
    return list((getattr(args, "sets", None) or {}).get(target, []))


def add_out(p: argparse.ArgumentParser, help_text: str, default: str | None = None, required: bool = False) -> None:
    """The one output flag, ``-o/--out``: the file or directory a command writes."""
    p.add_argument("-o", "--out", default=default, required=required, help=help_text)


def check_out_file(path: str | None) -> None:
    """Refuse, before any work, an ``-o/--out`` file that is an existing directory."""
    if path is not None and Path(path).is_dir():
        raise IsADirectoryError(f"-o {path}: a directory; -o names the file to write (a new one, or one to replace)")


def check_out_dir(path: str | None) -> None:
    """Refuse, before any work, an ``-o/--out`` directory that is an existing file."""
    if path is not None and Path(path).exists() and not Path(path).is_dir():
        raise FileExistsError(f"--out {path}: a file; --out names a directory (a new one)")


def add_threads(p: argparse.ArgumentParser) -> None:
    """``--threads N``: torch's intra-op threads (runs sharing cores want 1 each: docs/benchmarks/time-to-walk.md,
    "Threads when runs share the cores")."""
    p.add_argument("--threads", type=non_negative_int, default=0, help="torch threads (0: torch's default, every core)")


def add_logger(p: argparse.ArgumentParser) -> None:
    """``--logger tensorboard|wandb|none``: where a training run's scalars go besides ``metrics.jsonl``."""
    from unio4.learning.loggers import KINDS

    p.add_argument(
        "--logger",
        choices=KINDS,
        default="tensorboard",
        help="where the scalars go: TensorBoard (RUN/tb, the default), Weights & Biases (RUN/wandb; pip install 'unio4[wandb]'; "
        "offline without an API key, upload with wandb sync), or none",
    )


def logger_line(kind: str, run_dir: Path) -> str:
    """Where ``--logger`` put the scalars, for a command's last line ('' for none)."""
    return {"tensorboard": f", TensorBoard {run_dir / 'tb'}", "wandb": f", W&B {run_dir / 'wandb'}"}.get(kind, "")


def non_negative_int(text: str) -> int:
    """An argparse type: an integer >= 0."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return value


def apply_threads(args: argparse.Namespace) -> None:
    """Set torch's thread count from ``--threads`` (0 leaves torch's default)."""
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)


def check_device(device: str | None, where: str) -> None:
    """Refuse, before any work, a torch device this machine lacks: one line naming the field (``where``)."""
    if device is None or str(device) == "cpu":
        return
    import torch

    try:
        parsed = torch.device(device)
    except RuntimeError:
        raise ValueError(f"{where}={device}: not a torch device; use cpu, cuda or cuda:N") from None
    if parsed.type != "cuda":
        return
    if torch.version.cuda is None:
        raise ValueError(f"{where}={device}: this torch build has no CUDA; use cpu")
    if not torch.cuda.is_available():
        raise ValueError(f"{where}={device}: torch sees no CUDA device on this machine; use cpu")
    if parsed.index is not None and parsed.index >= torch.cuda.device_count():
        raise ValueError(f"{where}={device}: this machine has {torch.cuda.device_count()} CUDA device(s); use cuda:0 or cpu")


def add_task_args(p: argparse.ArgumentParser, *more_targets: str, num_envs: int | None = 64, num_envs_help: str = "") -> None:
    """``--task``, ``--set`` (the task, and ``more_targets``), ``--backend``, ``--num-envs``, ``--seed``.

    ``num_envs=None`` leaves the robot count to the command, which then says its default in ``num_envs_help``.
    """
    p.add_argument("--task", default="go1_flat", help="task preset in configs/task/ or a YAML path (default: go1_flat)")
    add_set(p, "task.commands.lin_vel_x=[0,1]", "task", *more_targets)
    p.add_argument("--backend", default="mujoco", choices=BACKENDS, help="physics backend (default: mujoco)")
    p.add_argument("--num-envs", type=int, default=num_envs, help=num_envs_help or "number of parallel robots")
    p.add_argument("--seed", type=int, default=0, help="random seed")


def velocity(text: str) -> tuple[float, float, float]:
    """``VX,VY,YAW`` -> three floats, with a one-line error otherwise."""
    try:
        vx, vy, yaw = (float(x) for x in text.split(","))
    except ValueError:
        raise ValueError(f"--command {text!r}: expected VX,VY,YAW, three numbers (m/s, m/s, rad/s), e.g. 0.5,0,0") from None
    if not all(math.isfinite(v) for v in (vx, vy, yaw)):
        raise ValueError(f"--command {text!r}: VX,VY,YAW must be finite numbers, e.g. 0.5,0,0")
    return vx, vy, yaw
