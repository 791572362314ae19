"""Training curves: TensorBoard scalars, a JSON-lines history and PNG plots from it."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from torch.utils.tensorboard import SummaryWriter


class CurveLogger:
    """Writes every scalar to TensorBoard and ``metrics.jsonl`` in ``run_dir``."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        run_dir.mkdir(parents=True, exist_ok=True)
        self.writer = SummaryWriter(str(run_dir / "tb"))
        self.history_path = run_dir / "metrics.jsonl"

    def log(self, step: int, scalars: dict[str, float]) -> None:
        """Record ``scalars`` at environment step (or gradient step) ``step``."""
        for key, value in scalars.items():
            self.writer.add_scalar(key, value, step)
        with self.history_path.open("a") as f:
            f.write(json.dumps({"step": step, **scalars}) + "\n")

    def history(self) -> list[dict[str, float]]:
        """Every logged row so far."""
        return read_history(self.history_path)

    def plot(self, keys: Sequence[str], name: str = "curves.png", x_axis: XAxis | None = None) -> Path:
        """Plot ``keys`` to ``run_dir/name``."""
        return plot_history(self.history(), keys, self.run_dir / name, x_axis)

    def close(self) -> None:
        """Flush and close the TensorBoard writer."""
        self.writer.close()


def read_history(path: Path) -> list[dict[str, float]]:
    """The rows of a ``metrics.jsonl`` file ([] when it does not exist)."""
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# Per key: its x values from a row's "step", and the axis label (default: environment steps).
XAxis = Callable[[str], tuple[Callable[[float], float], str]]


def plot_history(history: list[dict[str, float]], keys: Sequence[str], out: Path, x_axis: XAxis | None = None) -> Path:
    """One panel per key, against environment steps or what ``x_axis`` says for that key."""
    keys = [k for k in keys if any(k in row for row in history)]
    fig, axes = plt.subplots(len(keys) or 1, 1, figsize=(7, 2.4 * max(1, len(keys))), squeeze=False)
    for ax, key in zip(axes[:, 0], keys):
        rows = [r for r in history if key in r]
        to_x, label = x_axis(key) if x_axis is not None else ((lambda step: step), "environment steps")
        ax.plot([to_x(r["step"]) for r in rows], [r[key] for r in rows])
        ax.set_ylabel(key, fontsize=8)
        ax.set_xlabel(label, fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
