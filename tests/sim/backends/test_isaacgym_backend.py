"""The Isaac Gym backend (sim/backends/isaacgym_backend.py, isaacgym_worker.py) where Isaac Gym cannot run:
its worker starts, speaks the bridge protocol and reports what is missing in one line.
"""

from __future__ import annotations

import sys
from typing import Any

import pytest

from unio4.sim.backends.isaacgym_backend import PYTHON_VARIABLE, IsaacGymBackend
from unio4.sim.terrain import TerrainConfig, make_terrain


def test_isaacgym_worker_runs_and_reports_what_is_missing(monkeypatch: pytest.MonkeyPatch, go1: Any) -> None:
    """The worker starts as a file (no unio4 on its path), serves the protocol, and its ImportError
    crosses the bridge as the one-line message the CLI prints."""
    terrain = make_terrain(TerrainConfig())
    monkeypatch.setenv(PYTHON_VARIABLE, sys.executable)
    with pytest.raises(ImportError, match=r"needs NVIDIA Isaac Gym Preview 4 .* worker interpreter .*Python <= 3\.8"):
        IsaacGymBackend(go1, 2, terrain, device="cpu")
    monkeypatch.setenv(PYTHON_VARIABLE, "/nonexistent/python3.8")
    with pytest.raises(ImportError, match=r"Isaac Gym Preview 4 .* cannot start the worker interpreter '/nonexistent/python3\.8'"):
        IsaacGymBackend(go1, 2, terrain, device="cpu")


def test_isaacgym_backend_says_what_it_needs(capsys: pytest.CaptureFixture[str]) -> None:
    """Isaac Gym is not installable here: selecting it is a one-line error naming what to install."""
    from unio4.cli import main

    assert main(["sim", "bench", "--backend", "isaacgym", "--num-envs", "2", "--steps", "1"]) == 2
    err = capsys.readouterr().err
    assert "needs NVIDIA Isaac Gym Preview 4" in err and "Python <= 3.8" in err
