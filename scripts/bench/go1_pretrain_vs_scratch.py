"""Go1 learning curves: PPO from scratch vs Uni-O4 (offline on gait logs, then online), same budget.

Every number comes from ``unio4`` commands, printed as they run, so each can be repeated by hand:

1. ``unio4 collect`` logs the built-in trot under randomisation (one dataset for every seed);
2. per seed: ``unio4 train offline`` (Uni-O4, CPU preset) then ``unio4 train online --init`` with
   ``finetune_go1``; and ``unio4 train online`` from scratch with ``ppo_go1``;
3. both online runs evaluate the mean action every ``--eval-interval`` iterations on the same
   seeded evaluation robots (``eval/reward/step``), the first time before any update.

Reported: mean +- std curves over seeds (PNG), environment samples each method needs to reach 90 %
of PPO-from-scratch's final evaluation (the first evaluation at or above it), and the offline ->
online transition (the offline policy's evaluation, the lowest of the next three, per seed).

Usage: .venv/bin/python scripts/bench/go1_pretrain_vs_scratch.py --out runs/bench/go1 [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np

from unio4.sim.config import FORWARD_COMMANDS

OFFLINE = ["critics.steps=4000", "bc.steps=3000", "bc.lr=0.001", "dynamics.max_epochs=5", "improvement.steps=300", "ope.horizon=50"]


def unio4(*argv: str) -> None:
    cmd = [str(Path(sys.executable).with_name("unio4")), *argv]
    print("$ " + shlex.join(["unio4", *argv]), flush=True)
    subprocess.run(cmd, check=True)


def eval_curve(run: Path) -> tuple[np.ndarray, np.ndarray]:
    """(samples, eval reward/step) of one online run."""
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    pts = [(r["step"], r["eval/reward/step"]) for r in rows if "eval/reward/step" in r]
    return np.array([p[0] for p in pts], dtype=float), np.array([p[1] for p in pts])


def samples_to_reach(steps: np.ndarray, values: np.ndarray, target: float) -> float:
    """First sample count at which the evaluation reaches ``target`` (inf if never)."""
    hit = np.nonzero(values >= target)[0]
    return float(steps[hit[0]]) if hit.size else float("inf")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--iterations", type=int, default=150)
    p.add_argument("--num-envs", type=int, default=128)
    p.add_argument("--eval-interval", type=int, default=5)
    p.add_argument("--collect-envs", type=int, default=64)
    p.add_argument("--collect-steps", type=int, default=400)
    p.add_argument("--backend", default="mujoco")
    p.add_argument("--offline-set", action="append", default=[], metavar="KEY=VALUE", help="extra train offline override")
    args = p.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    task = [x for f in FORWARD_COMMANDS for x in ("--set", f"task.{f}")] + ["--backend", args.backend, "--num-envs", str(args.num_envs)]
    online = ["--iterations", str(args.iterations), "--set", f"train.eval_interval={args.eval_interval}", *task]

    data = out / "gait.h5"
    if not data.exists():
        forward = [x for f in FORWARD_COMMANDS for x in ("--set", f"task.{f}")]
        unio4("collect", "--num-envs", str(args.collect_envs), "--steps", str(args.collect_steps), *forward, "-o", str(data))
    for seed in args.seeds:
        s = ["--seed", str(seed), "--set", f"train.seed={seed}"]
        off = out / f"uni_o4_offline_{seed}"
        if not (off / "checkpoints" / "offline.pt").exists():
            extra = [x for o in [*OFFLINE, *args.offline_set, f"seed={seed}"] for x in ("--set", f"train.{o}")]
            unio4("train", "offline", "--data", str(data), "--config", "uni_o4_offline_go1", "--out", str(off), *extra)
        runs = {
            f"uni_o4_online_{seed}": ["--init", str(off / "checkpoints" / "offline.pt"), "--config", "finetune_go1"],
            f"ppo_scratch_{seed}": ["--config", "ppo_go1"],
        }
        for name, how in runs.items():
            if not (out / name / "checkpoints" / "final.pt").exists():
                unio4("train", "online", *how, *online, *s, "--out", str(out / name))

    curves = {m: [eval_curve(out / f"{m}_{seed}") for seed in args.seeds] for m in ("ppo_scratch", "uni_o4_online")}
    steps = curves["ppo_scratch"][0][0]
    mean = {m: np.mean([c[1] for c in cs], axis=0) for m, cs in curves.items()}
    std = {m: np.std([c[1] for c in cs], axis=0) for m, cs in curves.items()}
    scratch_final = float(mean["ppo_scratch"][-1])
    target = 0.9 * scratch_final  # the yardstick: 90 % of PPO-from-scratch's final evaluation
    reach = {m: samples_to_reach(steps, mean[m], target) for m in mean}
    first = mean["uni_o4_online"][0]
    transition = {
        "offline_policy_eval": float(first),
        "min_next_evals": float(mean["uni_o4_online"][1:4].min()),
        "per_seed_min_ratio": [float(c[1][1:4].min() / c[1][0]) if c[1][0] > 0 else float("nan") for c in curves["uni_o4_online"]],
    }
    summary = {
        "seeds": args.seeds,
        "samples_per_iteration": int(steps[1] - steps[0]) // args.eval_interval,
        "final_eval": {m: float(mean[m][-1]) for m in mean},
        "final_eval_std": {m: float(std[m][-1]) for m in std},
        "target_90pct_of_scratch_final": target,
        "samples_to_target": reach,
        "transition": transition,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    labels = {"ppo_scratch": "PPO from scratch", "uni_o4_online": "Uni-O4 (offline on gait logs + online)"}
    for m in mean:
        ax.plot(steps, mean[m], label=labels[m])
        ax.fill_between(steps, mean[m] - std[m], mean[m] + std[m], alpha=0.2)
    ax.axhline(target, color="grey", ls="--", lw=0.8, label="90 % of scratch's final")
    ax.set_xlabel("environment samples")
    ax.set_ylabel("evaluation reward / step (mean action)")
    ax.set_title(f"Go1 forward walking ({args.backend}, {len(args.seeds)} seeds, mean +- std)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "curves.png", dpi=120)
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
