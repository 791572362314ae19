"""Training progress (learning/progress.py) when stdout is not a terminal."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_training_piped_prints_one_line_per_iteration(tmp_path: Path) -> None:
    """Not on a terminal, PPO writes one full line per iteration as it goes (no bar, nothing cut)."""
    argv = [sys.executable, "-m", "unio4.cli", "train", "online", "--num-envs", "2", "--iterations", "3"]
    argv += ["--set", "train.ppo.num_steps=4", "--out", str(tmp_path / "run")]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = [line for line in out.stdout.splitlines() if line.startswith("PPO ")]
    assert [line.split(" | ")[0] for line in lines] == ["PPO 1/3 (33%)", "PPO 2/3 (67%)", "PPO 3/3 (100%)"]
    assert all("samples/s" in line and "ETA" in line and "…" not in line for line in lines)
