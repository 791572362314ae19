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

What was measured before (the evaluations, the identification runs, a trained bundle) is read
again rather than redone, so a second instance with other ``--seeds`` can share ``--out``.

Usage: .venv/bin/python scripts/bench/gap_closing.py --init CKPT --bundle BUNDLE --out DIR [--reality weak_motors] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from emulator_eval import run_one

# --forward: both arms fine-tune on walking forward over the evaluated speeds, as the robot is used
FORWARD = ("commands.lin_vel_x=[0.2,1.0]", "commands.lin_vel_y=[0,0]", "commands.ang_vel_yaw=[0,0]")


def unio4(*argv: str) -> None:
    print("$ " + shlex.join(["unio4", *argv]), flush=True)
    subprocess.run([sys.executable, "-m", "unio4.cli", *argv], check=True, stdout=subprocess.DEVNULL)


def evaluate(bundle: Path, commands: list[float], out: Path, reality: str) -> dict[str, float]:
    rows = [run_one(bundle, vx, 10.0, out / f"vx_{vx:.2f}", reality) for vx in commands]
    return {"error": float(np.mean([r["error"] for r in rows])), "falls": sum(r["fell"] for r in rows), "rows": rows}  # type: ignore[dict-item]


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
            run = out / f"{arm}_{seed}"
            if not (run / "bundle" / "policy.onnx").is_file():
                argv = ["train", "online", "--init", str(args.init), "--config", "finetune_go1", "--num-envs", str(args.num_envs)]
                argv += ["--iterations", str(args.iterations), "--seed", str(seed), "--set", f"train.seed={seed}", "-o", str(run)]
                argv += [x for o in [*sets, *(FORWARD if args.forward else [])] for x in ("--set", f"task.{o}")]
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
    report = {"reality": args.reality, "estimate": estimate, "robot_s": robot_s, "nominal": nominal, "before": before, "seeds": results}
    (out / "report.json").write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
