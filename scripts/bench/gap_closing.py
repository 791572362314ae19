"""Closing a sim-to-real gap: identify the emulated robot's dynamics from a few rollouts, fine-tune in simulation.

For each seed, against ``unio4 emulate --reality PROFILE`` (a robot the start policy was not trained on):

1. **before**: the start bundle walks at each of ``--eval-commands`` (10 s each, mean action); the
   error is the mean |measured forward speed - command| over the commands, from the emulator's
   ground truth. The same on the nominal emulator gives the error without the gap;
2. **robot time**: the start bundle walks at ``--id-commands`` (10 s each) and is logged: the only
   robot time the adaptation uses;
3. ``unio4 identify`` fits motor strength and trunk mass in simulation to those logs;
4. ``unio4 train online --init CKPT --config finetune_go1`` for ``--iterations`` with the task's
   randomisation centred on the estimate (the adaptation), and, as the control, the same without it
   (continuing PPO in simulation on the training robot);
5. **after**: both bundles walk on the shifted emulator as in 1.

Share of the gap closed = (before - after) / (before - nominal).

``--session K`` runs the adapted arm as the product does it: ``unio4 session --config go1_identify``
against a fresh ``unio4 emulate --lockstep --reset-per-run --reality PROFILE`` for K iterations (each:
mean-action walks at the identification commands, ``unio4 identify``, ``--iterations`` of PPO in
simulation around the fit, export, the gate), and evaluates the session's current bundle after every
iteration; the control then trains K x ``--iterations`` on the robot as trained (the same simulated
samples).

What was measured before (the evaluations, the identification runs, a trained bundle) is read
again rather than redone, so a second instance with other ``--seeds`` can share ``--out``.

Usage: .venv/bin/python scripts/bench/gap_closing.py --init CKPT --bundle BUNDLE --out DIR [--reality weak_motors] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from emulator_eval import run_one

from unio4.sim.emulator import spawn

# --forward: both arms fine-tune on walking forward over the evaluated speeds, as the robot is used
FORWARD = ("commands.lin_vel_x=[0.2,1.0]", "commands.lin_vel_y=[0,0]", "commands.ang_vel_yaw=[0,0]")


def unio4(*argv: str) -> None:
    print("$ " + shlex.join(["unio4", *argv]), flush=True)
    subprocess.run([sys.executable, "-m", "unio4.cli", *argv], check=True, stdout=subprocess.DEVNULL)


def evaluate(bundle: Path, commands: list[float], out: Path, reality: str) -> dict[str, float]:
    rows = [run_one(bundle, vx, 10.0, out / f"vx_{vx:.2f}", reality) for vx in commands]
    return {"error": float(np.mean([r["error"] for r in rows])), "falls": sum(r["fell"] for r in rows), "rows": rows}  # type: ignore[dict-item]


def session_arm(args: argparse.Namespace, seed: int, out: Path) -> list[dict[str, object]]:
    """``unio4 session`` in identify mode against the shifted emulator; the current bundle after each iteration, evaluated."""
    root = out / f"session_{seed}"
    state_file = root / "state.json"
    state = json.loads(state_file.read_text()) if state_file.is_file() else {}
    if not (state.get("phase") == "done" and state.get("iteration", 0) >= args.session):
        proc, port = spawn(["--lockstep", "--reset-per-run", "--reality", args.reality])
        try:
            argv = ["session", "--out", str(root), "--no-prompt", "--config", "go1_identify"]
            argv += ["--set", f"session.robot=127.0.0.1:{port}", "--set", "session.local_port=0", "--set", f"session.seed={seed}"]
            argv += ["--set", f"session.iterations={args.session}", "--set", f"session.sim.iterations={args.iterations}"]
            argv += ["--set", f"session.sim.num_envs={args.num_envs}"]
            argv += [x for o in args.task_set for x in ("--set", f"task.{o}")]
            unio4(*argv, *([] if state_file.is_file() else ["--init", str(args.init)]))
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=30)
        state = json.loads(state_file.read_text())
    rows, current = [], root / "iter_000" / "bundle"
    for row in state["rows"]:
        k = row["iteration"]
        if row["accepted"]:
            current = root / f"iter_{k:03d}" / "bundle"
        result = evaluate(current, args.eval_commands, out / f"after_session_{seed}" / f"iter_{k}", args.reality)
        rows.append({**result, "iteration": k, "accepted": row["accepted"], "robot_minutes": row["robot_minutes"]})
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--init", type=Path, required=True, help="the start checkpoint (trained in simulation)")
    p.add_argument("--bundle", type=Path, required=True, help="its exported bundle")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--reality", default="weak_motors")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--iterations", type=int, default=100)
    p.add_argument("--num-envs", type=int, default=256)
    p.add_argument("--eval-commands", type=float, nargs="+", default=[0.3, 0.6, 0.9])
    p.add_argument("--id-commands", type=float, nargs="+", default=[0.3, 0.6, 0.9])
    p.add_argument("--forward", action="store_true", help="fine-tune both arms on forward commands, 0.2-1.0 m/s")
    p.add_argument("--task-set", action="append", default=[], metavar="KEY=VALUE", help="a task override for both arms (repeatable)")
    p.add_argument("--session", type=int, default=0, metavar="K", help="the adapted arm as a K-iteration `unio4 session` (identify mode)")
    p.add_argument("--arms", nargs="+", default=["adapted", "control"], choices=["adapted", "control"], help="which runs to make")
    args = p.parse_args()
    out: Path = args.out
    nominal = evaluate(args.bundle, args.eval_commands, out / "before_nominal", "nominal")
    before = evaluate(args.bundle, args.eval_commands, out / "before_shifted", args.reality)
    logs = [run_one(args.bundle, vx, 10.0, out / "identify_runs" / f"vx_{vx:.2f}", args.reality) for vx in args.id_commands]
    robot_s = sum(r["robot_s"] for r in logs)
    fit = out / "identify.yaml"
    id_logs = [str(out / "identify_runs" / f"vx_{vx:.2f}" / "log") for vx in args.id_commands]
    if not fit.is_file():
        unio4("identify", *id_logs, "--bundle", str(args.bundle), "-o", str(fit))
    estimate = yaml.safe_load(fit.read_text())
    results = []
    for seed in args.seeds:
        row: dict[str, object] = {"seed": seed}
        for arm, sets in (("adapted", estimate["task_overrides"]), ("control", [])):
            if arm not in args.arms:
                continue
            if arm == "adapted" and args.session:
                row["session"] = session_arm(args, seed, out)
                row["adapted"] = row["session"][-1]  # type: ignore[index]
                continue
            iterations = args.iterations * max(1, args.session)  # the control: as many simulated samples as the session
            run = out / (f"{arm}_{seed}" if not args.session else f"{arm}_{seed}_x{args.session}")
            if not (run / "bundle" / "policy.onnx").is_file():
                argv = ["train", "online", "--init", str(args.init), "--config", "finetune_go1", "--num-envs", str(args.num_envs)]
                argv += ["--iterations", str(iterations), "--seed", str(seed), "--set", f"train.seed={seed}", "-o", str(run)]
                argv += [x for o in [*sets, *(FORWARD if args.forward else []), *args.task_set] for x in ("--set", f"task.{o}")]
                unio4(*argv)
                unio4("export", str(run / "checkpoints" / "final.pt"), "-o", str(run / "bundle"))
            row[arm] = evaluate(run / "bundle", args.eval_commands, out / f"after_{arm}_{seed}", args.reality)
        results.append(row)
    gap = before["error"] - nominal["error"]
    print(f"\nreality {args.reality}; estimate: motor strength {estimate['motor_strength']}, trunk mass {estimate['added_mass']:+} kg")
    print(f"robot time used by the adaptation: {robot_s / 60:.2f} min ({len(logs)} rollouts)")
    print(f"error on the nominal robot {nominal['error']:.3f} m/s, on the shifted robot before {before['error']:.3f} (gap {gap:.3f})")
    print("\n| seed | adapted: error (falls) | gap closed | control: error (falls) | gap closed |")
    print("|---|---|---|---|---|")
    for r in results:
        if "adapted" not in r or "control" not in r:
            continue
        a, c = r["adapted"], r["control"]
        closed = [(before["error"] - x["error"]) / gap for x in (a, c)]  # type: ignore[index]
        cells = [f"{a['error']:.3f} ({a['falls']})", f"{100 * closed[0]:.0f} %"]  # type: ignore[index]
        cells += [f"{c['error']:.3f} ({c['falls']})", f"{100 * closed[1]:.0f} %"]  # type: ignore[index]
        print(f"| {r['seed']} | " + " | ".join(cells) + " |")
    for r in results:
        if "session" not in r:
            continue
        print(f"\nsession, seed {r['seed']}: the current bundle after each iteration on the shifted robot")
        print("| iteration | robot minutes (all so far) | accepted | error m/s (falls) | gap closed |\n|---|---|---|---|---|")
        print(f"| 0 (start) | 0 | | {before['error']:.3f} ({before['falls']}) | 0 % |")
        for it in r["session"]:  # type: ignore[attr-defined]
            closed = (before["error"] - it["error"]) / gap
            cells = [str(it["iteration"]), f"{it['robot_minutes']:.2f}", "yes" if it["accepted"] else "no"]
            print("| " + " | ".join([*cells, f"{it['error']:.3f} ({it['falls']})", f"{100 * closed:.0f} %"]) + " |")
    report = {"reality": args.reality, "estimate": estimate, "robot_s": robot_s, "nominal": nominal, "before": before, "seeds": results}
    (out / "report.json").write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
