"""Peer baselines for the D4RL-style benchmarks: d3rlpy's IQL and TD3+BC on the SAME dataset file.

Their numbers are the IQL columns of ``docs/benchmarks/uni-o4-vs-iql.md`` (every 3-seed row), the IQL and TD3+BC
columns of ``docs/benchmarks/uni-o4-parts.md``, "Uni-O4 on regenerated D4RL-style data (CPU-scaled)", and the d3rlpy
row of ``docs/benchmarks/offline-throughput.md``, "Critic throughput against d3rlpy's IQL" (``--time-only``).

d3rlpy is a comparison tool, not a dependency of unio4: run this in its own virtual environment
(see ``scripts/bench/README.md``). It reads unio4's HDF5 (D4RL keys) with h5py only, trains with
d3rlpy's published D4RL settings and evaluates with the protocol of ``unio4 train offline --env``:
the deterministic action over episodes seeded 10000, 10001, ... Prints one JSON line.

    python scripts/bench/d3rlpy_baselines.py runs/bench/data/hopper-medium.h5 --env Hopper-v4 --algo iql --steps 50000

``--seconds S --marks N`` trains for S seconds of wall clock instead (the equal-wall-clock column:
S is what the compared run took) and evaluates at ``--steps`` and at every S/N seconds of training,
evaluation time not counted, the clock read every 1000 steps; one JSON line per evaluation.

``--online-steps N [--online-marks M]`` then fine-tunes online for N environment steps, as IQL's paper
and d3rlpy's fine-tuning reproduction do: the offline data and every new transition in one replay buffer
(first in, first out at 1 M transitions),
one update per environment step, actions sampled from the policy; scored at every N/M steps (lines with
``"phase": "online"``). It is the baseline for Uni-O4's online phase at the same number of steps.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import d3rlpy
import gymnasium as gym
import h5py
import numpy as np
import torch

REFERENCE = {"hopper": (-20.272305, 3234.3), "halfcheetah": (-280.178953, 12135.0), "walker2d": (1.629008, 4592.3)}


def load(path: str) -> d3rlpy.dataset.MDPDataset:
    with h5py.File(path, "r") as f:
        return d3rlpy.dataset.MDPDataset(
            observations=f["observations"][()].astype(np.float32),
            actions=f["actions"][()].astype(np.float32),
            rewards=f["rewards"][()].astype(np.float32),
            terminals=f["terminals"][()].astype(np.float32),
            timeouts=f["timeouts"][()].astype(np.float32),
        )


def make(algo: str, seed: int) -> d3rlpy.base.LearnableBase:  # d3rlpy's reproduction settings for D4RL MuJoCo
    d3rlpy.seed(seed)
    if algo == "iql":
        return d3rlpy.algos.IQLConfig(
            actor_learning_rate=3e-4,
            critic_learning_rate=3e-4,
            batch_size=256,
            weight_temp=3.0,
            max_weight=100.0,
            expectile=0.7,
            reward_scaler=d3rlpy.preprocessing.ReturnBasedRewardScaler(multiplier=1000.0),
        ).create(device="cpu:0")
    return d3rlpy.algos.TD3PlusBCConfig(
        actor_learning_rate=3e-4,
        critic_learning_rate=3e-4,
        batch_size=256,
        target_smoothing_sigma=0.2,
        target_smoothing_clip=0.5,
        alpha=2.5,
        update_actor_interval=2,
        observation_scaler=d3rlpy.preprocessing.StandardObservationScaler(),
    ).create(device="cpu:0")


def evaluate(policy: d3rlpy.base.LearnableBase, env_id: str, episodes: int) -> float:
    env = gym.make(env_id)
    returns = []
    for k in range(episodes):
        obs, _ = env.reset(seed=10_000 + k)
        total, done = 0.0, False
        while not done:
            action = policy.predict(np.asarray(obs, dtype=np.float32)[None])[0]
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    return float(np.mean(returns))


def print_score(policy: d3rlpy.base.LearnableBase, args: argparse.Namespace, **fields: object) -> None:
    """Evaluate ``policy`` and print one JSON line: the run's identity, ``fields``, the return and its D4RL score."""
    low, high = REFERENCE[args.env.split("-")[0].lower()]
    ret = evaluate(policy, args.env, args.episodes)
    score = 100 * (ret - low) / (high - low)
    print(json.dumps({"algo": args.algo, "data": args.data, "seed": args.seed, **fields, "return": ret, "d4rl_score": score}), flush=True)


def fine_tune_online(policy: d3rlpy.base.LearnableBase, dataset: d3rlpy.dataset.MDPDataset, args: argparse.Namespace) -> None:
    """Online fine-tuning on ``args.env`` from the offline data, one JSON line per mark."""
    env = gym.make(args.env)
    env.reset(seed=args.seed)  # fit_online's own resets carry on from this seeded state
    env.action_space.seed(args.seed)
    buffer = d3rlpy.dataset.create_fifo_replay_buffer(1_000_000, episodes=dataset.episodes)  # d3rlpy's IQL fine-tuning reproduction's
    every = max(1, args.online_steps // args.online_marks)

    def report(algo: d3rlpy.base.LearnableBase, epoch: int, total_step: int) -> None:
        if total_step % every == 0:  # d3rlpy calls back after every step
            print_score(algo, args, phase="online", online_steps=total_step)

    policy.fit_online(env, buffer, n_steps=args.online_steps, n_steps_per_epoch=args.online_steps, callback=report, show_progress=False,
                      save_interval=10**9, logger_adapter=d3rlpy.logging.NoopAdapterFactory())  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data")
    p.add_argument("--env", required=True)
    p.add_argument("--algo", choices=["iql", "td3bc"], required=True)
    p.add_argument("--steps", type=int, default=50_000)
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--seconds", type=float, default=0.0, help="train for this wall-clock budget (evaluation not counted)")
    p.add_argument("--marks", type=int, default=3, help="--seconds: evaluations at every 1/marks of the budget")
    p.add_argument("--online-steps", type=int, default=0, help="then fine-tune online for this many environment steps")
    p.add_argument("--online-marks", type=int, default=4, help="--online-steps: evaluations at every 1/marks of them")
    p.add_argument("--time-only", action="store_true", help="throughput only: 100 untimed steps, then --steps timed, no evaluation")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dataset = load(args.data)
    policy = make(args.algo, args.seed)
    quiet = {"show_progress": False, "save_interval": 10**9, "logger_adapter": d3rlpy.logging.NoopAdapterFactory()}
    if args.time_only:
        policy.fit(dataset, n_steps=100, n_steps_per_epoch=100, **quiet)
        t0 = time.perf_counter()
        policy.fit(dataset, n_steps=args.steps, n_steps_per_epoch=args.steps, **quiet)
        rate = args.steps / (time.perf_counter() - t0)
        print(json.dumps({"algo": args.algo, "threads": torch.get_num_threads(), "steps": args.steps, "steps_per_s": rate}))
        return

    def report(steps: int, train_s: float) -> None:
        print_score(policy, args, steps=steps, train_s=train_s)

    if args.seconds:
        fit_for_seconds(policy, dataset, args, quiet, report)
    else:
        t0 = time.time()
        policy.fit(dataset, n_steps=args.steps, n_steps_per_epoch=args.steps, **quiet)
        report(args.steps, time.time() - t0)
    if args.online_steps:
        fine_tune_online(policy, dataset, args)


def fit_for_seconds(policy: d3rlpy.base.LearnableBase, dataset: d3rlpy.dataset.MDPDataset, args: argparse.Namespace,
                    quiet: dict[str, object], report: Callable[[int, float], None]) -> None:  # fmt: skip
    """Offline training for ``args.seconds`` of wall clock, scored at ``args.steps`` and at every 1/marks of it."""
    epoch_steps, trained, next_mark = 1000, 0.0, args.seconds / args.marks
    t0 = time.perf_counter()
    for epoch, _ in policy.fitter(dataset, n_steps=10**9, n_steps_per_epoch=epoch_steps, **quiet):
        trained += time.perf_counter() - t0
        steps = epoch * epoch_steps
        if steps == args.steps or trained >= next_mark:
            report(steps, trained)
            while next_mark <= trained:
                next_mark += args.seconds / args.marks
        if trained >= args.seconds:
            break
        t0 = time.perf_counter()


if __name__ == "__main__":
    main()
