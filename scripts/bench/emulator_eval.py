"""Bundles on the emulated robot, through the real SDK: forward speed held at each commanded speed, falls.

For every bundle and commanded forward speed: a fresh ``unio4 emulate --lockstep`` (optionally with a
``--reality`` profile), ``unio4 deploy BUNDLE --command VX,0,0`` for ``--seconds``, and the emulator's
ground-truth trace: mean forward velocity in the base frame over the second half of the run, the
tracking error against the command, and whether the trunk tilted past 1 rad (a fall).

Usage: .venv/bin/python scripts/bench/emulator_eval.py BUNDLE... --out DIR [--commands 0.3 0.6] [--reality go1_real]
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

from unio4.deploy.observations import projected_gravity, rotate_inverse
from unio4.deploy.runtime import RuntimeConfig
from unio4.sim.emulator import spawn

STALE_TRIES = 3  # a walk the runtime stopped for stale state (the machine too busy to keep the emulator's pace) runs again


def walk_dir(out: Path, command: tuple[float, float, float]) -> Path:
    """Where a benchmark keeps its walk at ``command`` under ``out``: ``cmd_VX_VY_WZ``."""
    return out / ("cmd_" + "_".join(f"{x:g}" for x in command))


def stale(log: Path) -> bool:
    """Whether the runtime stopped the walk because the emulator's state went stale: the link, not the policy."""
    summary = yaml.safe_load((log / "summary.yaml").read_text()) or {}
    return str(summary.get("reason", "")).startswith("stale state")


def deploy_once(
    bundle: Path, command: tuple[float, float, float], seconds: float, out: Path, reality: str, emulator_args: tuple[str, ...]
) -> int:
    """``unio4 deploy`` at ``command`` against a fresh lockstep emulator that records its truth in ``out/trace.npz``; the exit code."""
    proc, port = spawn(["--lockstep", "--reality", reality, *emulator_args, "-o", str(out / "trace.npz")])
    try:
        argv = ["deploy", str(bundle), "--robot", f"127.0.0.1:{port}", "--local-port", "0", "--duration", str(seconds)]
        argv += ["--command=" + ",".join(f"{c:g}" for c in command), "-o", str(out / "log")]  # "=": a leading minus is no option
        print("$ " + shlex.join(["unio4", *argv]), flush=True)
        return subprocess.run([sys.executable, "-m", "unio4.cli", *argv], capture_output=True, text=True).returncode
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)


def run_command(
    bundle: Path, command: tuple[float, float, float], seconds: float, out: Path, reality: str, emulator_args: tuple[str, ...] = ()
) -> dict[str, float]:
    """One deploy run at ``command`` (vx, vy, yaw rate) against a fresh emulator (``emulator_args``: more of its
    options, e.g. pushes): the base-frame velocity and yaw rate held over the second half of the policy phase,
    from the emulator's ground truth, and whether it fell.
    """
    trace = out / "trace.npz"
    returncode = 0
    for _ in range(STALE_TRIES):
        if trace.is_file() and (out / "log" / "summary.yaml").is_file() and not stale(out / "log"):
            break  # measured (before, or now): read again
        shutil.rmtree(out / "log", ignore_errors=True)
        returncode = deploy_once(bundle, command, seconds, out, reality, emulator_args)
    return {**read_walk(out, seconds), "exit": returncode}


def read_walk(out: Path, seconds: float) -> dict[str, float]:
    """A recorded run's held base-frame velocity and yaw rate over the second half of its ``seconds`` of policy
    time (emulator truth), whether it fell, and its robot time.
    """
    with np.load(out / "trace.npz") as t:
        quat, vel, gyro, time_s, kp = t["base_quat"], t["base_lin_vel_world"], t["gyro"], t["t"], t["kp"]
    body = rotate_inverse(np, quat, vel)
    # the run ends with the runtime's stop phase (the policy at a zero command) and then damping (Kp 0):
    # the window is the second half of the *policy* phase, which ends stop_s before the last servo tick
    end = time_s[np.flatnonzero(kp > 0)[-1]] - stop_seconds(out / "log")
    half = (time_s > end - seconds / 2) & (time_s <= end)
    tilt = np.arccos(np.clip(-projected_gravity(np, quat)[:, 2], -1.0, 1.0))
    held = {"vx": float(body[half, 0].mean()), "vy": float(body[half, 1].mean()), "wz": float(gyro[half, 2].mean())}
    # robot time: the emulated seconds from the first command to the last (stand-up and damping included)
    return {**held, "fell": bool((tilt > 1.0).any()), "robot_s": float(time_s[-1])}


def stop_seconds(log_dir: Path) -> float:
    """The run's stop phase as its log's meta.yaml records it (logs older than that record: the default)."""
    runtime = yaml.safe_load((log_dir / "meta.yaml").read_text()).get("runtime", {})
    return float(runtime.get("stop_s", RuntimeConfig().stop_s))


def run_one(bundle: Path, vx: float, seconds: float, out: Path, reality: str) -> dict[str, float]:
    """One deploy run at ``vx`` forward against a fresh emulator; numbers from the emulator's ground truth."""
    r = run_command(bundle, (vx, 0.0, 0.0), seconds, out, reality)
    return {"command": vx, "mean_vx": r["vx"], "error": abs(r["vx"] - vx), "fell": r["fell"], "exit": r["exit"], "robot_s": r["robot_s"]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("bundles", nargs="+", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--commands", type=float, nargs="+", default=[0.3, 0.6])
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--reality", default="nominal", help="the emulator's reality-gap profile")
    args = p.parse_args()
    results: dict[str, list[dict[str, float]]] = {}
    for bundle in args.bundles:
        results[str(bundle)] = [
            run_one(bundle, vx, args.seconds, args.out / bundle.name / f"vx_{vx:.2f}", args.reality) for vx in args.commands
        ]
    print(f"\n| bundle ({args.reality}) | " + " | ".join(f"vx {vx:.2f}: measured (fell)" for vx in args.commands) + " |")
    print("|---|" + "---|" * len(args.commands))
    for bundle, rows in results.items():
        print(f"| {Path(bundle).name} | " + " | ".join(f"{r['mean_vx']:.2f} ({'yes' if r['fell'] else 'no'})" for r in rows) + " |")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "emulator_eval.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
