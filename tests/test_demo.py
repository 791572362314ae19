"""``make demo``'s path, cut down: every stage runs and the report holds real numbers."""

from __future__ import annotations

import contextlib
import io
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from unio4.cli import main
from unio4.demo import _transition_table


@pytest.fixture(scope="module")
def quick(build_once: Callable[[str, Callable[[Path], Path]], Path]) -> tuple[Path, str]:
    """One ``unio4 demo --quick`` for the whole run (whichever worker asks first): its run directory and what it printed."""

    def demo(root: Path) -> Path:
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            assert main(["demo", "--quick", "--out", str(root / "demo")]) == 0
        (root / "printed.txt").write_text(printed.getvalue())
        return root / "demo"

    run_dir = build_once("demo", demo)
    return run_dir, (run_dir.parent / "printed.txt").read_text()


def test_quick_demo_writes_a_report_with_numbers(quick: tuple[Path, str]) -> None:
    tmp_path, out = quick
    printed = [line for line in out.splitlines() if line.lstrip().startswith("unio4 session --out")]
    assert len(printed) == 1 and printed[0].rstrip().endswith("session.gate.seconds=1.0")  # one line, never wrapped mid-flag
    html = (tmp_path / "report.html").read_text()
    sections = ("Summary", "Learning curves", "Offline -> online transition", "Sim-to-sim gate", "timing", "commanded vs measured")
    for section in (*sections, "Session iteration", "Replay", "Measured benchmarks", "Time to walk"):
        assert section in html
    cells = re.findall(r"<td>(-?\d+\.\d+)</td>", html)
    assert len(cells) >= 15, cells  # policy, gate, session and timing tables are filled from the runs
    images = re.findall(r"<img src='data:image/(?:png|gif);base64,([A-Za-z0-9+/=]+)'>", html)
    assert len(images) >= 5 and "<img src='" + "runs" not in html  # every picture inside the page
    for image in images:
        assert len(image) > 5_000  # rendered plots, not placeholders
    for name in ("mujoco", "pybullet"):
        assert f"<td>{name}</td>" in html


def test_quick_report_names_its_cut_states_its_result_and_lists_the_emulator(quick: tuple[Path, str]) -> None:
    tmp_path = quick[0]
    html = (tmp_path / "report.html").read_text()
    # The cut, at the top, with what it leaves out (its sizes beside the full cut's).
    assert html.index("<h1>unio4 demo report: quick cut</h1>") < html.index("<h2>Summary</h2>")
    assert "What the quick cut leaves out" in html and "<td>online fine-tuning iterations</td><td>3</td><td>60</td>" in html
    # The headline states what this run measured.
    headline = html[html.index("<h2>Summary</h2>") :].split("</p>")[0]
    assert re.search(r"<b>The fine-tuned policy, commanded 0\.60 m/s on the emulated Go1, moved at -?\d+\.\d\d m/s</b>", headline)
    evals = json.loads((tmp_path / "eval.json").read_text())
    for engine, r in evals.items():
        assert f"{r['lin_vel_error']:.3f} m/s in {engine}" in headline
    # The transition rows: each its own checkpoint; the fine-tuned one counts the run's actor steps.
    history = [json.loads(line) for line in (tmp_path / "online" / "metrics.jsonl").read_text().splitlines() if line.strip()]
    actor_steps = int(sum(r.get("policy/actor_steps", 0.0) for r in history))
    offline = re.search(r"<tr><td>Uni-O4 offline</td><td>offline/checkpoints/offline\.pt</td><td>0</td>((?:<td>[^<]*</td>){3})</tr>", html)
    online = re.search(
        rf"<tr><td>after online fine-tuning</td><td>online/checkpoints/final\.pt</td><td>{actor_steps}</td>((?:<td>[^<]*</td>){{3}})</tr>",
        html,
    )
    assert offline and online and actor_steps > 0  # the quick cut's third iteration updates the actor
    assert offline.group(1) != online.group(1) or "separate evaluations of their own checkpoints and read the same" in html
    # Every step by hand, the emulator in its place: after the gate, before deploy, on the port deploy and the session use.
    commands = re.findall(r"<td><code>(unio4 [^<]+)</code></td>", html)
    assert [c.split()[1] for c in commands] == [
        "collect",
        "train",
        "train",
        "export",
        "eval",
        "emulate",
        "deploy",
        "data",
        "session",
        "replay",
    ]
    port = re.fullmatch(r"unio4 emulate --port (\d+) --lockstep", commands[5])
    assert port and f"--robot 127.0.0.1:{port.group(1)} " in commands[6] and f"session.robot=127.0.0.1:{port.group(1)} " in commands[8]


def test_transition_rows_read_their_own_evaluations() -> None:
    offline = {"reward/step": 0.011, "reward/tracking_lin_vel": 0.002, "terminations": 3.0}
    online = {"reward/step": 0.022, "reward/tracking_lin_vel": 0.004, "terminations": 1.0}
    html = _transition_table(offline, online, actor_steps=40)
    assert (
        "<td>Uni-O4 offline</td><td>offline/checkpoints/offline.pt</td><td>0</td><td>0.01100</td><td>0.00200</td><td>3.00000</td>" in html
    )
    assert "<td>after online fine-tuning</td><td>online/checkpoints/final.pt</td><td>40</td><td>0.02200</td><td>0.00400</td>" in html
    assert "read the same" not in html
    same = _transition_table(offline, offline, actor_steps=0)
    assert "read the same" in same and "critic's warm-up" in same
    close = _transition_table(offline, {**offline, "reward/step": 0.011000003}, actor_steps=20)
    assert "the 20 online actor steps moved the policy too little" in close and "reward/step +3.0e-09" in close
