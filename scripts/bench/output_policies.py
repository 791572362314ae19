"""What should the offline phase output? One member chosen by OPE, or the members' mean action.

The offline phase ends with four policies per group (BC members, accepted behaviour policies, final
learners) and outputs one of them, the member with the best AM-Q score. When OPE ranks the members
poorly, that choice can be the worst of four. This script re-evaluates finished ``unio4 train
offline --env`` runs on the selection's own protocol (mean action, 10 episodes seeded 10000, ...,
D4RL score) for: the selected policy (again: the check that the protocol is the run's), and, for
each group, the policy that acts with the mean of the four members' mean actions. Nothing is
retrained.

    .venv/bin/python scripts/bench/output_policies.py runs/wmr/off_s0 runs/wmr/off_s1 --env Walker2d-v4
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch
from ope_rescore import GROUPS, data_path, load_models  # the sibling script: the run's ensembles, rebuilt

from unio4.configs.loader import from_dict
from unio4.learning.checkpoint import load_checkpoint
from unio4.learning.data.dataset import load_dataset
from unio4.learning.evaluate import episode_returns, evaluate_gym
from unio4.learning.export import actor_from_checkpoint
from unio4.learning.offline.bc import ActorEnsemble
from unio4.learning.offline.pipeline import OfflineConfig
from unio4.learning.scores import normalized_score


def mean_action_score(ensemble: ActorEnsemble, env: str, episodes: int) -> float:
    """D4RL score of the policy that acts with the members' average mean action."""

    def act(obs: torch.Tensor) -> torch.Tensor:
        means, _ = ensemble(obs.unsqueeze(0))  # (members, 1, act_dim)
        return means.mean(0)[0]

    returns = episode_returns(act, env, episodes, seed=10_000)
    return normalized_score(env, statistics.mean(returns))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", type=Path, nargs="+", help="offline run folders trained with --env")
    p.add_argument("--env", required=True, help="the Gymnasium id the runs were evaluated on")
    p.add_argument("--episodes", type=int, default=10)
    args = p.parse_args()
    torch.set_num_threads(1)
    columns = ["selected (stored)", "selected (again)"] + [f"mean action: {g}" for g in GROUPS]
    print("| run | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    sums: dict[str, list[float]] = {c: [] for c in columns}
    for run in args.runs:
        ckpt = load_checkpoint(run / "checkpoints" / "offline.pt")
        cfg = from_dict(OfflineConfig, ckpt["offline"], f"{run}: offline.pt")
        models = load_models(load_dataset(data_path(run)), ckpt, cfg)
        stored = json.loads((run / "evaluation.json").read_text())["d4rl_score"]
        again = evaluate_gym(actor_from_checkpoint(ckpt, str(run)), args.env, args.episodes, seed=10_000)["d4rl_score"]
        row = [stored, again] + [mean_action_score(models.ensembles[g], args.env, args.episodes) for g in GROUPS]
        for c, v in zip(columns, row):
            sums[c].append(v)
        print(f"| {run} | " + " | ".join(f"{v:.1f}" for v in row) + " |", flush=True)
    print("| mean | " + " | ".join(f"{statistics.mean(sums[c]):.1f}" for c in columns) + " |")


if __name__ == "__main__":
    main()
