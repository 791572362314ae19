"""``unio4 train online``: PPO (from scratch, or Uni-O4 fine-tuning) on the Go1 task or a Gymnasium task."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from unio4.commands.options import (
    add_logger,
    add_out,
    add_task_args,
    add_threads,
    apply_threads,
    check_device,
    logger_line,
    overrides,
)

if TYPE_CHECKING:
    from unio4.learning.data.dataset import Dataset
    from unio4.learning.online.distributed import DistContext
    from unio4.learning.online.envs import OnlineEnvs
    from unio4.learning.online.runner import OnlineConfig, TrainResult
    from unio4.sim.config import TaskConfig

WORDS = ("train", "online")
GO1_ENVS = 256  # robots of a Go1 run: with ppo_go1's iterations, the budget in which PPO from scratch walks
HELP = "PPO (from scratch, or Uni-O4 fine-tuning) on the Go1 task or a Gymnasium task"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_task_args(p, "train", num_envs=None, num_envs_help=f"parallel robots (default: {GO1_ENVS} on the Go1 task, 1 with --env)")
    p.add_argument("--env", default=None, help="a Gymnasium id (e.g. Hopper-v4) instead of the Go1 task")
    p.add_argument("--eval-episodes", type=int, default=5, help="with --env: episodes per evaluation")
    p.add_argument("--eval-envs", type=int, default=16, help="Go1 task: robots per evaluation (with eval_interval > 0)")
    p.add_argument("--eval-seconds", type=float, default=10.0, help="Go1 task: seconds per evaluation")
    p.add_argument("--config", default=None, help="preset in configs/train/ or a YAML path (default: ppo_go1, or uni_o4_online with --env)")
    p.add_argument("--iterations", type=int, default=None, help="PPO updates (overrides the config)")
    add_out(p, "run directory: checkpoints, TensorBoard, curves (default: a new runs/online/DATE_NAME)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoints/latest.pt")
    p.add_argument("--init", default=None, help="start from this checkpoint's actor (and critic): BC/offline, online, or a bundle's")
    p.add_argument(
        "--data",
        default=None,
        help="the offline dataset (HDF5, D4RL/Minari-style, or minari:NAME) that --set train.critic_init=refit fits a fresh V to; "
        "unused otherwise",
    )
    add_threads(p)
    add_logger(p)


def run(args: argparse.Namespace) -> int:
    from unio4.learning.loggers import LoggerSpec, check_logger
    from unio4.learning.online.distributed import exit_process, init_from_env, shutdown
    from unio4.learning.online.runner import load_init, train_online

    check_logger(args.logger)  # a missing package: one line, before any work
    apply_threads(args)
    ctx = init_from_env()  # under torchrun: this process's rank; each rank steps its own environments
    cfg = train_config(args)
    check_device(cfg.device, "train.device")  # before a run directory or a simulator exists
    refit_data = refit_dataset(args, cfg.critic_init)
    if args.env:
        from unio4.learning.online.gym_env import check_env_id

        check_env_id(args.env)
    init = None
    if args.init:
        init, cfg = load_init(args.init, cfg)
    task_cfg = None if args.env else task_config(args)
    configs: dict[str, object] = {"train": cfg} | ({"task": task_cfg} if task_cfg is not None else {})
    run_dir = online_run_dir(args, ctx.is_main, configs)
    tracker = LoggerSpec(args.logger, configs, run_dir.name, "train online")
    envs = online_envs(args, cfg, ctx, task_cfg)
    result = train_online(
        envs.env,
        cfg,
        run_dir,
        resume=args.resume,
        init=init,
        extra_state=envs.extra_state,
        ctx=ctx,
        evaluator=envs.evaluator,
        tracker=tracker,
        refit_data=refit_data,
    )
    envs.close()
    shutdown(ctx)
    if ctx.is_main:
        print_summary(result, run_dir, args.logger)
    return exit_process(ctx, 0)


def train_config(args: argparse.Namespace) -> OnlineConfig:
    """The training preset with ``--set train.*`` and ``--iterations``; ``--seed`` seeds the learner too, not only the robots."""
    from unio4.configs.loader import load, resolve_config_path
    from unio4.learning.online.runner import OnlineConfig

    train_sets = [*overrides(args, "train"), *([f"iterations={args.iterations}"] if args.iterations is not None else [])]
    if not any(s.split("=", 1)[0].strip() == "seed" for s in train_sets):
        train_sets.insert(0, f"seed={args.seed}")
    return load(OnlineConfig, resolve_config_path(args.config or ("uni_o4_online" if args.env else "ppo_go1"), "train"), train_sets)


def refit_dataset(args: argparse.Namespace, critic_init: str) -> Dataset | None:
    """``--data`` when ``critic_init: refit`` fits V to it (an error without it); None otherwise (``--data`` unused)."""
    if critic_init != "refit":
        if args.data:
            print(f"train online: --data {args.data} unused (only train.critic_init=refit reads it)")
        return None
    if not args.data:
        raise ValueError("train.critic_init=refit fits V to the offline dataset's returns: pass it with --data FILE.h5")
    from unio4.learning.data.dataset import load_dataset

    return load_dataset(args.data)


def task_config(args: argparse.Namespace) -> TaskConfig:
    """The Go1 task: the preset of ``--task`` with ``--set task.*``."""
    from unio4.sim.config import load_task_config

    return load_task_config(args.task, overrides(args, "task"))


def online_envs(args: argparse.Namespace, cfg: OnlineConfig, ctx: DistContext, task_cfg: TaskConfig | None) -> OnlineEnvs:
    """This rank's environments and the evaluator: the Gymnasium task of ``--env``, else the Go1 task of ``task_cfg``."""
    from unio4.learning.online.envs import go1_envs, gym_envs

    if task_cfg is None:  # --env: a Gymnasium task
        return gym_envs(args.env, args.num_envs or 1, args.seed, ctx, args.eval_episodes, args.init)
    return go1_envs(
        task_cfg, cfg, ctx, args.num_envs or GO1_ENVS,
        backend=args.backend, seed=args.seed, init=args.init, eval_envs=args.eval_envs, eval_seconds=args.eval_seconds,
    )  # fmt: skip


def online_run_dir(args: argparse.Namespace, is_main: bool, configs: dict[str, object]) -> Path:
    """Rank 0 creates, checks and records the run directory; under torchrun the other ranks take ``--out`` as it is."""
    from unio4.learning.run_dir import prepare_run_dir

    if is_main:
        name = Path(str(args.env or args.task)).stem
        return prepare_run_dir(args.out, "online", name, args.resume, "checkpoints/latest.pt", configs)
    if args.out is None:
        raise ValueError("under torchrun, pass --out (every rank must agree on it)")
    return Path(args.out)


def print_summary(result: TrainResult, run_dir: Path, logger: str) -> None:
    """The first and last evaluation, the final reward per step and where the run went."""
    last = next((row for row in reversed(result.history) if "reward/step" in row), {})
    evals = [row for row in result.history if "eval/return" in row]
    if evals:
        print(f"evaluation return: first {evals[0]['eval/return']:.1f}, last {evals[-1]['eval/return']:.1f}")
    evals = [row for row in result.history if "eval/reward/step" in row]
    if evals:
        print(f"evaluation reward/step: first {evals[0]['eval/reward/step']:+.4f}, last {evals[-1]['eval/reward/step']:+.4f}")
    print(
        f"done: final reward/step {last.get('reward/step', float('nan')):+.4f}, "
        f"checkpoint {result.checkpoint}, curves {run_dir / 'curves.png'}{logger_line(logger, run_dir)}"
    )
