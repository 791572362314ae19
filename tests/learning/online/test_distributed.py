"""Data-parallel PPO: 2 gloo ranks with N environments each update like 1 process with 2N."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from unio4.learning.online.distributed import DistContext, exit_process
from unio4.learning.online.ppo import PPO, PPOConfig, RolloutBuffer
from unio4.learning.policy import GaussianActor, NetworkConfig, ValueCritic

NET = NetworkConfig(actor_hidden=(32, 32), critic_hidden=(32, 32), init_std=0.5)


CFG = PPOConfig(num_steps=16, epochs=3, num_minibatches=1, lr_schedule="adaptive", desired_kl=0.001, actor_lr=1e-3)


STEPS, ENVS, OBS, ACT = 16, 8, 4, 2  # ENVS in total: each of the two ranks holds half


def filled_buffer(envs: slice) -> RolloutBuffer:
    """A deterministic rollout of ``ENVS`` environments; ``envs`` picks this rank's columns."""
    g = torch.Generator().manual_seed(0)
    obs = torch.randn(STEPS, ENVS, OBS, generator=g)
    actions = torch.randn(STEPS, ENVS, ACT, generator=g)
    rewards = torch.randn(STEPS, ENVS, generator=g)
    dones = torch.rand(STEPS, ENVS, generator=g) < 0.1
    torch.manual_seed(0)
    actor, critic = GaussianActor(OBS, ACT, 1.0, NET), ValueCritic(OBS, NET)
    n = envs.stop - envs.start
    buffer = RolloutBuffer(STEPS, n, OBS, OBS, ACT)
    with torch.no_grad():
        for t in range(STEPS):
            o, a = obs[t, envs], actions[t, envs]
            buffer.add(o, o, a, actor.log_prob(o, a), critic(o), rewards[t, envs], dones[t, envs])
        buffer.compute_returns(critic(obs[-1, envs]), 0.99, 0.95)
    return buffer


def update(ctx: DistContext, envs: slice) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    actor, critic = GaussianActor(OBS, ACT, 1.0, NET), ValueCritic(OBS, NET)
    ppo = PPO(actor, critic, CFG, seed=0, ctx=ctx)
    for _ in range(2):  # two updates: the second uses the KL-adapted learning rate
        ppo.update(filled_buffer(envs))
    return {f"actor.{k}": v.clone() for k, v in actor.state_dict().items()} | {
        f"critic.{k}": v.clone() for k, v in critic.state_dict().items()
    }


def rank_main(rank: int, init_file: str, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    half, ctx = ENVS // 2, DistContext(rank, 2, rank)
    params = update(ctx, slice(rank * half, (rank + 1) * half))
    torch.save(params, f"{out}.{rank}")
    dist.destroy_process_group()
    exit_process(ctx, 0)  # gloo's threads can abort the interpreter's teardown, as in a training process


def test_two_gloo_ranks_match_one_process_with_both_batches(tmp_path: Path) -> None:
    single = update(DistContext(), slice(0, ENVS))
    mp.spawn(rank_main, args=(str(tmp_path / "init"), str(tmp_path / "params")), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"params.{r}") for r in range(2)]
    for key, value in single.items():
        assert torch.equal(ranks[0][key], ranks[1][key]), f"ranks diverged at {key}"
        assert torch.allclose(ranks[0][key], value, atol=1e-5), key
    half_only = update(DistContext(), slice(0, ENVS // 2))
    assert any(
        not torch.allclose(v, half_only[k], atol=1e-5) for k, v in single.items()
    )  # half the data alone gives a different update: the other rank's batch mattered


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_torchrun_two_processes_train_online(tmp_path: Path) -> None:
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).parent / "torchrun")
    if not Path(torchrun).exists():
        pytest.fail("torchrun not found next to the Python interpreter")
    cmd = [torchrun, "--nproc_per_node", "2", "--master_addr", "127.0.0.1", "--master_port", str(free_port())]
    cmd += ["-m", "unio4.cli", "train", "online", "--env", "Pendulum-v1", "--num-envs", "2", "--iterations", "2"]
    cmd += ["--config", "ppo_go1", "--out", str(tmp_path), "--set", "train.ppo.num_steps=32", "--set", "train.save_interval=1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2 * 2 * 32, 2 * 2 * 2 * 32]  # rank 0 alone logs; steps count both ranks
    assert (tmp_path / "checkpoints" / "final.pt").is_file()
    assert result.stdout.count("done: final reward/step") == 1
