"""Uni-O4 (offline on gait logs, then online) against PPO from scratch that walks, on `go1_flat`.

    python scripts/bench/go1_uni_o4_vs_walking_scratch.py \
        --scratch RUN/seed0/checkpoints/iter_000400.pt RUN/seed1/checkpoints/final.pt ... \
        --uni-o4 FT/seed0 FT/seed1 ... --offline-minutes 9.5 --out docs/img/go1_uni_o4_vs_scratch.png

Scratch's checkpoints are those at which ``unio4 bench walk`` found each seed walking; each is
evaluated with the protocol of ``unio4 train online``'s periodic evaluation (the mean action on 16
robots seeded 10000 for 10 s over the full command range, mean reward per step). The Uni-O4 runs
are ``unio4 train online --init OFFLINE --set train.eval_interval=N`` directories, whose
``metrics.jsonl`` holds the same evaluation every N iterations. Reported: scratch's mean final
evaluation, and for each Uni-O4 run the samples and wall clock (its collection + updates, plus the
offline phase's minutes) until its evaluation first reaches 90 % of it. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

import torch
import yaml

from unio4.learning.checkpoint import checkpoint_network, load_checkpoint
from unio4.learning.curves import read_history
from unio4.learning.evaluate import evaluate_policy
from unio4.learning.online.runner import OnlineConfig, build_agent
from unio4.sim.config import load_task_config
from unio4.sim.task import Go1VelocityTask

EVAL_SEED, EVAL_ENVS, EVAL_SECONDS = 10_000, 16, 10.0


def scratch_final(path: Path, task: Go1VelocityTask, steps: int) -> tuple[int, float]:
    """(samples, evaluation reward per step) of a from-scratch checkpoint."""
    state = load_checkpoint(path)
    network = checkpoint_network(state, str(path))
    actor, _ = build_agent(task, OnlineConfig(network=network) if network else OnlineConfig())
    actor.load_state_dict(state["actor"])
    return int(state["global_step"]), evaluate_policy(actor, task, steps, seed=EVAL_SEED)["reward/step"]


def reach(history: list[dict[str, float]], threshold: float) -> tuple[int | None, float]:
    """Samples at the first evaluation >= ``threshold`` and the training seconds up to it."""
    seconds = 0.0
    for row in history:
        seconds += row.get("perf/collect_s", 0.0) + row.get("perf/update_s", 0.0)
        if row.get("eval/reward/step", float("-inf")) >= threshold:
            return int(row["step"]), seconds
    return None, seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scratch", type=Path, nargs="+", required=True, help="from-scratch checkpoints at walking")
    p.add_argument("--uni-o4", type=Path, nargs="+", required=True, help="Uni-O4 online run directories")
    p.add_argument("--offline-minutes", type=float, required=True, help="wall clock of the offline phase (+ log collection)")
    p.add_argument("--fraction", type=float, default=0.9)
    p.add_argument("--out", type=Path, required=True, help="curve PNG")
    args = p.parse_args()

    task = Go1VelocityTask(load_task_config("go1_flat"), EVAL_ENVS, seed=EVAL_SEED)
    steps = int(round(EVAL_SECONDS / task.dt))
    with torch.no_grad():
        scratch = [scratch_final(path, task, steps) for path in args.scratch]
    task.close()
    final = statistics.mean(r for _, r in scratch)
    threshold = args.fraction * final
    scratch_samples = statistics.median(s for s, _ in scratch)
    print("| run | samples | evaluation reward / step |")
    print("|---|---|---|")
    for path, (walked_at, reward) in zip(args.scratch, scratch):
        print(f"| scratch {path} | {walked_at:,} | {reward:.4f} |")
    print(f"\nscratch: mean final {final:.4f}, {args.fraction:.0%} of it {threshold:.4f}, median samples to walk {scratch_samples:,.0f}\n")
    print("| Uni-O4 run | first evaluation | samples to reach | share of scratch's samples | online minutes | + offline |")
    print("|---|---|---|---|---|---|")
    rows: list[dict[str, Any]] = []
    for run in args.uni_o4:
        history = read_history(run / "metrics.jsonl")
        evals = [r for r in history if "eval/reward/step" in r]
        samples, seconds = reach(history, threshold)
        reached = samples is not None
        share = f"{samples / scratch_samples:.2f}" if samples is not None else "not reached"
        total = f"{seconds / 60 + args.offline_minutes:.1f}" if reached else "-"
        shown = f"{samples:,}" if samples is not None else "-"
        print(f"| {run} | {evals[0]['eval/reward/step']:.4f} | {shown} | {share} | {seconds / 60:.1f} | {total} |")
        curve = [(r["step"], r["eval/reward/step"]) for r in evals]
        seed = yaml.safe_load((run / "run.yaml").read_text())["configs"]["train"]["seed"]
        rows.append({"run": str(run), "seed": seed, "samples": samples, "online_seconds": seconds, "evals": curve})

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for row in rows:
        xs, ys = zip(*row["evals"])
        ax.plot([x / 1e6 for x in xs], ys, marker=".", label=f"Uni-O4, online seed {row['seed']}")
    ax.scatter([s / 1e6 for s, _ in scratch], [r for _, r in scratch], color="k", marker="x", label="PPO from scratch, at walking")
    ax.axhline(threshold, color="k", ls="--", lw=0.8, label=f"{args.fraction:.0%} of scratch's final")
    ax.set_xlabel("environment samples (M)")
    ax.set_ylabel("evaluation reward / step")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=100)
    summary = {"scratch": scratch, "threshold": threshold, "uni_o4": rows}
    args.out.with_suffix(".json").write_text(json.dumps(summary, indent=1))
    print(f"\ncurves {args.out}")


if __name__ == "__main__":
    main()
