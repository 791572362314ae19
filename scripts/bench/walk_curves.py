"""Time-to-walk checks of several learners against environment samples, one colour per learner.

    python scripts/bench/walk_curves.py --runs unio4=RUN/seed0,RUN/seed1 rsl_rl=RSL/seed0,RSL/seed1 --out walk_peers.png

Each run directory is one seed of ``unio4 bench walk`` (its ``walk.jsonl``). Samples, not wall
clock, on the x axis: learners timed on differently loaded machines still compare.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from unio4.learning.bench.time_to_walk import WalkCriterion


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", nargs="+", required=True, help="LEARNER=DIR[,DIR...]")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    criterion = WalkCriterion()
    panels = (
        ("lin_vel_error", "lin vel error (m/s)", criterion.max_lin_vel_error),
        ("yaw_rate_error", "yaw rate error (rad/s)", criterion.max_yaw_rate_error),
        ("falls_per_robot_minute", "falls per robot-minute", criterion.max_falls_per_minute),
    )
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for colour, spec in zip(("C0", "C3", "C2", "C1"), args.runs):
        learner, dirs = spec.split("=", 1)
        for k, run in enumerate(dirs.split(",")):
            checks = [json.loads(line) for line in (Path(run) / "walk.jsonl").read_text().splitlines() if line.strip()]
            for ax, (key, _, _) in zip(axes, panels):
                xs = [c["samples"] / 1e6 for c in checks]
                ax.plot(xs, [c[key] for c in checks], color=colour, marker=".", alpha=0.8, label=learner if k == 0 else None)
    for ax, (_, label, limit) in zip(axes, panels):
        ax.axhline(limit, color="k", lw=0.8, ls="--")
        ax.set_xlabel("environment samples (M)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("time to walk, one line per seed: the walking bar dashed")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=100)
    print(f"curves {args.out}")


if __name__ == "__main__":
    main()
