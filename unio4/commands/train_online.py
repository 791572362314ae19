"""``unio4 train online``: PPO (from scratch, or Uni-O4 fine-tuning) on the Go1 task or a Gymnasium task."""

from __future__ import annotations

import argparse
from pathlib import Path

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
    add_threads(p)
    add_logger(p)


def run(args: argparse.Namespace) -> int:
    from unio4.configs.loader import load, resolve_config_path, to_dict
    from unio4.learning.distributed import init_from_env, shutdown
    from unio4.learning.loggers import LoggerSpec, check_logger
    from unio4.learning.online import OnlineConfig, VectorEnv, load_init, train_online
    from unio4.learning.run_dir import prepare_run_dir

    check_logger(args.logger)  # a missing package: one line, before any work
    apply_threads(args)
    ctx = init_from_env()  # under torchrun: this process's rank; each rank steps its own environments

    train_sets = [*overrides(args, "train"), *([f"iterations={args.iterations}"] if args.iterations is not None else [])]
    if not any(s.split("=", 1)[0].strip() == "seed" for s in train_sets):  # --seed seeds the learner too, not only the robots
        train_sets.insert(0, f"seed={args.seed}")
    cfg = load(OnlineConfig, resolve_config_path(args.config or ("uni_o4_online" if args.env else "ppo_go1"), "train"), train_sets)
    check_device(cfg.device, "train.device")  # before a run directory or a simulator exists
    if args.env:
        from unio4.learning.gym_env import check_env_id

        check_env_id(args.env)
    init = None
    if args.init:
        init, cfg = load_init(args.init, cfg)
    name = args.env or args.task
    configs: dict[str, object] = {"train": cfg}
    if not args.env:
        from unio4.sim.config import load_task_config

        configs["task"] = load_task_config(args.task, overrides(args, "task"))
    if ctx.is_main:  # rank 0 creates, checks and records the run
        run_dir = prepare_run_dir(args.out, "online", Path(str(name)).stem, args.resume, "checkpoints/latest.pt", configs)
    elif args.out is None:
        raise ValueError("under torchrun, pass --out (every rank must agree on it)")
    else:
        run_dir = Path(args.out)
    tracker = LoggerSpec(args.logger, configs, run_dir.name, "train online")
    env: VectorEnv
    if args.env:  # a Gymnasium task
        from unio4.learning.evaluate import evaluate_gym
        from unio4.learning.gym_env import GymVectorEnv

        num_envs = args.num_envs or 1
        env = GymVectorEnv(args.env, num_envs, seed=args.seed + ctx.rank * num_envs)
        extra = {"env": args.env, "init": str(args.init) if args.init else None}
        result = train_online(
            env, cfg, run_dir, resume=args.resume, init=init, extra_state=extra, ctx=ctx, tracker=tracker,
            evaluator=lambda actor: evaluate_gym(actor, args.env, args.eval_episodes, seed=10_000),
        )  # fmt: skip
    else:  # the Go1 task
        from unio4.sim.config import load_task_config
        from unio4.sim.task import Go1VelocityTask

        task_cfg = load_task_config(args.task, overrides(args, "task"))
        num_envs = args.num_envs or GO1_ENVS
        from unio4.learning.online import rank_device

        device = rank_device(cfg.device, ctx)  # the task lives where the networks do
        seed = args.seed + ctx.rank * num_envs
        # from scratch, the command curriculum (when the task configures one) applies; a pretrained policy gets the full ranges
        env = Go1VelocityTask(task_cfg, num_envs, backend=args.backend, seed=seed, device=device, training=args.init is None)
        extra = {"task_config": to_dict(task_cfg), "backend": args.backend, "init": str(args.init) if args.init else None}
        evaluator = eval_task = None
        if cfg.eval_interval and ctx.is_main:  # the mean action on its own robots: same commands, pushes and dynamics every time
            from unio4.learning.evaluate import evaluate_policy

            eval_task = Go1VelocityTask(task_cfg, args.eval_envs, backend=args.backend, seed=10_000, device=device)
            eval_steps = int(round(args.eval_seconds / eval_task.dt))

            def evaluator(actor):  # type: ignore[no-untyped-def]
                return evaluate_policy(actor, eval_task, eval_steps, seed=10_000)

        result = train_online(
            env, cfg, run_dir, resume=args.resume, init=init, extra_state=extra, ctx=ctx, evaluator=evaluator, tracker=tracker
        )
        if eval_task is not None:
            eval_task.close()
    env.close()  # type: ignore[attr-defined]
    shutdown(ctx)
    if not ctx.is_main:
        return 0
    last = next((row for row in reversed(result.history) if "reward/step" in row), {})
    evals = [row for row in result.history if "eval/return" in row]
    if evals:
        print(f"evaluation return: first {evals[0]['eval/return']:.1f}, last {evals[-1]['eval/return']:.1f}")
    evals = [row for row in result.history if "eval/reward/step" in row]
    if evals:
        print(f"evaluation reward/step: first {evals[0]['eval/reward/step']:+.4f}, last {evals[-1]['eval/reward/step']:+.4f}")
    print(
        f"done: final reward/step {last.get('reward/step', float('nan')):+.4f}, "
        f"checkpoint {result.checkpoint}, curves {run_dir / 'curves.png'}{logger_line(args.logger, run_dir)}"
    )
    return 0
