"""Training curves: a JSON-lines history, PNG plots from it, and the same scalars to TensorBoard, W&B or nowhere."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from unio4.learning.loggers import Logger, LoggerSpec, TensorBoardLogger


class CurveLogger:
    """Writes every scalar to ``metrics.jsonl`` in ``run_dir`` and to ``sink`` (default: TensorBoard in ``run_dir/tb``).

    ``sink`` is a :mod:`unio4.learning.loggers` logger, or a :class:`~unio4.learning.loggers.LoggerSpec` to open here.
    """

    def __init__(self, run_dir: Path, sink: Logger | LoggerSpec | None = None) -> None:
        self.run_dir = run_dir
        run_dir.mkdir(parents=True, exist_ok=True)
        if isinstance(sink, LoggerSpec):
            sink = sink.open(run_dir)
        self.sink: Logger = sink if sink is not None else TensorBoardLogger(run_dir)
        self.history_path = run_dir / "metrics.jsonl"
        self.plots: dict[str, Path] = {}  # every PNG plotted, by name: handed to the sink at close

    def log(self, step: int, scalars: dict[str, float]) -> None:
        """Record ``scalars`` at environment step (or gradient step) ``step``."""
        for key, value in scalars.items():
            self.sink.scalar(key, value, step)
        with self.history_path.open("a") as f:
            f.write(json.dumps({"step": step, **scalars}) + "\n")

    def history(self) -> list[dict[str, float]]:
        """Every logged row so far."""
        return read_history(self.history_path)

    def plot(self, keys: Sequence[str], name: str = "curves.png", x_axis: XAxis | None = None) -> Path:
        """Plot ``keys`` to ``run_dir/name``."""
        self.plots[name] = plot_history(self.history(), keys, self.run_dir / name, x_axis)
        return self.plots[name]

    def close(self) -> None:
        """Hand the sink the last of each plot, then flush and close it."""
        for name, path in self.plots.items():
            self.sink.image(Path(name).stem, path)
        self.sink.close()


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
