"""Absolute-deadline periodic timing and its statistics (period jitter, late ticks).

Each tick's deadline is ``start + k * period``, never "now + period", so errors do not accumulate
into drift. The wait sleeps until shortly before the deadline and spins the rest: a sleep alone
wakes 50-100 us late on a stock kernel; the spin costs at most ``spin_s`` of one core per tick.
A tick that wakes more than a whole period late is counted as missed and the schedule skips ahead
instead of bursting to catch up (a burst of PD targets is worse for a robot than a gap).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import numpy as np


def set_realtime_priority(priority: int) -> str | None:
    """SCHED_FIFO at ``priority`` (1-99) for the calling thread; 0 leaves the scheduler alone.

    Returns why it could not (no root or CAP_SYS_NICE, no such scheduler), or None. A periodic loop at
    real-time priority is not stalled by other work on the same computer.
    """
    if priority <= 0:
        return None
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except (PermissionError, OSError, AttributeError) as exc:
        return str(exc) or type(exc).__name__
    return None


@dataclass
class DeadlineClock:
    """Sleeps to absolute deadlines every ``period`` s, so the loop rate does not drift; records how late each wake-up was."""

    period: float
    spin_s: float = 0.0003
    start: float = field(default_factory=time.perf_counter)
    k: int = 0
    late_ticks: int = 0  # woke after the deadline by more than `late_threshold_s`
    missed_ticks: int = 0  # woke a whole period or more late (skipped)
    late_threshold_s: float = 0.0005
    errors: list[float] = field(default_factory=list)  # wake time minus deadline, s

    def wait(self) -> float:
        """Sleep until the next deadline; returns the wake-up time (``perf_counter``)."""
        self.k += 1
        deadline = self.start + self.k * self.period
        remaining = deadline - time.perf_counter()
        if remaining > self.spin_s:
            time.sleep(remaining - self.spin_s)
        now = time.perf_counter()
        while now < deadline:
            now = time.perf_counter()
        error = now - deadline
        self.errors.append(error)
        if error > self.late_threshold_s:
            self.late_ticks += 1
        if error >= self.period:
            skipped = int(error // self.period)
            self.missed_ticks += skipped
            self.k += skipped
        return now


@dataclass
class LatencyStats:
    """Percentiles of a list of durations, in milliseconds."""

    p50_ms: float
    p99_ms: float
    max_ms: float
    count: int

    @classmethod
    def of(cls, seconds: list[float] | np.ndarray) -> LatencyStats:
        """Statistics of durations in seconds."""
        values = np.abs(np.asarray(seconds, dtype=np.float64)) * 1e3
        if values.size == 0:
            return cls(float("nan"), float("nan"), float("nan"), 0)
        return cls(float(np.percentile(values, 50)), float(np.percentile(values, 99)), float(values.max()), int(values.size))

    def row(self) -> str:
        """One line: p50, p99 and max in milliseconds."""
        return f"p50 {self.p50_ms:.3f} ms  p99 {self.p99_ms:.3f} ms  max {self.max_ms:.3f} ms  (n={self.count})"
