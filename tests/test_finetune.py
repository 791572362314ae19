"""The Go1 learning path on CPU: trot logs -> BC -> PPO fine-tuning improves velocity tracking."""

from __future__ import annotations

from pathlib import Path

import torch

from unio4.configs.loader import load, resolve_config_path
from unio4.learning.data.collect import collect
from unio4.learning.evaluate import evaluate_policy
from unio4.learning.offline.bc import BCConfig, save_bc_checkpoint, train_bc
from unio4.learning.online.runner import OnlineConfig, build_agent, load_init, train_online
from unio4.sim.config import FORWARD_COMMANDS, load_task_config
from unio4.sim.policies import gait_policy
from unio4.sim.task import Go1VelocityTask

EVAL_STEPS = 250  # policy steps (5 s) per evaluation of 32 robots


def test_ppo_fine_tuning_improves_go1_velocity_tracking(tmp_path: Path) -> None:
    cfg = load_task_config("go1_flat", FORWARD_COMMANDS)
    task = Go1VelocityTask(cfg, 64, seed=0)
    data = collect(task, gait_policy(task), steps=400, seed=0)
    task.close()
    assert len(data) == 64 * 400 and int(data.timeouts.sum()) == 64 and not bool(data.terminals.any())

    bc_cfg = load(BCConfig, resolve_config_path("bc_go1", "train"), ["steps=2000"])
    ensemble, template, _ = train_bc(data, bc_cfg, cfg.action_clip)
    save_bc_checkpoint(tmp_path / "bc.pt", ensemble, template, bc_cfg, data)
    base = load(OnlineConfig, resolve_config_path("finetune_go1", "train"), ["iterations=60", "save_interval=60"])
    init, online = load_init(tmp_path / "bc.pt", base)

    eval_env = Go1VelocityTask(cfg, 32, seed=1)
    env = Go1VelocityTask(cfg, 64, seed=0)  # 60 iterations of 64 robots: 92 k samples
    torch.manual_seed(0)
    scratch, _ = build_agent(env, online)
    random_init = evaluate_policy(scratch, eval_env, steps=EVAL_STEPS)
    cloned, _ = build_agent(env, online)
    cloned.load_state_dict(init["actor"])
    before = evaluate_policy(cloned, eval_env, steps=EVAL_STEPS)
    result = train_online(env, online, tmp_path / "ppo", init=init, show_progress=False)
    tuned, _ = build_agent(env, online)
    tuned.load_state_dict(torch.load(result.checkpoint, weights_only=True)["actor"])
    after = evaluate_policy(tuned, eval_env, steps=EVAL_STEPS)
    env.close()
    eval_env.close()

    key = "reward/tracking_lin_vel"  # weight 1 x dt 0.02: 0.02 per step is perfect tracking
    print(f"tracking per step: untrained {random_init[key]:.4f}, cloned {before[key]:.4f}, fine-tuned {after[key]:.4f}")
    # The clone of the trot walks: far better tracking than an untrained policy.
    assert before[key] > 2.0 * random_init[key], (random_init, before)
    # PPO improves on it, without falls: 0.0120 -> 0.0176 with 64 robots (0.0125 -> 0.0184 with 128; in 40
    # iterations of 128 one of the 32 robots fell, in 60 none).
    assert after[key] > before[key] + 0.002, (before, after)
    assert after["terminations"] == 0, (before, after)
