"""Sessions on the gap zoo: how much of each zoo robot's behaviour gap a session closes, in how many robot minutes,
and whether it ever left the robot worse.

For every zoo robot (``unio4 emulate --reality zoo:SEED``) and session mode (``--modes``, session presets):

1. **behaviour**: the start bundle walks each of ``COMMANDS`` (forward, sideways, turning; 10 s each, mean
   action) on the zoo robot and on the nominal one; the emulator's ground truth gives the velocity and yaw
   rate held over the second half of each walk. The *behaviour gap* is the mean over commands of
   |(dvx, dvy, LEVER * dwz)|, the difference to the nominal robot, the yaw rate counted as the speed it gives
   at the hips; the *tracking error* the same against the command;
2. ``unio4 session --config MODE`` against ``unio4 emulate --lockstep --reset-per-run --reality zoo:SEED`` until
   ``--minutes`` of robot time (or ``--iterations``), with the on-robot check and rollback on (``--tracker``: the
   emulated robot carries a tracking camera, ``--tracker-port``, and the check compares its speeds);
3. the session's final bundle walks the commands on the zoo robot again: gap and tracking after, falls, and the
   largest growth of the gap at any one command (walked or held out): a session must not leave one worse.

The same gap is also measured at ``HELD_OUT``, commands no session walks (between and beyond the check's, backwards,
to the right, turning right, standing): a session that fits its walks' commands (a command calibration) is judged
there too.

Share of the gap closed = 1 - gap after / gap before. ``--robots nominal`` is the control: a session on the robot
the bundle was trained for, where there is no gap to close, so its gap after is what a session moves by itself (the
fine-tune's own change of behaviour, the floor under any gap it leaves). Beside the share closed, the share of the
*tracking excess* closed: how much of the tracking error above the nominal robot's a session removed,
(before - after) / (before - nominal); not the gap's measure, and undefined where the robot tracked no worse than the
nominal one to start with.
Everything measured is read again on a second call, so an interrupted run resumes and another instance with other
``--robots`` can share ``--out``.

Usage: .venv/bin/python scripts/bench/gap_zoo.py --init CKPT --bundle BUNDLE --out DIR [--robots 0 1 2] [--modes go1_identify]
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from emulator_eval import run_command, walk_dir

from unio4.sim.emulator import spawn, spawn_with_tracker

COMMANDS = ((0.3, 0.0, 0.0), (0.6, 0.0, 0.0), (0.9, 0.0, 0.0), (0.0, 0.3, 0.0), (0.0, 0.0, 0.6), (0.5, 0.0, 0.4))
# Commands no session walks (the check walks COMMANDS): whether what a session changed holds between and beyond them,
# backwards, to the right, turning right, and standing (zero: what a command calibration's offset does there).
HELD_OUT = ((0.45, 0.0, 0.0), (0.75, 0.0, -0.3), (-0.3, 0.0, 0.0), (0.0, -0.25, 0.0), (0.0, 0.0, -0.4), (0.0, 0.0, 0.0))
LEVER = 0.25  # m: a yaw rate counts as the speed it gives ~ at the hips
SECONDS = 10.0


def behaviour(bundle: Path, out: Path, reality: str, commands: tuple[tuple[float, float, float], ...] = COMMANDS) -> list[dict[str, float]]:
    """The bundle's held (vx, vy, wz) at every one of ``commands`` on ``reality``."""
    return [run_command(bundle, c, SECONDS, walk_dir(out, c), reality) for c in commands]


def distance(a: dict[str, float] | tuple[float, float, float], b: dict[str, float]) -> float:
    """|(dvx, dvy, LEVER * dwz)| between a held behaviour (or a command) and a held behaviour."""
    va = (a["vx"], a["vy"], a["wz"]) if isinstance(a, dict) else a
    return float(np.linalg.norm([va[0] - b["vx"], va[1] - b["vy"], LEVER * (va[2] - b["wz"])]))


def gaps(walks: list[dict[str, float]], nominal: list[dict[str, float]]) -> np.ndarray:
    """The behaviour gap at each command."""
    return np.array([distance(n, w) for n, w in zip(nominal, walks, strict=True)])


def gap(walks: list[dict[str, float]], nominal: list[dict[str, float]]) -> float:
    return float(gaps(walks, nominal).mean())


def largest_loss(before: list[dict[str, float]], after: list[dict[str, float]], nominal: list[dict[str, float]]) -> float:
    """The most the gap grew at any one command (m/s; negative: it shrank at every one)."""
    return float((gaps(after, nominal) - gaps(before, nominal)).max())


def tracking(walks: list[dict[str, float]]) -> float:
    return float(np.mean([distance(c, w) for c, w in zip(COMMANDS, walks, strict=True)]))


def excess_closed(before: float, after: float, nominal: float, noise: float) -> float | None:
    """The share of the tracking error above the nominal robot's that a session removed (None: no excess to remove)."""
    return (before - after) / (before - nominal) if before > nominal + noise else None


def reality_of(robot: str) -> str:
    """The emulator's profile for a ``--robots`` entry: a zoo seed, or ``nominal`` (the control)."""
    return robot if robot == "nominal" else f"zoo:{int(robot)}"


def session(args: argparse.Namespace, mode: str, seed: str, root: Path) -> dict:
    """The session of ``mode`` on zoo robot ``seed`` (run unless finished); its state."""
    state_file = root / "state.json"
    state = json.loads(state_file.read_text()) if state_file.is_file() else {}
    if state.get("phase") != "done" or state.get("iteration", 0) < 1:
        emulator = ["--lockstep", "--reset-per-run", "--reality", reality_of(seed)]
        proc, port, tracker = spawn_with_tracker(emulator) if args.tracker else (*spawn(emulator), None)
        try:
            argv = ["session", "--out", str(root), "--no-prompt", "--config", mode, "--set", f"session.robot=127.0.0.1:{port}"]
            argv += ["--set", f"session.tracker=127.0.0.1:{tracker}"] if tracker else []
            argv += ["--set", "session.local_port=0", "--set", f"session.max_robot_minutes={args.minutes}"]
            argv += ["--set", f"session.iterations={args.iterations}", *[x for o in args.session_set for x in ("--set", f"session.{o}")]]
            argv += [] if state_file.is_file() else ["--init", str(args.init)]
            print("$ unio4 " + " ".join(argv), flush=True)
            with (root.parent / f"{root.name}.log").open("a") as log:
                subprocess.run([sys.executable, "-m", "unio4.cli", *argv], check=True, stdout=log, stderr=subprocess.STDOUT)
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=30)
        state = json.loads(state_file.read_text())
    return state


def robot_row(args: argparse.Namespace, seed: str, nominal: list[dict[str, float]], held_out: list[dict[str, float]]) -> dict:
    """Zoo robot ``seed`` (or the nominal robot): before, then every mode's session and after (``nominal``,
    ``held_out``: the start bundle on the nominal robot at COMMANDS and HELD_OUT).
    """
    reality, out = reality_of(seed), args.out / f"robot_{seed}"
    before = behaviour(args.bundle, out / "before", reality)
    tracked_before, tracked_nominal = tracking(before), tracking(nominal)
    row: dict = {"robot": seed, "gap_before": gap(before, nominal), "tracking_before": tracked_before, "modes": {}}
    row["tracking_nominal"] = tracked_nominal
    held_before = behaviour(args.bundle, out / "before", reality, HELD_OUT)
    row["held_out_before"] = gap(held_before, held_out)
    for mode in args.modes:
        state = session(args, mode, seed, out / mode)
        after = behaviour(Path(state["bundle"]), out / f"after_{mode}", reality)
        held_after = behaviour(Path(state["bundle"]), out / f"after_{mode}", reality, HELD_OUT)
        g, tracked_after = gap(after, nominal), tracking(after)
        row["modes"][mode] = {
            "held_out_after": gap(held_after, held_out),
            "largest_loss": largest_loss(before, after, nominal),  # at one of COMMANDS
            "largest_held_out_loss": largest_loss(held_before, held_after, held_out),
            "gap_after": g,
            "closed": 1.0 - g / row["gap_before"] if row["gap_before"] > args.noise else None,  # None: no gap (the control)
            "tracking_after": tracked_after,
            "excess_closed": excess_closed(tracked_before, tracked_after, tracked_nominal, args.noise),
            "falls": sum(w["fell"] for w in after),
            "robot_minutes": state["robot_seconds"] / 60,
            "iterations": len(state["rows"]),
            "rolled_back": sum(c["verdict"] == "rolled back" for c in state.get("checks", [])),
            "worse_than_start": tracked_after > tracked_before + args.noise,
        }
    return row


def report(rows: list[dict], modes: list[str]) -> str:
    """Per robot and median, as markdown."""
    head = "| robot | mode | gap before -> after (m/s) | closed | held-out gap before -> after | largest loss at a command (held out) |"
    lines = [head + " tracking before -> after | tracking excess closed | falls | robot min | rollbacks |"]
    lines.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        for mode, m in r["modes"].items():
            closed = "-" if m["closed"] is None else f"{100 * m['closed']:.0f} %"
            cells = [f"{r['gap_before']:.3f} -> {m['gap_after']:.3f}", closed, f"{r['held_out_before']:.3f} -> {m['held_out_after']:.3f}"]
            cells.append(f"{m['largest_loss']:+.3f} ({m['largest_held_out_loss']:+.3f})" if "largest_loss" in m else "-")
            excess = "-" if m["excess_closed"] is None else f"{100 * m['excess_closed']:.0f} %"
            cells += [f"{r['tracking_before']:.3f} -> {m['tracking_after']:.3f}", excess]
            cells += [str(m["falls"]), f"{m['robot_minutes']:.2f}", str(m["rolled_back"])]
            lines.append(f"| {reality_of(str(r['robot']))} | {mode} | " + " | ".join(cells) + " |")
    for mode in modes:
        ms = [r["modes"][mode] for r in rows if mode in r["modes"] and r["modes"][mode]["closed"] is not None]
        lines += ["", summary(mode, ms)] if ms else []
    return "\n".join(lines)


def summary(mode: str, ms: list[dict]) -> str:
    """One mode's medians and counts over its robots."""
    excess = [m["excess_closed"] for m in ms if m["excess_closed"] is not None]
    parts = [
        f"{mode}: {len(ms)} robots",
        f"median gap closed {100 * statistics.median(m['closed'] for m in ms):.0f} %",
        f"median held-out gap after {statistics.median(m['held_out_after'] for m in ms):.3f} m/s",
        f"falls {sum(m['falls'] for m in ms)}",
        f"median tracking excess closed {100 * statistics.median(excess):.0f} % ({len(excess)} robots)" if excess else "no tracking excess",
        f"median robot minutes {statistics.median(m['robot_minutes'] for m in ms):.2f}",
        f"rollbacks {sum(m['rolled_back'] for m in ms)}",
        f"robots left tracking worse than at the start: {sum(m['worse_than_start'] for m in ms)}",
    ]
    if all("worse_at_a_command" in m for m in ms):  # rows written before it was measured have none
        parts.append(f"robots whose gap grew at some command, walked or held out: {sum(m['worse_at_a_command'] for m in ms)}")
    return ", ".join(parts)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--init", type=Path, required=True, help="the start checkpoint")
    p.add_argument("--bundle", type=Path, required=True, help="its exported bundle")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--robots", nargs="+", default=[str(k) for k in range(10)], help="zoo seeds, or nominal (the control)")
    p.add_argument("--modes", nargs="+", default=["go1_identify"], help="session presets")
    p.add_argument("--minutes", type=float, default=3.0, help="robot-time budget per session")
    p.add_argument("--iterations", type=int, default=2, help="session iterations at most (the budget may end it sooner)")
    p.add_argument("--session-set", action="append", default=[], metavar="KEY=VALUE", help="a session override (repeatable)")
    p.add_argument("--tracker", action="store_true", help="the zoo robot carries a tracking camera the session's check reads")
    p.add_argument("--noise", type=float, default=0.005, help="m/s: tracking, or the gap at a command, worse by more counts as worse")
    args = p.parse_args()
    nominal = behaviour(args.bundle, args.out / "nominal", "nominal")
    held_out = behaviour(args.bundle, args.out / "nominal", "nominal", HELD_OUT)
    rows = []
    for seed in args.robots:
        rows.append(robot_row(args, seed, nominal, held_out))
        (args.out / "report.json").write_text(json.dumps(rows, indent=1))
        print(report(rows, args.modes), flush=True)
    (args.out / "report.md").write_text(report(rows, args.modes) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
