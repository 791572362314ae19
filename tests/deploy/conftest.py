"""Helpers shared by the robot-side tests."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def assert_torch_free_until_no_robot(argv: list[str], setup: str = "") -> None:
    """``unio4 ARGV`` in a fresh interpreter (after ``setup``) runs to the point of finding no robot
    (exit 2, "no LowState") without importing torch."""
    code = (
        f"import sys\n{setup}from unio4.cli import main\n"
        f"rc = main({[*argv, '--robot', '127.0.0.1:9', '--local-port', '0', '--set', 'runtime.connect_timeout_s=0.1']!r})\n"
        "assert rc == 2, rc\n"
        "bad = sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.'))\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert "no LowState within 0.1 s" in result.stderr
