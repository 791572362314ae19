"""``make demo``'s path, cut down: every stage runs and the report holds real numbers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from unio4.cli import main


def test_quick_demo_writes_a_report_with_numbers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--quick", "--out", str(tmp_path)]) == 0
    printed = [line for line in capsys.readouterr().out.splitlines() if line.lstrip().startswith("unio4 session --out")]
    assert len(printed) == 1 and printed[0].rstrip().endswith("session.gate.seconds=1.0")  # one line, never wrapped mid-flag
    html = (tmp_path / "report.html").read_text()
    sections = ("Summary", "Learning curves", "Offline -> online transition", "Sim-to-sim gate", "timing", "commanded vs measured")
    for section in (*sections, "Session iteration", "Replay", "Measured benchmarks", "Time to walk"):
        assert section in html
    assert re.search(r"<b>The fine-tuned policy (walks|does not walk well enough yet)</b>", html)
    assert re.search(r"commanded 0\.60 m/s and moved at -?\d\.\d\d m/s", html)
    cells = re.findall(r"<td>(-?\d+\.\d+)</td>", html)
    assert len(cells) >= 15, cells  # policy, gate, session and timing tables are filled from the runs
    images = re.findall(r"<img src='data:image/(?:png|gif);base64,([A-Za-z0-9+/=]+)'>", html)
    assert len(images) >= 5 and "<img src='" + "runs" not in html  # every picture inside the page
    for image in images:
        assert len(image) > 5_000  # rendered plots, not placeholders
    commands = re.findall(r"<td><code>(unio4 [^<]+)</code></td>", html)
    assert [c.split()[1] for c in commands] == ["collect", "train", "train", "export", "eval", "deploy", "data", "session", "replay"]
    for name in ("mujoco", "pybullet"):
        assert f"<td>{name}</td>" in html
