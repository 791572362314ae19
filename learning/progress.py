"""Progress of long work: a Rich bar on a terminal, one plain line per step anywhere else.

Piped, under ``nohup``, SLURM or ``docker logs`` a bar prints nothing useful (or everything at the
end); there each update becomes one line, flushed at once, never cut to a terminal width::

    PPO 12/300 (4%) | reward/step +0.0123  3401 samples/s | 0:00:25 elapsed, ETA 0:09:59

Lines come at most every ``interval_s`` seconds (0: every update), and always at the end.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import TextIO

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class ProgressReporter:
    """``with ProgressReporter("PPO", total) as p: p.update(done, status)``; see the module docstring."""

    def __init__(
        self,
        label: str,
        total: int,
        completed: int = 0,
        enabled: bool = True,
        interval_s: float = 5.0,
        stream: TextIO | None = None,
    ) -> None:
        self.label, self.total, self.completed = label, total, completed
        self.enabled, self.interval_s = enabled, interval_s
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty()
        self._start = time.perf_counter()
        self._first = completed
        self._last_line = -float("inf")
        self._printed = completed  # the count the last line showed
        self._status = ""
        self._rich: Progress | None = None
        if enabled and self.tty:
            columns = (
                TextColumn(f"[bold]{label}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}"),
                TextColumn("{task.fields[status]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
            )
            self._rich = Progress(*columns)
            self._task = self._rich.add_task(label, total=total, completed=completed, status="")

    def __enter__(self) -> ProgressReporter:
        if self._rich is not None:
            self._rich.__enter__()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._rich is not None:
            self._rich.__exit__(kind, exc, tb)
        elif self.enabled and kind is None and self.completed != self._printed:
            self._line(force=True)

    def advance(self, steps: int = 1, status: str | None = None) -> None:
        """``steps`` more done."""
        self.update(self.completed + steps, status)

    def update(self, completed: int, status: str | None = None) -> None:
        """``completed`` done so far, with an optional short status."""
        self.completed = completed
        if status is not None:
            self._status = status
        if not self.enabled:
            return
        if self._rich is not None:
            self._rich.update(self._task, completed=completed, status=self._status)
        else:
            self._line(force=completed >= self.total)

    def _line(self, force: bool) -> None:
        now = time.perf_counter()
        if not force and now - self._last_line < self.interval_s:
            return
        elapsed = now - self._start
        done = self.completed - self._first
        eta = elapsed / done * (self.total - self.completed) if done > 0 else float("nan")
        percent = 100.0 * self.completed / max(self.total, 1)
        parts = [f"{self.label} {self.completed}/{self.total} ({percent:.0f}%)"]
        if self._status:
            parts.append(self._status)
        parts.append(f"{_clock(elapsed)} elapsed" + (f", ETA {_clock(eta)}" if eta == eta else ""))
        print(" | ".join(parts), file=self.stream, flush=True)
        self._last_line, self._printed = now, self.completed
