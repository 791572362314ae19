"""On-robot fine-tuning against the emulator: does ``unio4 session`` improve the policy?

1. starts ``unio4 emulate --lockstep`` (MuJoCo behind the real SDK's UDP protocol);
2. runs ``unio4 session`` from ``--init`` for ``--iterations`` (settings: ``configs/session/go1.yaml``
   plus ``--set`` overrides; the gate's task restricted to forward commands);
3. reports, per iteration, the explore-mode rollouts the update learned from (mean +- std of the
   per-rollout return over 500 steps), and the gate's numbers;
4. deploys the session's first and final bundle again with the mean action (no exploration) at
   each of ``--eval-commands`` (forward m/s, 10 s each) and reports return and tracking.

Every command is printed, so each number can be repeated by hand.

Usage: .venv/bin/python scripts/bench/session_emulator.py --init offline.pt --out runs/bench/session [--seed 0]
"""

from __future__ import annotations

import argparse
import itertools
import json
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np

from unio4.learning.data.dataset import Dataset, load_dataset
from unio4.learning.data.pack import pack_runs
from unio4.sim.config import FORWARD_COMMANDS, load_task_config
from unio4.sim.emulator import spawn


def unio4(*argv: str) -> None:
    print("$ " + shlex.join(["unio4", *argv]), flush=True)
    subprocess.run([str(Path(sys.executable).with_name("unio4")), *argv], check=True)


def episode_returns(data: Dataset) -> list[float]:
    """Return of each logged rollout (one per run; episodes end at a termination or time-out)."""
    starts = [0, *(data.episode_ends() + 1).tolist()]
    return [float(data.rewards[a:b].sum()) for a, b in itertools.pairwise(starts)]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--init", required=True, help="checkpoint the session starts from")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--iterations", type=int, default=3)
    p.add_argument("--eval-commands", type=float, nargs="+", default=[0.5, 0.7, 1.0])
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="session config override")
    args = p.parse_args()
    task = load_task_config("go1_flat", FORWARD_COMMANDS)
    proc, port = spawn(["--lockstep"])
    try:
        robot = ["--robot", f"127.0.0.1:{port}", "--local-port", "0"]
        session = args.out / "session"
        argv = ["session", "--out", str(session), "--no-prompt"]
        argv += ["--set", f"session.robot=127.0.0.1:{port}", "--set", "session.local_port=0"]
        argv += ["--set", f"session.iterations={args.iterations}", "--set", f"session.seed={args.seed}"]
        argv += [a for o in args.overrides for a in ("--set", f"session.{o}")]
        argv += [a for t in FORWARD_COMMANDS for a in ("--set", f"task.{t}")]
        unio4(*argv, *([] if (session / "state.json").is_file() else ["--init", args.init]))
        state = json.loads((session / "state.json").read_text())
        iterations: list[dict[str, object]] = []
        header = ["iteration", "explore return / 500 steps (mean +- std over rollouts)", "gate error first / current -> new"]
        print("\n| " + " | ".join([*header, "safety stops", "accepted"]) + " |")
        print("|---|---|---|---|---|")
        for row in state["rows"]:
            returns = episode_returns(load_dataset(session / f"iter_{row['iteration']:03d}" / "data.h5"))
            iterations.append({**row, "rollout_returns": returns})
            print(
                f"| {row['iteration']} | {np.mean(returns):.3f} +- {np.std(returns):.3f} ({len(returns)} rollouts) | "
                f"{row.get('gate_error_start', float('nan')):.3f} / {row['gate_error_old']:.3f} -> {row['gate_error_new']:.3f} | "
                f"{row.get('safety_stops', '')} | {'yes' if row['accepted'] else 'no'} |"
            )
        bundles = {"first": session / "iter_000" / "bundle", "final": Path(state["bundle"])}
        deterministic: dict[str, dict[str, float]] = {}
        for name, bundle in bundles.items():
            for vx in args.eval_commands:
                run = args.out / "eval" / f"{name}_{vx:.1f}"
                if not (run / "summary.yaml").is_file():
                    unio4("deploy", str(bundle), *robot, "--duration", "10", "--command", f"{vx},0,0", "--out", str(run))
                data = pack_runs([run], task)
                tracking = float(data.infos["reward_tracking_lin_vel"].mean())
                deterministic[f"{name} {vx:.1f}"] = {"return": float(data.rewards.sum()), "tracking_per_step": tracking}
        print("\n| bundle (mean action) | " + " | ".join(f"return at {vx:.1f} m/s (tracking / step)" for vx in args.eval_commands) + " |")
        print("|---|" + "---|" * len(args.eval_commands))
        for name, bundle in bundles.items():
            cells = [deterministic[f"{name} {vx:.1f}"] for vx in args.eval_commands]
            text = [f"{c['return']:.3f} ({c['tracking_per_step']:.4f})" for c in cells]
            print(f"| {name} ({bundle.parent.name}) | " + " | ".join(text) + " |")
        report = {"iterations": iterations, "deterministic": deterministic}
        (args.out / "report.json").write_text(json.dumps(report, indent=1))
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
