"""``unio4 sim bench`` (unio4/commands/sim_bench.py) prints real numbers."""

from __future__ import annotations

import re

import pytest

from unio4.cli import main


def test_sim_bench_prints_numbers(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "bench", "--num-envs", "16", "--steps", "10"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if "mujoco" in line)
    numbers = [float(x.replace(",", "")) for x in re.findall(r"[\d,]+\.?\d*", row)]
    assert numbers[0] == 16 and all(n > 0 for n in numbers[1:4])
