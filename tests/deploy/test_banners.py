"""Third-party banners stay off stdout (deploy/banners.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_native_banners_stay_off_stdout() -> None:
    """PyBullet's build-time banner (printed from C at import) goes to stderr; stdout stays the command's own."""
    code = "from robots.description import load_robot; from sim.emulator import PybulletGo1; "
    code += "PybulletGo1(load_robot('go1'), 0.002); print('ok')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0 and done.stdout == "ok\n", done.stdout
    assert "pybullet build time" in done.stderr
