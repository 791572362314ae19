"""``unio4 bench learning``: offline-phase throughput per stage; batched vs sequential BC ensemble."""

from __future__ import annotations

import argparse
import dataclasses

from unio4.commands.options import add_set, add_threads, apply_threads, console, overrides

WORDS = ("bench", "learning")
HELP = "offline-phase throughput per stage; batched vs sequential BC ensemble"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default="uni_o4_offline", help="offline preset in configs/train/ or a YAML path (without a GPU: on the CPU)")
    add_set(p, "train.bc.members=8", "train")
    p.add_argument("--data", default=None, help="a dataset file (default: synthetic, see --shape)")
    p.add_argument("--shape", default="17,6", metavar="OBS,ACT", help="synthetic dataset dimensions (default: Walker2d's)")
    p.add_argument("--transitions", type=int, default=100_000)
    p.add_argument("--steps", type=int, default=50, help="timed gradient steps per stage")
    add_threads(p)


def run(args: argparse.Namespace) -> int:
    import torch
    from rich.table import Table

    from unio4.configs.loader import load, resolve_config_path
    from unio4.learning.bench.stage_speed import bench_learning, synthetic_dataset
    from unio4.learning.data.dataset import load_dataset
    from unio4.learning.offline.pipeline import OfflineConfig

    apply_threads(args)
    cfg = load(OfflineConfig, resolve_config_path(args.config, "train"), overrides(args, "train"))
    if cfg.device.startswith("cuda") and not torch.cuda.is_available():  # the authors' sizes, timed on this CPU
        cfg = dataclasses.replace(cfg, device="cpu")
    if args.data:
        data = load_dataset(args.data)
    else:
        obs_dim, act_dim = (int(x) for x in args.shape.split(","))
        data = synthetic_dataset(args.transitions, obs_dim, act_dim)
    r = bench_learning(data, cfg, args.steps)
    table = Table(title=f"unio4 bench learning ({args.config}, {len(data)} transitions, {torch.get_num_threads()} threads, {cfg.device})")
    table.add_column("stage")
    table.add_column("gradient steps/s", justify="right")
    c = cfg.critics
    table.add_row(f"critics ({c.mode}, Q {list(c.q_hidden)}, batch {c.batch_size}, {c.precision})", f"{r.critic_steps_per_s:,.1f}")
    table.add_row(f"BC ensemble, batched ({cfg.bc.members} members)", f"{r.bc_batched_steps_per_s:,.1f}")
    table.add_row(f"BC ensemble, batched, {cfg.bc.regularizer} regulariser", f"{r.bc_regularized_steps_per_s:,.1f}")
    table.add_row(f"BC, {cfg.bc.members} members one after another", f"{r.bc_sequential_steps_per_s:,.1f}")
    table.add_row(f"policy improvement ({cfg.bc.members} members)", f"{r.improvement_steps_per_s:,.1f}")
    console().print(table)
    print(f"batched ensemble speed-up over sequential members: {r.ensemble_speedup:.2f}x")
    print(
        f"dynamics ensemble ({cfg.dynamics.precision}): {r.dynamics_epoch_s:.2f} s per epoch; "
        f"one AM-Q evaluation (horizon {cfg.ope.horizon}): {r.ope_eval_s:.2f} s"
    )
    return 0
