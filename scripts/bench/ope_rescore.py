"""Score a finished offline run's candidate policies again with other OPE settings.

``unio4 train offline --env`` stores, in ``diagnostics.json``, every candidate's AM-Q estimate and
true return (BC members, accepted behaviour policies, final learners). This script rebuilds the
run's critics, dynamics model and the three policy ensembles from ``checkpoints/offline.pt``, scores
the candidates first with the run's own OPE settings (which must reproduce the stored estimates:
the check that the rebuild is faithful) and then with ``--set ope.KEY=VALUE`` overrides, and prints
for each: the rank correlation with the true returns and each group's model disagreement along its
rollouts. It measures an OPE change on the same candidates, without retraining anything.

``--set dynamics.KEY=VALUE`` retrains only the dynamics model, as the run's dynamics stage did (same
seed, so the same hold-out split) but with the override, prints its wall clock and elite hold-out
error beside the run's, and scores the same candidates with it: a change to how the model is trained
measured by what it is for.

    .venv/bin/python scripts/bench/ope_rescore.py runs/hcmr/off_s0 runs/hcmr/off_s1 --set ope.clip_states=true
    .venv/bin/python scripts/bench/ope_rescore.py runs/hcmr/off_s0 --set dynamics.precision=bf16
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any, NamedTuple

import torch

from unio4.configs.loader import apply_overrides, from_dict, read_yaml, to_dict
from unio4.learning.checkpoint import load_checkpoint
from unio4.learning.data.dataset import Dataset, dataset_action_bound, load_dataset
from unio4.learning.offline.bc import ActorEnsemble, make_actor
from unio4.learning.offline.critics import Critics
from unio4.learning.offline.diagnostics import rank_correlation
from unio4.learning.offline.dynamics import DynamicsEnsemble, DynamicsTrainer, resolve_termination
from unio4.learning.offline.ope import AMQ, OPEConfig
from unio4.learning.offline.pipeline import OfflineConfig

GROUPS = ("bc", "behaviour", "learner")
ENSEMBLE_KEYS = {"bc": "bc_ensemble", "behaviour": "policy_ensemble", "learner": "learner_ensemble"}


def data_path(run: Path) -> Path:
    """The ``--data`` the run was started with (from its ``run.yaml``)."""
    argv: list[str] = read_yaml(run / "run.yaml")["argv"]
    return Path(argv[argv.index("--data") + 1])


class RunModels(NamedTuple):
    """A finished run's state data (what Q and the model read), critics, dynamics model and policy ensembles."""

    state: Dataset
    critics: Critics
    dynamics: DynamicsEnsemble
    ensembles: dict[str, ActorEnsemble]


def load_models(dataset: Dataset, ckpt: dict[str, Any], cfg: OfflineConfig) -> RunModels:
    """The run's models, rebuilt from its checkpoint."""
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
    return RunModels(state, critics.requires_grad_(False), dynamics.requires_grad_(False), ensembles)


def score(models: RunModels, ope_cfg: OPEConfig, policy_dims: int) -> dict[str, Any]:
    """Every candidate's AM-Q under ``ope_cfg`` and each group's mean model disagreement."""
    ope = AMQ(models.state.observations, models.dynamics, models.critics, ope_cfg, policy_dims, models.state.episode_starts())
    estimates: list[float] = []
    disagreement: dict[str, float] = {}
    for group in GROUPS:
        estimates += [float(x) for x in ope(models.ensembles[group])]
        disagreement[group] = float(ope.last_disagreement.mean())
    return {"estimates": estimates, "disagreement": disagreement}


def retrain_dynamics(state: Dataset, run_model: DynamicsEnsemble, cfg: OfflineConfig, run_seconds: float) -> DynamicsEnsemble:
    """The run's dynamics stage again with ``cfg.dynamics``; prints its time and hold-out error beside the run's."""
    trainer = DynamicsTrainer(state, cfg.dynamics, seed=cfg.seed + 2)  # the pipeline's seed: the run's hold-out split
    start = time.perf_counter()
    while not trainer.done:
        stats = trainer.step()
        print(f"  dynamics epoch {trainer.epoch}: hold-out MSE {stats['holdout_mse']:.4g}, {time.perf_counter() - start:.0f} s", flush=True)
    seconds = time.perf_counter() - start
    model = trainer.finish().requires_grad_(False)

    def elite_mse(m: DynamicsEnsemble) -> float:
        return float(trainer.holdout_mse(m)[m.elite_index].mean())

    print(
        f"  dynamics: run's {run_seconds:.0f} s, hold-out MSE of the elites {elite_mse(run_model):.4g}; "
        f"retrained {seconds:.0f} s ({trainer.epoch} epochs), {elite_mse(model):.4g}",
        flush=True,
    )
    return model


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", type=Path, nargs="+", help="offline run folders trained with --env (their diagnostics hold true returns)")
    p.add_argument("--set", action="append", default=[], help="an OPE or dynamics override, e.g. ope.clip_states=true")
    args = p.parse_args()
    if any(not item.startswith(("ope.", "dynamics.")) for item in args.set):
        p.error("--set: only OPE settings (ope.KEY=VALUE) and the dynamics model's (dynamics.KEY=VALUE) can change")
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
        models = load_models(dataset, ckpt, base)
        new_models = models
        if new.dynamics != base.dynamics:  # only the model is retrained; critics and policies stay the run's
            new_models = models._replace(dynamics=retrain_dynamics(models.state, models.dynamics, new, diag["seconds"]["dynamics"]))
        for label, cfg, pair in (("run's", base, models), ("new", new, new_models)):
            out = score(pair, cfg.ope, dataset.observations.shape[1])
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
