"""``make demo``'s path, cut down: every stage runs and the report holds real numbers."""

from __future__ import annotations

import re
from pathlib import Path

from unio4.cli import main


def test_quick_demo_writes_a_report_with_numbers(tmp_path: Path) -> None:
    assert main(["demo", "--quick", "--run-dir", str(tmp_path)]) == 0
    html = (tmp_path / "report.html").read_text()
    for section in ("Learning curves", "Offline -> online transition", "Sim-to-sim gate", "timing", "Session iteration", "Replay"):
        assert section in html
    cells = re.findall(r"<td>(-?\d+\.\d+)</td>", html)
    assert len(cells) >= 15, cells  # policy, gate, session and timing tables are filled from the runs
    images = re.findall(r"<img src='([^']+)'>", html)
    assert len(images) == 4
    for image in images:
        assert (tmp_path / image).stat().st_size > 5_000, image  # rendered plots, not placeholders
    commands = re.findall(r"<td><code>(unio4 [^<]+)</code></td>", html)
    assert [c.split()[1] for c in commands] == ["collect", "train", "train", "export", "eval", "deploy", "data", "session", "replay"]
    for name in ("mujoco", "pybullet"):
        assert f"<td>{name}</td>" in html
