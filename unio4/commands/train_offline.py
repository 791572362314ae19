"""``unio4 train offline``: Uni-O4 offline: critics, BC ensemble, dynamics + OPE, multi-step improvement."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unio4.commands.options import add_logger, add_out, add_set, add_threads, apply_threads, check_device, overrides

if TYPE_CHECKING:
    from unio4.learning.offline.env_scores import Go1Scores, GymScores
    from unio4.learning.offline.pipeline import OfflineConfig

WORDS = ("train", "offline")
HELP = "Uni-O4 offline: critics, BC ensemble, dynamics + OPE, multi-step improvement"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data",
        required=True,
        help="HDF5 dataset (D4RL/Minari-style, unio4 collect/data generate/data pack), or minari:NAME (local Minari root)",
    )
    p.add_argument(
        "--config",
        default=None,
        help="preset in configs/train/ or a YAML path (default: uni_o4_offline, the authors' sizes, on a GPU; "
        "uni_o4_offline_cpu without one)",
    )
    add_set(p, "train.improvement.steps=2000", "train")
    add_out(p, "run directory: checkpoints, TensorBoard, curves (default: a new runs/offline/DATE_NAME)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoints/offline_state.pt")
    p.add_argument("--env", default=None, help="Gymnasium id: evaluate the result (and candidates with selection: online)")
    p.add_argument("--eval-episodes", type=int, default=10)
    p.add_argument(
        "--sim-eval",
        action="store_true",
        help="Go1 logs: score every candidate policy in the Go1 task the data was logged with (mean action, reward per step)",
    )
    p.add_argument("--eval-envs", type=int, default=32, help="--sim-eval: robots")
    p.add_argument("--eval-seconds", type=float, default=10.0, help="--sim-eval: seconds from a seeded reset")
    p.add_argument(
        "--reuse",
        default=None,
        help="an earlier offline run dir: take its finished stages whose settings, seed and dataset match (ablations)",
    )
    add_threads(p)
    add_logger(p)


def run(args: argparse.Namespace) -> int:
    from unio4.learning.data.dataset import load_dataset
    from unio4.learning.loggers import LoggerSpec, check_logger
    from unio4.learning.offline.env_scores import evaluate_result
    from unio4.learning.offline.pipeline import train_offline
    from unio4.learning.run_dir import prepare_run_dir

    check_logger(args.logger)  # a missing package: one line, before any work
    apply_threads(args)
    cfg = train_config(args)
    if args.env:
        from unio4.learning.online.gym_env import check_env_id

        check_env_id(args.env)
    data = load_dataset(args.data)
    name = Path(args.data.removeprefix("minari:")).stem
    run_dir = prepare_run_dir(args.out, "offline", name, args.resume, "checkpoints/offline_state.pt", {"train": cfg})
    scores = env_scores(args, cfg, data.metadata.get("task_config"))
    reuse = reused_state(args.reuse)
    tracker = LoggerSpec(args.logger, {"train": cfg}, run_dir.name, "train offline")
    result = train_offline(data, cfg, run_dir, resume=args.resume, online_scorer=scores, reuse=reuse, tracker=tracker)
    print(f"selected member {result.member} by {'OPE' if cfg.selection == 'ope' else 'OPE top-k + online returns'}")
    for i, (start, best, acc) in enumerate(zip(result.ope_initial, result.ope_best, result.accepted)):
        print(f"  member {i}: OPE {start:.3f} (BC) -> {best:.3f}, {acc} accepted improvement(s)")
    if scores is not None:
        evaluate_result(scores, result, run_dir)
    print(f"wrote {result.checkpoint} (init for: unio4 train online --init {result.checkpoint})")
    return 0


def train_config(args: argparse.Namespace) -> OfflineConfig:
    """The preset (the GPU-sized one when torch sees a GPU) with ``--set train.*``; refuses a device this machine lacks."""
    import torch

    from unio4.configs.loader import load, resolve_config_path
    from unio4.learning.offline.pipeline import OfflineConfig

    preset = args.config or ("uni_o4_offline" if torch.cuda.is_available() else "uni_o4_offline_cpu")
    if args.config is None:
        print(f"train offline: preset {preset} ({'a GPU is available' if torch.cuda.is_available() else 'no GPU: the CPU-sized preset'})")
    cfg = load(OfflineConfig, resolve_config_path(preset, "train"), overrides(args, "train"))
    asked = any(s.split("=", 1)[0].strip() == "device" for s in overrides(args, "train"))  # --set train.device=...: named below
    if cfg.device.startswith("cuda") and not torch.cuda.is_available() and not asked:
        raise ValueError(
            f"preset {preset} runs on {cfg.device} and there is no GPU here; use --config uni_o4_offline_cpu (or --set train.device=cpu)"
        )
    check_device(cfg.device, "train.device")
    from dataclasses import replace

    from unio4.learning.offline.bc import with_init_network

    return replace(cfg, bc=with_init_network(cfg.bc))  # a bad bc.init fails before the run directory exists


def env_scores(args: argparse.Namespace, cfg: OfflineConfig, task_config: dict[str, Any] | None) -> GymScores | Go1Scores | None:
    """Where candidates and the result are scored: the Gymnasium task of ``--env``, the Go1 task of the logs
    (``--sim-eval``), or nowhere."""
    from unio4.learning.offline.env_scores import GymScores, go1_scores

    if cfg.selection == "online" and not (args.env or args.sim_eval):
        raise ValueError("selection 'online' evaluates candidates in a real environment: pass --env (or --sim-eval for Go1 logs)")
    if args.env and args.sim_eval:
        raise ValueError("--env (a Gymnasium task) and --sim-eval (the Go1 task of the logs) exclude each other")
    if args.env:  # scores candidates for the online selection, and OPE's rank correlation with the truth (diagnostics.json)
        return GymScores(args.env, cfg.online_episodes, args.eval_episodes)
    if args.sim_eval:
        return go1_scores(task_config, args.data, args.eval_envs, args.eval_seconds)
    return None


def reused_state(reuse: str | None) -> Path | None:
    """``--reuse``'s ``checkpoints/offline_state.pt``, refused before any training when it is not there."""
    if not reuse:
        return None
    path = Path(reuse) / "checkpoints" / "offline_state.pt"
    if not path.is_file():
        raise FileNotFoundError(f"--reuse {reuse}: no checkpoints/offline_state.pt there")
    return path
