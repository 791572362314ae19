"""Replay a command calibration from a gap-zoo run's recorded walks: what another calibration would have closed.

A calibrated bundle walks the robot at ``c' = A c + d`` where the start bundle walked at ``c``. To first order the
robot then holds ``B(c) + G (c' - c)``: ``B`` its held behaviour at ``c`` (the benchmark's "before" walks, emulator
truth) and ``G`` the gain the session fitted to its own walks. So a calibration variant (its pulls, linear or affine,
acting on the walked sides or everywhere, a yaw-rate reading corrected for the gyro's bias) can be scored on the robots
a ``gap_zoo.py`` run already walked, without walking them again, at ``COMMANDS`` (the gap) and ``HELD_OUT``. Each row
also prints the recorded map replayed this way beside what its bundle was measured to close, which says how far to
trust the first-order prediction.

It reads, for every robot of ``--out`` with a calibrated session: the session's ``calibrate.yaml`` of ``--iteration``
(the walks as the session read them, and the targets), ``before/`` and ``after_MODE/`` (the benchmark's walks), and
``nominal/``. Nothing is walked: a missing walk is an error.

Usage: .venv/bin/python scripts/bench/calibration_replay.py --out DIR [DIR ...] [--robots 6 8] [--ridge 0.002]
       [--cross-ridge 0.02] [--offset-ridge 0.05] [--linear] [--everywhere] [--true-yaw]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from emulator_eval import read_walk, walk_dir
from gap_zoo import COMMANDS, HELD_OUT, LEVER, SECONDS

from unio4.learning.robot.command_map import CommandMap, CommandMapConfig, Pull, affine_fit, configured_map

Commands = tuple[tuple[float, float, float], ...]
JACOBIAN_PULL = Pull(1e-3, 1e-3, 1e-3)  # the robot's gain G as the walks say it, barely pulled (one walk alone decides the vy column)
NO_GAP = 0.005  # m/s: a robot whose gap is smaller has none to close (the control; gap_zoo.py's --noise)


def walked(directory: Path, commands: Commands) -> np.ndarray:
    """The held (vx, vy, yaw rate) of the recorded benchmark walks in ``directory`` (n, 3); never walks."""
    rows = []
    for c in commands:
        out = walk_dir(directory, c)
        if not (out / "trace.npz").is_file():
            raise SystemExit(f"calibration_replay: {out}: no recorded walk (run gap_zoo.py first)")
        held = read_walk(out, SECONDS)
        rows.append([held["vx"], held["vy"], held["wz"]])
    return np.array(rows)


def gaps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The behaviour gap at each command between two sets of held behaviours (n, 3): |(dvx, dvy, LEVER dwz)| (n,)."""
    return np.linalg.norm((a - b) * np.array([1.0, 1.0, LEVER]), axis=1)


def gap(a: np.ndarray, b: np.ndarray) -> float:
    """gap_zoo's behaviour gap: the mean of :func:`gaps`."""
    return float(gaps(a, b).mean())


def predicted(before: np.ndarray, commands: Commands, gain: np.ndarray, cmap: CommandMap) -> np.ndarray:
    """What the robot holds at ``commands`` under ``cmap``, to first order: before + G (c' - c)."""
    c = np.array(commands)
    return before + (cmap.apply(c) - c) @ gain.T


def replay(robot: Path, mode: str, iteration: int, nominal: tuple[np.ndarray, np.ndarray], args: argparse.Namespace) -> dict:
    """One robot's gap before, measured after, the recorded map replayed, and the variant, at COMMANDS and HELD_OUT."""
    record = yaml.safe_load((robot / mode / f"iter_{iteration:03d}" / "calibrate.yaml").read_text())
    commands = np.array([w["command"] for w in record["walks"]])
    read, target = np.array([w["robot"] for w in record["walks"]]), np.array([w["target"] for w in record["walks"]])
    before = walked(robot / "before", COMMANDS), walked(robot / "before", HELD_OUT)
    if args.true_yaw:  # the session's yaw-rate reading with the gyro's bias removed (as the truth reads it)
        truth = walked(robot / "before", tuple(tuple(float(x) for x in c) for c in commands))
        read = np.concatenate([read[:, :2], truth[:, 2:]], axis=1)
    gain, _ = affine_fit(commands, read, JACOBIAN_PULL)  # the robot's response to a command change, for every variant
    recorded = CommandMap.from_record(record)
    cfg = CommandMapConfig(ridge=args.ridge, cross_ridge=args.cross_ridge, offset_ridge=args.offset_ridge)
    variant = configured_map(commands, read, target, replace(cfg, offset=not args.linear, one_sided=not args.everywhere))
    held_out_before = gaps(before[1], nominal[1])  # per held-out command
    row = {"robot": robot.name, "gap_before": gap(before[0], nominal[0]), "held_out_before": float(held_out_before.mean())}
    after = robot / f"after_{mode}"
    if after.is_dir():
        row["measured"] = gap(walked(after, COMMANDS), nominal[0])
    for name, cmap in (("recorded", recorded), ("variant", variant)):
        row[name] = gap(predicted(before[0], COMMANDS, gain, cmap), nominal[0])
        held_out = gaps(predicted(before[1], HELD_OUT, gain, cmap), nominal[1])
        row[f"{name}_held_out"] = float(held_out.mean())
        row[f"{name}_worst"] = float((held_out - held_out_before).max())  # the most one held-out command lost
    return row


def closed(row: dict, key: str) -> str:
    """The share of the gap closed, as a cell ("-": not measured, or no gap to close: the control)."""
    return f"{100 * (1 - row[key] / row['gap_before']):.0f} %" if key in row and row["gap_before"] > NO_GAP else "-"


def replay_run(out: Path, args: argparse.Namespace) -> list[dict]:
    """The rows of every robot of one gap_zoo.py run ``out`` with a calibrated session (or those of ``--robots``)."""
    nominal = walked(out / "nominal", COMMANDS), walked(out / "nominal", HELD_OUT)
    names = [f"robot_{r}" for r in args.robots] if args.robots else sorted(d.name for d in out.glob("robot_*"))
    session = Path(args.mode) / f"iter_{args.iteration:03d}" / "calibrate.yaml"
    robots = [out / n for n in names if (out / n / session).is_file()]
    if not robots:
        raise SystemExit(f"calibration_replay: no calibrated {args.mode} session under {out}")
    return [replay(r, args.mode, args.iteration, nominal, args) for r in robots]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, nargs="+", required=True, help="gap_zoo.py output directories (rows over all)")
    p.add_argument("--robots", nargs="+", default=None, help="zoo seeds (default: every robot with a calibrated session)")
    p.add_argument("--mode", default="go1_identify")
    p.add_argument("--iteration", type=int, default=1, help="the session iteration whose calibration is replayed")
    default = CommandMapConfig()
    p.add_argument("--ridge", type=float, default=default.ridge, help="the variant's calibrate.ridge (default: the default's)")
    p.add_argument("--cross-ridge", type=float, default=default.cross_ridge, help="the variant's calibrate.cross_ridge")
    p.add_argument("--offset-ridge", type=float, default=default.offset_ridge, help="the variant's calibrate.offset_ridge")
    p.add_argument("--linear", action="store_true", help="the variant fits a linear map (calibrate.offset false)")
    p.add_argument("--everywhere", action="store_true", help="the variant's map acts on every side (one_sided false)")
    p.add_argument("--true-yaw", action="store_true", help="the variant reads the yaw rate without the gyro's bias")
    args = p.parse_args()
    rows = [row for out in args.out for row in replay_run(out, args)]
    print("| robot | gap before | measured after | recorded map, predicted | variant, predicted | held-out before -> recorded / variant |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        held = f"{r['held_out_before']:.3f} -> {r['recorded_held_out']:.3f} / {r['variant_held_out']:.3f}"
        cells = [f"{r['gap_before']:.3f}", closed(r, "measured"), closed(r, "recorded"), closed(r, "variant"), held]
        print(f"| {r['robot']} | " + " | ".join(cells) + " |")
    for key in ("measured", "recorded", "variant"):
        shares = [1 - r[key] / r["gap_before"] for r in rows if key in r and r["gap_before"] > NO_GAP]
        print(f"median closed, {key}: {100 * statistics.median(shares):.1f} % ({len(shares)} robots)" if shares else f"{key}: none")
    for key in ("recorded", "variant"):
        worst = max(rows, key=lambda r: r[f"{key}_worst"])
        print(
            f"held out, {key}: mean gap after {statistics.mean(r[f'{key}_held_out'] for r in rows):.4f} m/s, "
            f"largest loss at one command {worst[f'{key}_worst']:+.3f} m/s ({worst['robot']})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
