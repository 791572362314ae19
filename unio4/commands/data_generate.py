"""``unio4 data generate``: regenerate a D4RL-style MuJoCo dataset (SAC behaviour policies, Gymnasium tasks)."""

from __future__ import annotations

import argparse
from pathlib import Path

from unio4.commands.options import add_out, add_set, check_out_file, overrides

WORDS = ("data", "generate")
HELP = "regenerate a D4RL-style MuJoCo dataset (SAC behaviour policies, Gymnasium tasks)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--env", required=True, help="Gymnasium id, e.g. Hopper-v4, HalfCheetah-v4, Walker2d-v4")
    p.add_argument("--level", required=True, help="random | medium | medium-replay | expert | medium-expert")
    p.add_argument("--config", default="d4rl", help="preset in configs/data/ (d4rl, small, tiny) or a YAML path")
    add_set(p, "data.transitions=20000", "data")
    p.add_argument("--cache-dir", default=None, help="where the SAC policies are cached (default: runs/generate/ENV-seedN)")
    add_out(p, "HDF5 file to write", required=True)


def run(args: argparse.Namespace) -> int:
    from unio4.configs.loader import load, resolve_config_path
    from unio4.learning.data.generate import GenerateConfig, generate

    check_out_file(args.out)  # before any work
    cfg = load(GenerateConfig, resolve_config_path(args.config, "data"), overrides(args, "data"))
    workdir = Path(args.cache_dir or f"runs/generate/{args.env}-seed{cfg.seed}")
    data = generate(args.env, args.level, cfg, workdir)
    data.save(Path(args.out))
    episodes = int((data.terminals | data.timeouts).sum())
    mean_return = float(data.rewards.sum()) / max(1, episodes)
    print(f"wrote {args.out}: {len(data)} transitions, {episodes} episodes, mean episode return {mean_return:.1f}")
    return 0
