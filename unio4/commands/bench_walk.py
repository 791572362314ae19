"""``unio4 bench walk``: samples and wall clock until PPO from scratch walks (``--well``: walks well), over seeds."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unio4.commands.options import add_logger, add_out, add_set, console, overrides

if TYPE_CHECKING:
    from rich.table import Table

    from unio4.learning.bench.time_to_walk import WalkCriterion, WalkResult

WORDS = ("bench", "walk")
HELP = "time to walk: PPO from scratch until the mean action tracks commands without falling (seeds, table, curve)"
LEARNERS = ("unio4", "rsl_rl")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", default="go1_flat", help="task preset in configs/task/ or a YAML path")
    p.add_argument("--config", default="ppo_go1", help="training preset in configs/train/ or a YAML path")
    add_set(p, "task.commands.curriculum=false", "task", "train")
    p.add_argument(
        "--learner",
        choices=LEARNERS,
        default="unio4",
        help="whose PPO learns: unio4's, or rsl_rl's (pip install 'unio4[peers]') with the same preset's settings",
    )
    p.add_argument("--num-envs", type=int, default=256, help="training robots")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--max-samples", type=float, default=8e6, help="give up after this many samples per seed")
    p.add_argument("--check-every", type=float, default=2e5, help="samples between walking checks")
    p.add_argument("--threads", type=int, default=None, help="physics threads and torch threads (default: the cores this process may use)")
    p.add_argument("--keep-training", action="store_true", help="train to --max-samples even after walking (for curves)")
    p.add_argument(
        "--well",
        action="store_true",
        help="time to walk well: the stricter criterion (tracking 0.10 m/s and 0.15 rad/s, no body contact, "
        "swing apex >= 4 cm, torque at the limit <= 1 %% of steps; docs/benchmarks/time-to-walk.md)",
    )
    p.add_argument(
        "--judge-task",
        default=None,
        help="task preset or YAML the checks run on (commands, randomisation, pushes), so that the exam does not move "
        "with what a run trains on (default: the training task, --set included)",
    )
    add_out(p, "one run dir per seed, summary.json and walk.png here", default="runs/bench_walk")
    add_logger(p)


def run(args: argparse.Namespace) -> int:
    import torch

    from unio4.configs.loader import load, resolve_config_path
    from unio4.learning.bench.time_to_walk import WalkCriterion
    from unio4.learning.bench.walk_bench import WalkBench, walk_learner
    from unio4.learning.loggers import check_logger
    from unio4.learning.online.runner import OnlineConfig

    check_logger(args.logger)  # a missing package: one line, before any work
    learn = walk_learner(args.learner)
    from unio4.sim.config import load_task_config

    if args.threads:
        torch.set_num_threads(args.threads)
    task_cfg = load_task_config(args.task, overrides(args, "task"))
    train_cfg = load(OnlineConfig, resolve_config_path(args.config, "train"), overrides(args, "train"))
    bench = WalkBench(
        task_cfg, train_cfg, Path(args.out), args.num_envs, int(args.max_samples), int(args.check_every),
        learner=args.learner, stop_when_walking=not args.keep_training, num_threads=args.threads, logger=args.logger,
        criterion=WalkCriterion.walks_well() if args.well else WalkCriterion(),
        judge_task_cfg=load_task_config(args.judge_task) if args.judge_task else None,
    )  # fmt: skip
    goal = bench.criterion.name
    results = {}
    for seed in args.seeds:
        what = "" if goal == "walk" else f" (time to {goal})"
        budget = f"at most {args.max_samples:.3g} samples{what}"
        print(f"bench walk: {args.learner} PPO, seed {seed}, {args.num_envs} robots, {budget}", flush=True)
        results[seed] = learn(bench.run(seed))
    console().print(walk_table(results, args, bench.criterion))
    png = bench.write(results)
    walked = sum(r.walked for r in results.values())
    print(f"{goal.replace('walk', 'walked', 1)} in {walked} of {len(results)} seeds; summary {bench.root / 'summary.json'}, curves {png}")
    return 0 if walked == len(results) else 1


# the gait numbers of a "walk well" check in the table: header, key under the row's "gait", format
GAIT_COLUMNS = (
    ("apex m", "swing_apex", ".3f"),
    ("body hits/min", "body_contacts_per_minute", ".1f"),
    ("|tau|>lim", "torque_saturation", ".3f"),  # the header names the criterion's torque fraction
)


def walk_table(results: dict[int, WalkResult], args: argparse.Namespace, criterion: WalkCriterion | None = None) -> Table:
    """One row per seed: whether and when it walked, and the tracking of the check that walked (or the last).

    A criterion with gait bounds ("walk well") adds the gait numbers of that check and the bars it failed;
    the title names the criterion.
    """
    from rich.table import Table

    gait = criterion is not None and criterion.checks_gait
    goal = "" if criterion is None or criterion.name == "walk" else f", time to {criterion.name}"
    table = Table(title=f"unio4 bench walk ({args.learner} PPO, {args.task}, {args.config}, {args.num_envs} robots{goal})")
    columns = ["seed", "walks", "samples", "train wall clock", "samples/s", "lin vel error", "yaw rate error", "falls/min"]
    headers = [c[0] for c in GAIT_COLUMNS]
    if criterion is not None:
        headers[-1] = f"|tau|>{criterion.torque_fraction:.0%} lim"
    for col in columns + ([*headers, "failed"] if gait else []):
        table.add_column(col, justify="right")
    for seed, r in results.items():
        last = next((c for c in r.checks if c["walks"]), r.checks[-1] if r.checks else {})
        cells = [
            str(seed),
            "yes" if r.walked else "no",
            f"{r.samples:,}",
            f"{r.train_seconds / 60:.1f} min",
            f"{r.samples / max(r.train_seconds, 1e-9):,.0f}",
            f"{last.get('lin_vel_error', float('nan')):.3f}",
            f"{last.get('yaw_rate_error', float('nan')):.3f}",
            f"{last.get('falls_per_robot_minute', float('nan')):.2f}",
        ]
        table.add_row(*cells, *(gait_cells(last) if gait else []))
    return table


def gait_cells(check: dict[str, Any]) -> list[str]:
    """A check's gait numbers (n/a: not measured) and its failed bars, for the table."""
    numbers = check.get("gait") or {}
    cells = ["n/a" if numbers.get(key) is None else format(numbers[key], spec) for _, key, spec in GAIT_COLUMNS]
    return [*cells, ", ".join(check.get("failed", [])) or "-"]
