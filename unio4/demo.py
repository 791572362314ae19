"""``make demo``: the CPU demo. For now: the built-in trot, then a short PPO run on the Go1 task.

Later stages (offline Uni-O4 on the trot's logs, export, deploy against the emulator, a session,
replay) are added here as they land, so the demo always shows the whole pipeline that exists.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from learning.evaluate import evaluate_policy
from learning.online import OnlineConfig, build_agent, train_online
from sim.config import load_task_config, resolve_config_path
from sim.gait import walk
from sim.task import Go1VelocityTask
from unio4.config import load

FORWARD = ["commands.lin_vel_x=[0.4,1.0]", "commands.lin_vel_y=[0,0]", "commands.ang_vel_yaw=[0,0]"]


def run_demo(run_dir: Path, iterations: int = 30, num_envs: int = 128) -> int:
    console = Console()
    console.rule("[bold]unio4 demo (CPU)")
    cfg = load_task_config("go1_flat", FORWARD)

    console.print("[bold]1/2[/] Built-in trot controller, 10 s, 8 randomised robots")
    task = Go1VelocityTask(load_task_config("go1_flat", ["commands.lin_vel_x=[0.8,0.8]", *FORWARD[1:]]), 8, seed=0)
    trot = walk(task, 10.0)
    distance, falls = trot.distance, int(trot.fell.sum())
    task.close()
    console.print(f"    trot: mean distance {distance.mean():.2f} m (min {distance.min():.2f} m), falls {falls}")

    console.print(f"[bold]2/2[/] PPO on the Go1 task (MuJoCo, {num_envs} envs, {iterations} iterations)")
    online = load(OnlineConfig, resolve_config_path("ppo_go1", "train"), [f"iterations={iterations}", f"save_interval={iterations}"])
    env = Go1VelocityTask(cfg, num_envs, seed=0)
    eval_env = Go1VelocityTask(cfg, 32, seed=1)
    torch.manual_seed(online.seed)
    before = evaluate_policy(build_agent(env, online)[0], eval_env, steps=150)
    t0 = time.perf_counter()
    result = train_online(env, online, run_dir)
    minutes = (time.perf_counter() - t0) / 60
    actor = build_agent(env, online)[0]
    actor.load_state_dict(torch.load(result.checkpoint, weights_only=False)["actor"])
    after = evaluate_policy(actor, eval_env, steps=150)
    env.close()
    eval_env.close()

    table = Table(title=f"deterministic evaluation, 32 envs x 3 s ({minutes:.1f} min of training)")
    for col in ("metric", "initial policy", "after PPO"):
        table.add_column(col, justify="right")
    for key in ("reward/step", "reward/tracking_lin_vel", "reward/tracking_ang_vel", "terminations"):
        table.add_row(key, f"{before.get(key, 0.0):.5f}", f"{after.get(key, 0.0):.5f}")
    console.print(table)
    console.print(
        f"curves: {run_dir / 'curves.png'}   TensorBoard: tensorboard --logdir {run_dir / 'tb'}   checkpoint: {result.checkpoint}"
    )
    return 0
