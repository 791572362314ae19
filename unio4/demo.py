"""``make demo``: the CPU demo of the pipeline that exists so far.

Built-in trot -> logged trot data (HDF5) -> behaviour cloning (Uni-O4's BC stage) -> PPO
fine-tuning in the MuJoCo task, with a deterministic before/after evaluation. Later stages
(the rest of offline Uni-O4, export, deploy against the emulator, a session, replay) are added
here as they land, so the demo always shows the whole pipeline that exists.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from learning.bc import BCConfig, save_bc_checkpoint, train_bc
from learning.evaluate import evaluate_policy
from learning.online import OnlineConfig, build_agent, load_init, train_online
from sim.collect import collect, gait_policy
from sim.config import load_task_config
from sim.gait import walk
from sim.task import Go1VelocityTask
from unio4.config import load, resolve_config_path

FORWARD = ["commands.lin_vel_x=[0.4,1.0]", "commands.lin_vel_y=[0,0]", "commands.ang_vel_yaw=[0,0]"]


def run_demo(run_dir: Path, iterations: int = 60, num_envs: int = 128) -> int:
    console = Console()
    console.rule("[bold]unio4 demo (CPU)")
    cfg = load_task_config("go1_flat", FORWARD)

    console.print("[bold]1/4[/] Built-in trot controller, 10 s, 8 randomised robots")
    task = Go1VelocityTask(load_task_config("go1_flat", ["commands.lin_vel_x=[0.8,0.8]", *FORWARD[1:]]), 8, seed=0)
    trot = walk(task, 10.0)
    task.close()
    console.print(f"    trot: mean distance {trot.distance.mean():.2f} m (min {trot.distance.min():.2f} m), falls {int(trot.fell.sum())}")

    console.print("[bold]2/4[/] Logging the trot: 64 randomised robots x 8 s -> HDF5 (D4RL keys)")
    task = Go1VelocityTask(cfg, 64, seed=0)
    data = collect(task, gait_policy(task), steps=400, seed=0, show_progress=True)
    task.close()
    data.save(run_dir / "gait.h5")
    console.print(f"    {run_dir / 'gait.h5'}: {len(data)} transitions")

    console.print("[bold]3/4[/] Behaviour cloning of the logs (Uni-O4's BC stage)")
    bc_cfg = load(BCConfig, resolve_config_path("bc_go1", "train"))
    ensemble, template, history = train_bc(data, bc_cfg, cfg.action_clip, show_progress=True)
    save_bc_checkpoint(run_dir / "bc.pt", ensemble, template, bc_cfg, data)
    console.print(f"    negative log-likelihood {history[0]['nll']:.1f} -> {history[-1]['nll']:.1f}")

    console.print(f"[bold]4/4[/] PPO fine-tuning from the clone (MuJoCo, {num_envs} envs, {iterations} iterations)")
    base = load(OnlineConfig, resolve_config_path("finetune_go1", "train"), [f"iterations={iterations}", f"save_interval={iterations}"])
    init, online = load_init(run_dir / "bc.pt", base)
    env = Go1VelocityTask(cfg, num_envs, seed=0)
    eval_env = Go1VelocityTask(cfg, 32, seed=1)
    torch.manual_seed(online.seed)
    rows = {"untrained": evaluate_policy(build_agent(env, online)[0], eval_env, steps=500)}
    actor = build_agent(env, online)[0]
    actor.load_state_dict(init["actor"])
    rows["BC of the trot"] = evaluate_policy(actor, eval_env, steps=500)
    t0 = time.perf_counter()
    result = train_online(env, online, run_dir / "ppo", init=init)
    minutes = (time.perf_counter() - t0) / 60
    actor.load_state_dict(torch.load(result.checkpoint, weights_only=False)["actor"])
    rows["after PPO"] = evaluate_policy(actor, eval_env, steps=500)
    env.close()
    eval_env.close()

    table = Table(title=f"deterministic evaluation, 32 randomised envs x 10 s ({minutes:.1f} min of PPO)")
    table.add_column("metric", justify="right")
    for name in rows:
        table.add_column(name, justify="right")
    for key in ("reward/step", "reward/tracking_lin_vel", "reward/tracking_ang_vel", "terminations"):
        table.add_row(key, *(f"{r.get(key, 0.0):.5f}" for r in rows.values()))
    console.print(table)
    ppo_dir = run_dir / "ppo"
    console.print(
        f"curves: {ppo_dir / 'curves.png'}   TensorBoard: tensorboard --logdir {ppo_dir / 'tb'}   checkpoint: {result.checkpoint}"
    )
    return 0
