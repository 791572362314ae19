"""Uni-O4's offline phase, end to end and resumable (``unio4 train offline``).

Stages, in order: critics (Q, V) -> behaviour-cloning ensemble -> dynamics ensemble -> multi-step
policy improvement (OPE-gated) -> member selection. Each stage is a trainer with ``step()`` and a
full ``state_dict()`` (weights, optimiser, RNG, counters); ``checkpoints/offline_state.pt`` holds
the finished stages and the current one, so ``resume=True`` after a crash or Ctrl-C continues
with exactly the update that would have come next.

Selection is by OPE alone (the member with the best accepted AM-Q score). The authors' top-k
online tie-break (real-environment returns) is available only with ``selection: online``, since
it leaks online evaluation into "offline" training.

The result, ``checkpoints/offline.pt``, holds the selected member as ``actor`` and V as ``critic``:
``unio4 train online --init`` starts PPO from exactly this policy and value function.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Protocol

import torch

from unio4.configs.loader import ConfigError, bounded, check_fields, from_dict, to_dict
from unio4.deploy.rollout_log import write_atomic
from unio4.learning.checkpoint import load_checkpoint, save_checkpoint
from unio4.learning.curves import CurveLogger
from unio4.learning.data.dataset import Dataset, dataset_action_bound
from unio4.learning.loggers import LoggerSpec
from unio4.learning.offline.bc import ActorEnsemble, BCConfig, BCTrainer, with_init_network
from unio4.learning.offline.critics import CriticConfig, Critics, CriticTrainer
from unio4.learning.offline.diagnostics import Drift, action_coverage, action_sensitivity, rank_correlation
from unio4.learning.offline.dynamics import DynamicsConfig, DynamicsEnsemble, DynamicsTrainer
from unio4.learning.offline.improvement import ImprovementConfig, ImprovementTrainer
from unio4.learning.offline.ope import AMQ, OPEConfig
from unio4.learning.policy import GaussianActor
from unio4.learning.progress import ProgressReporter

STAGES = ("critics", "bc", "dynamics", "improvement")
# the config sections each stage's result depends on (besides the dataset and the seed): a stage of
# an earlier run is reused only when these match (``reuse``)
STAGE_INPUTS = {
    "critics": ("critics", "bc.network", "q_observations"),  # V is built with the policy's network settings
    "bc": ("bc",),
    "dynamics": ("dynamics", "q_observations"),
    "improvement": ("critics", "bc", "dynamics", "ope", "improvement", "q_observations"),
}
CURVE_KEYS = ("critics/q_loss", "critics/v_loss", "bc/nll", "bc/kl_closest", "dynamics/holdout_mse", "improvement/ope_best")


@dataclass(frozen=True)
class OfflineConfig:
    """The whole offline phase: critics, BC, dynamics, OPE, improvement, selection, device."""

    seed: int = bounded(0, ge=0)  # stage seeds derive from it (bc.seed is replaced)
    device: str = "cpu"  # "cuda" on a GPU machine; random numbers stay on CPU generators either way
    checkpoint_interval: int = bounded(1000, ge=1)  # gradient steps (dynamics: epochs) between state checkpoints
    log_interval: int = bounded(100, ge=1)
    selection: Literal["ope", "online"] = "ope"
    # which policy of the selected member is the result: the last behaviour policy OPE accepted
    # (this implementation's choice) or the final learner (the authors' code)
    output: Literal["behaviour", "learner"] = "behaviour"
    online_candidates: int = bounded(3, ge=1)  # selection "online": top-k by OPE, then real returns
    online_episodes: int = bounded(5, ge=1)
    # The state Q and the dynamics model see: the policy's observation (the paper), or the privileged
    # critic observation that V already sees, when the data logged one (simulator logs: noise-free joint
    # state, base velocity, contacts, dynamics parameters). On Go1 logs the policy's observation is noisy
    # and partial, the logged action tells Q about the true state, and Q's action gradient follows that
    # instead of what the action does: the improvement loses against BC there and gains on the privileged
    # state (docs/benchmarks/go1-uni-o4.md, "Go1 trot logs with exploration"). Policies still act on their
    # own observation.
    q_observations: Literal["policy", "critic"] = "policy"
    critics: CriticConfig = field(default_factory=CriticConfig)
    bc: BCConfig = field(default_factory=BCConfig)
    dynamics: DynamicsConfig = field(default_factory=DynamicsConfig)
    ope: OPEConfig = field(default_factory=OPEConfig)
    improvement: ImprovementConfig = field(default_factory=ImprovementConfig)

    def __post_init__(self) -> None:
        check_fields(self)  # the declared ranges and choices, for a config built in Python as for one loaded from YAML


class Trainer(Protocol):
    """One resumable stage of the offline phase (critics, BC, dynamics, improvement)."""

    def step(self) -> Mapping[str, float | torch.Tensor]:
        """One gradient step (or epoch); returns what to log (0-d tensors are read only when logged)."""

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly where it stopped."""

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""


@dataclass
class OfflineResult:
    """What the offline phase produced: the checkpoint, the selected member and each member's OPE history."""

    checkpoint: Path
    member: int
    ope_initial: list[float]
    ope_best: list[float]
    accepted: list[int]
    history: list[dict[str, float]]


# Real-environment scores of candidate actors, for selection "online" only: (actors) -> returns.
OnlineScorer = Callable[[list[GaussianActor]], list[float]]

# what each stage's progress counts, for the x axis of its curve
STAGE_UNITS = {
    "critics": "critic gradient steps",
    "bc": "BC gradient steps",
    "dynamics": "dynamics epochs",
    "improvement": "improvement steps",
}


def train_offline(
    dataset: Dataset,
    cfg: OfflineConfig,
    run_dir: Path,
    resume: bool = False,
    online_scorer: OnlineScorer | None = None,
    show_progress: bool = True,
    stop_after: int | None = None,
    reuse: Path | None = None,
    tracker: LoggerSpec | None = None,
) -> OfflineResult:
    """Run (or resume) every stage; ``stop_after`` ends the call after that many steps in total (tests).

    ``reuse``: an earlier run's ``offline_state.pt``; its finished stages whose inputs (dataset, seed,
    :data:`STAGE_INPUTS`) match this config are taken as they are, the others are trained. An
    ablation of the BC regulariser then retrains BC and the improvement, not the critics.
    ``tracker``: where the scalars go besides ``metrics.jsonl`` (``--logger``; None: TensorBoard).
    """
    check_offline_request(cfg, online_scorer)
    cfg = replace(cfg, bc=with_init_network(cfg.bc))  # members (and V) take a pretrained init's architecture
    dataset = dataset.to(cfg.device)
    runner = StageRunner.open(dataset, cfg, run_dir, resume, reuse, tracker, show_progress, stop_after)
    bound = dataset_action_bound(dataset)
    state_data = q_state_data(dataset, cfg)
    critic_trainer = CriticTrainer(state_data, cfg.critics, cfg.bc.network, seed=cfg.seed)
    bc_trainer = BCTrainer(dataset, replace(cfg.bc, seed=cfg.seed + 1), bound)
    partial = OfflineResult(runner.state_path, -1, [], [], [], [])
    if not runner.run("critics", critic_trainer, lambda: critic_trainer.step_count >= cfg.critics.steps, lambda: critic_trainer.step_count):
        return partial
    if not runner.run("bc", bc_trainer, lambda: bc_trainer.step_count >= cfg.bc.steps, lambda: bc_trainer.step_count):
        return partial
    dyn_trainer = DynamicsTrainer(state_data, cfg.dynamics, seed=cfg.seed + 2)
    if not runner.run("dynamics", dyn_trainer, lambda: dyn_trainer.done, lambda: dyn_trainer.epoch):
        return partial
    dynamics = dyn_trainer.finish()
    critics = critic_trainer.critics.requires_grad_(False)
    diagnostics = data_diagnostics(critics, bc_trainer.ensemble, state_data, dataset)
    ope, improver = improvement_trainer(dataset, state_data, bc_trainer.ensemble, critics, dynamics, cfg)
    if not runner.run("improvement", improver, lambda: improver.step_count >= cfg.improvement.steps, lambda: improver.step_count):
        return partial

    diagnostics["drift"] = drift_diagnostics(improver, ope)
    if online_scorer is not None:
        diagnostics["ope"] = ope_against_returns(improver, bc_trainer, online_scorer)
    diagnostics["seconds"] = runner.seconds
    write_atomic(run_dir / "diagnostics.json", json.dumps(diagnostics, indent=1).encode())
    member = select_member(improver, bc_trainer.template, cfg, online_scorer)
    out = save_offline_result(run_dir / "checkpoints" / "offline.pt", cfg, dataset, member, bc_trainer, improver, critics, dynamics)
    return runner.finish(out, member, improver)


def check_offline_request(cfg: OfflineConfig, online_scorer: OnlineScorer | None) -> None:
    """Refuse, before any work, a selection without its environment or a device this machine lacks."""
    if cfg.selection == "online" and online_scorer is None:
        raise ValueError("selection 'online' needs an environment to evaluate candidates (--env)")
    if cfg.device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device: '{cfg.device}' requested but torch sees no CUDA device (use device: cpu)")


def q_state_data(dataset: Dataset, cfg: OfflineConfig) -> Dataset:
    """The data Q and the dynamics model learn on: the policy's observations or, with ``q_observations: critic``, the logged critic's."""
    if cfg.q_observations != "critic":
        return dataset
    if dataset.has_critic_observations():
        return dataset.on_critic_observations()
    print("q_observations critic: the data logged no critic observations; Q and the model use the policy's", flush=True)
    return dataset


def start_state(state_path: Path, resume: bool, reuse: Path | None, cfg: OfflineConfig, digest: str) -> dict[str, Any]:
    """What this call starts from: its own ``offline_state.pt`` (resume), an earlier run's matching stages (reuse), or nothing."""
    saved: dict[str, Any] = load_checkpoint(state_path, require_actor=False) if resume and state_path.is_file() else {"done": {}}
    if reuse is not None and not resume:
        saved = {"done": reusable_stages(load_checkpoint(reuse, require_actor=False), cfg, digest, str(reuse))}
        print(f"reusing from {reuse}: {', '.join(saved['done']) or 'no stage (none matches this config and dataset)'}", flush=True)
    return saved


@dataclass
class StageRunner:
    """The state one call of :func:`train_offline` shares across its stages: what is done, the logger, the step budget.

    It steps each stage's trainer, logs its rows and keeps ``offline_state.pt`` current, so an
    interrupted call resumes with exactly the update that would have come next.
    """

    cfg: OfflineConfig
    state_path: Path
    digest: str  # of the dataset, recorded so that a later run can tell what it may reuse
    saved: dict[str, Any]  # what this call started from (see :func:`start_state`)
    logger: CurveLogger
    show_progress: bool
    stop_after: int | None
    totals: dict[str, int] = field(init=False)  # each stage's length in its own counter
    offsets: dict[str, int] = field(init=False)  # each stage's first step on the shared curve axis
    seconds: dict[str, float] = field(default_factory=dict)  # wall clock of each stage trained by this call (reused stages cost nothing)
    steps_this_call: int = 0

    def __post_init__(self) -> None:
        c = self.cfg
        self.totals = {"critics": c.critics.steps, "bc": c.bc.steps, "dynamics": c.dynamics.max_epochs, "improvement": c.improvement.steps}
        self.offsets = {s: sum(self.totals[t] for t in STAGES[: STAGES.index(s)]) for s in STAGES}

    @classmethod
    def open(
        cls,
        dataset: Dataset,
        cfg: OfflineConfig,
        run_dir: Path,
        resume: bool,
        reuse: Path | None,
        tracker: LoggerSpec | None,
        show_progress: bool,
        stop_after: int | None,
    ) -> StageRunner:
        """The runner of a call: its starting state (resumed, reused or fresh) and the run's logger."""
        state_path = run_dir / "checkpoints" / "offline_state.pt"
        digest = dataset_digest(dataset)
        saved = start_state(state_path, resume, reuse, cfg, digest)
        return cls(cfg, state_path, digest, saved, CurveLogger(run_dir, tracker), show_progress, stop_after)

    @property
    def done(self) -> dict[str, dict[str, Any]]:
        """Every finished stage's final state (the current stage's lives under ``"current"`` in the file)."""
        done: dict[str, dict[str, Any]] = self.saved["done"]
        return done

    def run(self, stage: str, trainer: Trainer, finished: Callable[[], bool], counter: Callable[[], int]) -> bool:
        """Step ``trainer`` until ``finished`` (a finished stage is only loaded); False if ``stop_after`` interrupted it."""
        if stage in self.done:
            trainer.load_state_dict(self.done[stage])
            return True
        current = self.saved.get("current")
        if current is not None and current["stage"] == stage:
            trainer.load_state_dict(current["state"])
        bar = ProgressReporter(stage, self.totals[stage], counter(), enabled=self.show_progress)
        start = time.perf_counter()
        try:
            with bar:
                if not self._step_until(stage, trainer, finished, counter, bar):
                    return False
        except KeyboardInterrupt:
            self.save(stage, trainer)
            raise
        self.done[stage] = trainer.state_dict()
        self.save(stage, trainer)
        self.seconds[stage] = time.perf_counter() - start
        return True

    def _step_until(
        self, stage: str, trainer: Trainer, finished: Callable[[], bool], counter: Callable[[], int], bar: ProgressReporter
    ) -> bool:
        """The stage's loop: step, report, checkpoint when due; False once this call has taken ``stop_after`` steps."""
        while not finished():
            stats = trainer.step()
            self.steps_this_call += 1
            n = counter()
            self._report(stage, n, stats, bar)
            if n % self.cfg.checkpoint_interval == 0 or stage == "dynamics":
                self.save(stage, trainer)
            if self.stop_after is not None and self.steps_this_call >= self.stop_after:
                self.save(stage, trainer)
                return False
        return True

    def _report(self, stage: str, n: int, stats: Mapping[str, float | torch.Tensor], bar: ProgressReporter) -> None:
        """Advance the bar; log the step's scalars every ``log_interval`` steps, at OPE checks and every dynamics epoch."""
        if n % self.cfg.log_interval == 0 or "ope_best" in stats or stage == "dynamics":
            row = {k: float(v) for k, v in stats.items()}  # the only read of the step's results
            bar.update(n, "  ".join(f"{k} {v:.3g}" for k, v in list(row.items())[:3]))
            self.logger.log(self.offsets[stage] + n, {f"{stage}/{k}": v for k, v in row.items()})
        else:
            bar.update(n)

    def save(self, stage: str, trainer: Trainer) -> None:
        """Write ``offline_state.pt``: the finished stages and ``trainer``'s current state."""
        current = {"stage": stage, "state": trainer.state_dict()}
        save_checkpoint(
            self.state_path, {"done": self.done, "current": current, "config": to_dict(self.cfg), "dataset_digest": self.digest}
        )

    def stage_axis(self, key: str) -> tuple[Callable[[float], float], str]:
        """The curve of ``key`` against its own stage's counter, and that counter's unit."""
        stage = key.split("/")[0]
        offset = self.offsets[stage]
        return (lambda step: step - offset), STAGE_UNITS[stage]

    def finish(self, checkpoint: Path, member: int, improver: ImprovementTrainer) -> OfflineResult:
        """Plot the curves, close the logger and report the result."""
        self.logger.plot(CURVE_KEYS, name="offline_curves.png", x_axis=self.stage_axis)
        self.logger.close()
        initial, best, accepted = improver.initial.tolist(), improver.best.tolist(), improver.accepted.tolist()
        return OfflineResult(checkpoint, member, initial, best, accepted, self.logger.history())


def improvement_trainer(
    dataset: Dataset, state_data: Dataset, bc: ActorEnsemble, critics: Critics, dynamics: DynamicsEnsemble, cfg: OfflineConfig
) -> tuple[AMQ, ImprovementTrainer]:
    """The OPE (AM-Q on the dynamics model) and the OPE-gated improvement of the BC members it judges."""
    ope = AMQ(state_data.observations, dynamics, critics, cfg.ope, dataset.observations.shape[1], dataset.episode_starts())
    improver = ImprovementTrainer(
        dataset,
        bc,
        critics,
        ope,
        cfg.improvement,
        seed=cfg.seed + 3,
        disagreement=lambda: ope.last_disagreement,
        q_observations=state_data.observations,
        paired=ope.pair,
    )
    return ope, improver


def data_diagnostics(critics: Critics, bc: ActorEnsemble, state_data: Dataset, dataset: Dataset) -> dict[str, Any]:
    """How much Q's value follows the action, and how much of the logged action the state explains (printed and recorded)."""
    sensitivity = action_sensitivity(critics.q_min, state_data.observations, dataset.actions)
    print(sensitivity.line(), flush=True)
    coverage = action_coverage(lambda obs: bc(obs)[0], dataset.observations, dataset.actions)
    print(coverage.line(), flush=True)
    return {"critics": dataclasses.asdict(sensitivity), "coverage": dataclasses.asdict(coverage)}


def drift_diagnostics(improver: ImprovementTrainer, ope: AMQ) -> dict[str, Any]:
    """How far the improved policies' model rollouts stray from the data, against the BC members' (printed and recorded)."""
    # the BC members' disagreement came with their OPE scores when the improvement step started
    assert improver.bc_disagreement is not None
    drift = Drift(
        [float(x) for x in improver.bc_disagreement], model_disagreement(ope, improver.behaviour), model_disagreement(ope, improver.learner)
    )
    print(drift.line(), flush=True)
    return {**dataclasses.asdict(drift), "ratio": drift.ratio, "extrapolating": drift.extrapolating}


def ope_against_returns(improver: ImprovementTrainer, bc_trainer: BCTrainer, online_scorer: OnlineScorer) -> dict[str, Any]:
    """OPE against the truth over every candidate (BC members, accepted behaviours, final learners): Spearman's rho."""
    size = improver.best.shape[0]
    groups = {"bc": bc_trainer.ensemble, "behaviour": improver.behaviour, "learner": improver.learner}
    scores = {"bc": improver.initial, "behaviour": improver.best, "learner": improver.last}
    candidates = [ensemble.member(i, bc_trainer.template) for ensemble in groups.values() for i in range(size)]
    estimates = [x for group in groups for x in scores[group].tolist()]
    returns = online_scorer(candidates)
    rho = rank_correlation(estimates, returns)
    for k, group in enumerate(groups):
        print(f"  {group:>9} members: true return " + " / ".join(f"{r:.4g}" for r in returns[k * size : (k + 1) * size]), flush=True)
    print(f"OPE vs true return over {len(returns)} candidate policies (BC, accepted, learners): Spearman rho {rho:+.2f}", flush=True)
    return {"groups": list(groups), "estimates": estimates, "returns": returns, "spearman": rho}


def save_offline_result(
    out: Path,
    cfg: OfflineConfig,
    dataset: Dataset,
    member: int,
    bc_trainer: BCTrainer,
    improver: ImprovementTrainer,
    critics: Critics,
    dynamics: DynamicsEnsemble,
) -> Path:
    """Write ``offline.pt``: the selected member as ``actor``, V as ``critic``, and every ensemble, score and setting behind them."""
    actor = (improver.behaviour if cfg.output == "behaviour" else improver.learner).member(member, bc_trainer.template)
    save_checkpoint(
        out,
        {
            "kind": "uni-o4-offline",
            "actor": actor.state_dict(),
            "critic": critics.v.state_dict(),
            "member": member,
            "ope_initial": improver.initial.tolist(),
            "ope_best": improver.best.tolist(),
            "accepted": improver.accepted.tolist(),
            "bc_ensemble": bc_trainer.ensemble.state_dict(),
            "policy_ensemble": improver.behaviour.state_dict(),
            "learner_ensemble": improver.learner.state_dict(),
            "ope_learner": improver.last.tolist(),
            "critics": critics.state_dict(),
            "dynamics": dynamics.state_dict(),
            "network": to_dict(cfg.bc.network),
            "offline": to_dict(cfg),
            "obs_dim": actor.obs_dim,
            "act_dim": actor.act_dim,
            "action_bound": actor.action_bound,
            "dataset": {k: v for k, v in dataset.metadata.items() if k not in ("task_config", "config")} | {"transitions": len(dataset)},
            "task_config": dataset.metadata.get("task_config"),
        },
    )
    return out


def model_disagreement(ope: AMQ, policies: ActorEnsemble) -> list[float]:
    """Each member's mean elite disagreement along its AM-Q rollouts (the same rollouts its score uses)."""
    ope(policies)
    return [float(x) for x in ope.last_disagreement]


def dataset_digest(dataset: Dataset) -> str:
    """SHA-256 of the transitions (observations, actions, rewards, ends, next observations)."""
    h = hashlib.sha256()
    for t in (dataset.observations, dataset.actions, dataset.rewards, dataset.terminals, dataset.timeouts, dataset.next_observations):
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def with_defaults(config: dict[str, Any]) -> dict[str, Any]:
    """An earlier run's config with the options added since at their defaults, which reproduce the
    behaviour from before each option; as stored when it no longer loads (an option removed since).
    """
    try:
        return to_dict(from_dict(OfflineConfig, config))
    except ConfigError:
        return config


def reusable_stages(state: dict[str, Any], cfg: OfflineConfig, digest: str, where: str) -> dict[str, dict[str, Any]]:
    """The finished stages of ``state`` (an ``offline_state.pt``) that this config and dataset would reproduce."""
    if state.get("dataset_digest") != digest:
        raise ValueError(f"{where}: trained on other data (or written before runs recorded their dataset); nothing can be reused")
    old, new = with_defaults(state["config"]), to_dict(cfg)

    def section(config: dict[str, Any], key: str) -> Any:
        for part in key.split("."):
            config = config[part]
        return config

    return {
        stage: result
        for stage, result in state["done"].items()
        if old["seed"] == new["seed"] and all(section(old, k) == section(new, k) for k in STAGE_INPUTS[stage])
    }


def select_member(improver: ImprovementTrainer, template: GaussianActor, cfg: OfflineConfig, online_scorer: OnlineScorer | None) -> int:
    """Best OPE score of the output policies; with selection "online", the best real return among the top-k by OPE."""
    ensemble, scores = (improver.behaviour, improver.best) if cfg.output == "behaviour" else (improver.learner, improver.last)
    ranked = torch.argsort(scores, descending=True).tolist()
    if cfg.selection == "ope" or online_scorer is None:
        return int(ranked[0])
    candidates = ranked[: cfg.online_candidates]
    returns = online_scorer([ensemble.member(i, template) for i in candidates])
    return int(candidates[max(range(len(candidates)), key=lambda k: returns[k])])
