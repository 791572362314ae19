"""What the rough-terrain curriculum would do with a policy: per level, the share of episodes that end
moving up, moving down, or in a fall, and how far the robots walked against what was commanded.

The robots start on levels ``--min-level``..``--max-level``, walk one 20 s episode each (mean action,
the task's own commands and randomisation, levels held still), and the task's curriculum rule is read
at every episode end. Used to find what held the curriculum back (docs/benchmarks/time-to-walk.md,
"Rough terrain").

Usage: .venv/bin/python scripts/bench/terrain_curriculum.py pretrained/go1_flat/checkpoint.pt --task go1_rough_well \
    --num-envs 200 [--set terrain.curriculum_rule=displacement] [--set terrain.type=flat]
"""

from __future__ import annotations

import argparse

import torch

from unio4.learning.export import checkpoint_policy
from unio4.sim.config import load_task_config
from unio4.sim.task import Go1VelocityTask
from unio4.sim.terrain import level_moves


def episode_ends(policy: torch.nn.Module, task: Go1VelocityTask, steps: int) -> dict[str, torch.Tensor]:
    """Roll ``policy`` for ``steps``; at each episode end, the robot's level and what the curriculum read."""
    ends: list[tuple[torch.Tensor, ...]] = []
    terrain = task.terrain

    def record(ids: torch.Tensor, walked: torch.Tensor, commanded: torch.Tensor, _gen: object, fell: torch.Tensor | None = None) -> None:
        fell = torch.zeros_like(walked, dtype=torch.bool) if fell is None else fell
        ends.append((terrain.levels[ids].clone(), walked.clone(), commanded.clone(), fell.clone()))

    terrain.update_curriculum = record  # type: ignore[method-assign]  # read the rule's inputs, move nobody
    obs, _ = task.reset()
    with torch.no_grad():
        for _ in range(steps):
            obs, *_ = task.step(policy(obs))
    level, walked, commanded, fell = (torch.cat([e[i] for e in ends]) for i in range(4))
    return {"level": level, "walked": walked, "commanded": commanded, "fell": fell}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint")
    p.add_argument("--task", default="go1_rough_well")
    p.add_argument("--num-envs", type=int, default=200)
    p.add_argument("--min-level", type=int, default=0)
    p.add_argument("--max-level", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="append", default=[], help="task override, e.g. terrain.curriculum_rule=displacement")
    args = p.parse_args()
    levels = [f"terrain.min_init_level={args.min_level}", f"terrain.max_init_level={args.max_level}"]
    cfg = load_task_config(args.task, levels + args.set)
    policy, _ = checkpoint_policy(args.checkpoint)
    task = Go1VelocityTask(cfg, args.num_envs, seed=args.seed)
    e = episode_ends(policy, task, int(cfg.episode_length_s / task.dt) + 10)
    task.close()
    up, down = level_moves(cfg.terrain, e["walked"], e["commanded"], e["fell"])  # displacement: fell stays all False
    print("| level | episode ends | up | down | fell | walked m | commanded m |")
    print("|---|---|---|---|---|---|---|")
    for level in e["level"].unique().tolist():
        m = e["level"] == level
        cells = [up[m], down[m], e["fell"][m]]
        shares = " | ".join(f"{100 * float(c.float().mean()):.0f} %" for c in cells)
        print(f"| {level} | {int(m.sum())} | {shares} | {float(e['walked'][m].mean()):.2f} | {float(e['commanded'][m].mean()):.2f} |")


if __name__ == "__main__":
    main()
