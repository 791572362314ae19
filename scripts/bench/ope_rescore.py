"""Score a finished offline run's candidate policies again with other OPE settings.

``unio4 train offline --env`` stores, in ``diagnostics.json``, every candidate's AM-Q estimate and
true return (BC members, accepted behaviour policies, final learners). This script rebuilds the
run's critics, dynamics model and the three policy ensembles from ``checkpoints/offline.pt``, scores
the candidates first with the run's own OPE settings (which must reproduce the stored estimates:
the check that the rebuild is faithful) and then with ``--set ope.KEY=VALUE`` overrides, and prints
for each: the rank correlation with the true returns and each group's model disagreement along its
rollouts. It measures an OPE change on the same candidates, without retraining anything.

    .venv/bin/python scripts/bench/ope_rescore.py runs/hcmr/off_s0 runs/hcmr/off_s1 --set ope.clip_states=true
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

import torch

from configs.loader import apply_overrides, from_dict, read_yaml, to_dict
from learning.checkpoint import load_checkpoint
from learning.data.dataset import Dataset, dataset_action_bound, load_dataset
from learning.offline.bc import ActorEnsemble, make_actor
from learning.offline.critics import Critics
from learning.offline.diagnostics import rank_correlation
from learning.offline.dynamics import DynamicsEnsemble, resolve_termination
from learning.offline.ope import AMQ, OPEConfig
from learning.offline.pipeline import OfflineConfig

GROUPS = ("bc", "behaviour", "learner")
ENSEMBLE_KEYS = {"bc": "bc_ensemble", "behaviour": "policy_ensemble", "learner": "learner_ensemble"}


def data_path(run: Path) -> Path:
    """The ``--data`` the run was started with (from its ``run.yaml``)."""
    argv: list[str] = read_yaml(run / "run.yaml")["argv"]
    return Path(argv[argv.index("--data") + 1])


def load_models(
    dataset: Dataset, ckpt: dict[str, Any], cfg: OfflineConfig
) -> tuple[Dataset, Critics, DynamicsEnsemble, dict[str, ActorEnsemble]]:
    """The run's state data (what Q and the model read), critics, dynamics model and policy ensembles."""
    state = dataset.on_critic_observations() if cfg.q_observations == "critic" and dataset.has_critic_observations() else dataset
    obs_dim, act_dim = state.observations.shape[1], dataset.actions.shape[1]
    critics = Critics(obs_dim, act_dim, cfg.critics, cfg.bc.network, state.value_observations()[0].shape[1])
    critics.load_state_dict(ckpt["critics"])
    dynamics = DynamicsEnsemble(obs_dim, act_dim, cfg.dynamics, resolve_termination(cfg.dynamics, state))
    dynamics.load_state_dict(ckpt["dynamics"])
    template = make_actor(dataset.observations.shape[1], act_dim, dataset_action_bound(dataset), cfg.bc.network, dataset)
    ensembles = {}
    for group in GROUPS:
        ensembles[group] = ActorEnsemble([template] * cfg.bc.members)
        ensembles[group].load_state_dict(ckpt[ENSEMBLE_KEYS[group]])
    return state, critics.requires_grad_(False), dynamics.requires_grad_(False), ensembles


def score(
    models: tuple[Dataset, Critics, DynamicsEnsemble, dict[str, ActorEnsemble]], ope_cfg: OPEConfig, policy_dims: int
) -> dict[str, Any]:
    """Every candidate's AM-Q under ``ope_cfg`` and each group's mean model disagreement."""
    state, critics, dynamics, ensembles = models
    ope = AMQ(state.observations, dynamics, critics, ope_cfg, policy_dims)
    estimates: list[float] = []
    disagreement: dict[str, float] = {}
    for group in GROUPS:
        estimates += [float(x) for x in ope(ensembles[group])]
        disagreement[group] = float(ope.last_disagreement.mean())
    return {"estimates": estimates, "disagreement": disagreement}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", type=Path, nargs="+", help="offline run folders trained with --env (their diagnostics hold true returns)")
    p.add_argument("--set", action="append", default=[], help="an OPE override, e.g. ope.clip_states=true")
    args = p.parse_args()
    if any(not item.startswith("ope.") for item in args.set):
        p.error("--set: only OPE settings (ope.KEY=VALUE) can change; the models are the run's")
    torch.set_num_threads(1)
    rhos: dict[str, list[float]] = {"run's": [], "new": []}
    print("| run | OPE | Spearman | AM-Q BC / accepted / learners | disagreement BC / accepted / learners | stored estimates reproduced |")
    print("|---|---|---|---|---|---|")
    for run in args.runs:
        diag = json.loads((run / "diagnostics.json").read_text())
        ckpt = load_checkpoint(run / "checkpoints" / "offline.pt", require_actor=False)
        dataset = load_dataset(data_path(run))
        base = from_dict(OfflineConfig, ckpt["offline"], f"{run}: offline.pt")
        new = from_dict(OfflineConfig, apply_overrides(to_dict(base), args.set), "--set")
        models = load_models(dataset, ckpt, base)  # only the OPE settings differ between the two scorings
        for label, cfg in (("run's", base), ("new", new)):
            out = score(models, cfg.ope, dataset.observations.shape[1])
            rho = rank_correlation(out["estimates"], diag["ope"]["returns"])
            rhos[label].append(rho)
            same = all(abs(a - b) <= 1e-3 * max(1.0, abs(b)) for a, b in zip(out["estimates"], diag["ope"]["estimates"]))
            check = ("yes" if same else "NO: the rebuild differs from the run") if label == "run's" else "-"
            spread = " / ".join(f"{out['disagreement'][g]:.3g}" for g in GROUPS)
            size = len(out["estimates"]) // len(GROUPS)
            amq = " / ".join(f"{statistics.mean(out['estimates'][k * size : (k + 1) * size]):.4g}" for k in range(len(GROUPS)))
            text = "run's" if label == "run's" else ", ".join(args.set) or "(no change)"
            print(f"| {run} | {text} | {rho:+.2f} | {amq} | {spread} | {check} |", flush=True)
    for label, xs in rhos.items():
        print(f"mean Spearman, {label} OPE: {statistics.mean(xs):+.2f}")


if __name__ == "__main__":
    main()
