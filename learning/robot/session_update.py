"""How an on-robot session turns its robot's rollouts into a new checkpoint: the :class:`Update` interface and
its two modes (``SessionConfig.update``).

The session loop (:mod:`unio4.learning.robot.session`) asks its update which rollouts to run
(:meth:`Update.rollouts`), runs and packs them, then calls :meth:`Update.update`, which writes the
iteration's ``checkpoint.pt``; the gate evaluates bundles in :meth:`Update.gate_task` and compares
:meth:`Update.gate_measures` besides tracking and falls.

- :class:`PpoUpdate` (``update: ppo``): explore-mode rollouts at the session's command and one PPO update
  of the checkpoint's actor, with the clipped surrogate against the log-probabilities logged on the robot.
  The robot logs only the policy's observations (no privileged simulator state), so the critic is the
  session's own V(s) on them: fitted to the Monte-Carlo returns of the first batch, then by PPO's value loss.
- :class:`IdentifyUpdate` (``update: identify``): mean-action walks, one per identification command; the
  simulator's dynamics fitted to them (``identify``'s grid, :mod:`unio4.learning.robot.identify`), then PPO in
  simulation around the fit; the gate evaluates on the robot as identified and walks each bundle there
  as the robot walked. The robot's minutes go into measuring the gap rather than into gradient steps
  (docs/benchmarks/go1-sessions.md, "Closing a reality gap").
"""

from __future__ import annotations

import shutil
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from unio4.configs.command_line import one_line
from unio4.configs.loader import apply_overrides, from_dict, load, resolve_config_path, to_dict
from unio4.deploy.rollout_log import write_atomic
from unio4.learning.checkpoint import checkpoint_network, load_checkpoint, save_checkpoint
from unio4.learning.data.dataset import Dataset, load_dataset
from unio4.learning.export import actor_from_checkpoint, export_bundle
from unio4.learning.offline.critics import monte_carlo_returns
from unio4.learning.online.distributed import SINGLE
from unio4.learning.online.envs import go1_envs
from unio4.learning.online.ppo import PPO, PPOConfig, RolloutBuffer
from unio4.learning.online.reward_scaling import RewardScaler
from unio4.learning.online.runner import OnlineConfig, load_init, same_shapes, torch_threads, train_online
from unio4.learning.policy import NetworkConfig, ValueCritic
from unio4.learning.robot.command_map import calibrate
from unio4.learning.robot.identify import identify, recorded_candidate, simulate_features
from unio4.learning.robot.session_config import SessionConfig, SessionError
from unio4.learning.run_dir import prepare_run_dir
from unio4.sim.config import TaskConfig, load_task_config

IDENTIFY_FILE, FINETUNE_DIR, CALIBRATE_FILE = "identify.yaml", "sim_finetune", "calibrate.yaml"  # in the iteration directory, identify mode
EVAL_ENVS, EVAL_SECONDS = 16, 10.0  # the fine-tune's evaluation, when its config asks for one: unio4 train online's defaults


@dataclass(frozen=True)
class RolloutPlan:
    """One robot rollout an update asks for: a fixed command (None: the operator's remote), explore or mean action."""

    command: tuple[float, float, float] | None
    explore: bool
    seed: int = 0  # of the exploration noise


@dataclass(frozen=True)
class Iteration:
    """What an update works from: iteration ``number``'s directory and rollout logs, the accepted checkpoint and bundle."""

    number: int
    dir: Path
    runs: tuple[Path, ...]
    checkpoint: Path
    bundle: Path
    walked: Path  # the bundle that ran the rollouts (a candidate rolled back after its check walks, or ``bundle``)
    checks: tuple[Path, ...] = ()  # the iteration's check walks besides the rollouts (sideways, turning), by ``walked`` too


class Update(ABC):
    """What differs between the session's modes: the rollouts, the update itself and the gate's extras."""

    def __init__(self, cfg: SessionConfig, task: TaskConfig) -> None:
        self.cfg, self.task = cfg, task

    @abstractmethod
    def rollouts(self, iteration: int) -> list[RolloutPlan]:
        """The robot rollouts of iteration ``iteration``, in the order they run (``run_0``, ``run_1``, ...)."""

    @abstractmethod
    def update(self, it: Iteration) -> None:
        """Write ``it.dir / "checkpoint.pt"`` from the iteration's rollouts (packed in ``it.dir / "data.h5"``)."""

    def gate_task(self, d: Path) -> TaskConfig:
        """The task the gate evaluates bundles in after iteration directory ``d``'s update: the session's."""
        return self.task

    def gate_measures(self, d: Path, bundle: Path) -> dict[str, float]:
        """Measures of ``bundle`` the gate compares besides tracking and falls: none."""
        return {}

    def gate_judges_tracking(self, d: Path) -> bool:
        """Whether the gate compares the new bundle's tracking with the current's (else only its floors and falls)."""
        return True


def make_update(cfg: SessionConfig, task: TaskConfig, task_file: Path, rollout_s: float) -> Update:
    """The update ``cfg.update`` names; ``task_file`` is the session's stored task, ``rollout_s`` one rollout's policy time."""
    if cfg.update == "identify":
        return IdentifyUpdate(cfg, task, task_file, rollout_s)
    return PpoUpdate(cfg, task)


class PpoUpdate(Update):
    """``update: ppo``: explore-mode rollouts, then the session's critic and one PPO update on them."""

    def rollouts(self, iteration: int) -> list[RolloutPlan]:
        """``cfg.rollouts`` explore-mode rollouts at the session's command, each with its own seed."""
        return [RolloutPlan(self.cfg.command, explore=True, seed=self.cfg.seed + 1000 * iteration + r) for r in range(self.cfg.rollouts)]

    def update(self, it: Iteration) -> None:
        """The critic (carried in the checkpoint after the first update), the rewards as the learner sees them,
        then one PPO update of the actor.
        """
        cfg = self.cfg
        data = load_dataset(it.dir / "data.h5")
        state = load_checkpoint(it.checkpoint)
        actor = actor_from_checkpoint(state, str(it.checkpoint)).train()
        critic = self.critic(state, data, actor.obs_dim)
        scaler = RewardScaler(1, cfg.ppo.gamma, 1.0, cfg.reward_normalization, "cpu")
        if "session_reward_scaler" in state:
            scaler.load_state_dict(state["session_reward_scaler"])
        rewards = scaler.scale_sequence(data.rewards, data.terminals | data.timeouts)
        torch.manual_seed(cfg.seed + it.number)
        ppo = PPO(actor, critic, cfg.ppo, seed=cfg.seed + it.number)
        stats = ppo.update(rollout_buffer(data, rewards, critic, cfg.ppo))
        new = {**state, "actor": actor.state_dict(), "session_critic": critic.state_dict(), "session_update": stats}
        new.update(session_iteration=it.number, session_reward_scaler=scaler.state_dict())
        save_checkpoint(it.dir / "checkpoint.pt", new)

    def critic(self, state: dict[str, Any], data: Dataset, obs_dim: int) -> ValueCritic:
        """The session's V: carried from the last update; else the checkpoint's own (``critic_init: checkpoint``,
        when it reads the policy's observation); else fitted to the first batch's Monte-Carlo returns.
        """
        cfg = self.cfg
        critic = ValueCritic(obs_dim, actor_network(state))
        if "session_critic" in state:
            critic.load_state_dict(state["session_critic"])
        elif cfg.critic_init == "checkpoint" and "critic" in state and same_shapes(critic, state["critic"]):
            critic.load_state_dict(state["critic"])
        else:
            critic.normalizer.set_statistics(*data.observation_statistics(), freeze=True)
            fit_value(critic, data, cfg.ppo.gamma, cfg.critic_warmup_epochs, cfg.critic_lr, cfg.seed)
        return critic


class IdentifyUpdate(Update):
    """``update: identify``: mean-action walks, the simulator's dynamics fitted to them (``identify``'s grid), PPO in
    simulation around the fit; the gate on the robot as identified, with its walks.
    """

    def __init__(self, cfg: SessionConfig, task: TaskConfig, task_file: Path, rollout_s: float) -> None:
        super().__init__(cfg, task)
        self.task_file, self.rollout_s = task_file, rollout_s
        if cfg.sim.iterations:
            self.train_config(seed=cfg.seed)  # a bad preset or override fails now, not after the robot's walks

    def rollouts(self, iteration: int) -> list[RolloutPlan]:
        """One mean-action walk per identification command."""
        return [RolloutPlan((vx, 0.0, 0.0), explore=False) for vx in self.cfg.identify_commands]

    def update(self, it: Iteration) -> None:
        """Fit the robot (``identify.yaml``), fine-tune in simulation around it (``sim_finetune/``; none with
        ``sim.iterations`` 0), calibrate the result's commands to the walks (``calibrate.yaml``), keep it.
        """
        result = identify(list(it.runs), it.walked, self.task, self.cfg.identify, seconds=self.rollout_s)
        write_atomic(it.dir / IDENTIFY_FILE, yaml.safe_dump(result.record(), sort_keys=False).encode())
        tuned = self.finetune(it, result.task_overrides()) if self.cfg.sim.iterations else None
        if not self.cfg.calibrate.enabled:  # the fine-tune's result; with neither, the current checkpoint again
            shutil.copy(tuned or it.checkpoint, it.dir / "checkpoint.pt")
            return
        # the policy to calibrate, as a bundle (simulated as the robot runs it): the fine-tune's, or the walked one
        policy = export_bundle(tuned, it.dir / FINETUNE_DIR / "bundle") if tuned else it.walked
        walks = [*it.runs, *it.checks]
        fit, start = recorded_candidate(result.record()), it.dir.parent / "iter_000" / "bundle"
        args = (policy, it.walked, start, walks, self.task, fit, self.cfg.calibrate, self.cfg.identify, self.rollout_s)
        state, calibration = calibrate(*args)
        write_atomic(it.dir / CALIBRATE_FILE, yaml.safe_dump(calibration.record(), sort_keys=False).encode())
        if calibration.refused:
            print(f"session: iteration {it.number}: no command calibration: {calibration.refused}")
        save_checkpoint(it.dir / "checkpoint.pt", state)

    def finetune(self, it: Iteration, fit_overrides: list[str]) -> Path:
        """PPO in simulation from the current checkpoint on the robot as identified (``sim_finetune/``): its final checkpoint."""
        run = it.dir / FINETUNE_DIR
        shutil.rmtree(run, ignore_errors=True)  # a fine-tune cut short starts over
        sim, seed = self.cfg.sim, self.cfg.seed + it.number
        try:
            task = load_task_config(self.task_file, [*sim.task_overrides, *fit_overrides])
            return finetune_in_simulation(it.checkpoint, task, self.train_config(seed), run, sim.num_envs, seed, sim.threads)
        except (OSError, ValueError, ImportError) as exc:  # what the training command reports in one line
            raise SessionError(f"fine-tuning in simulation failed: {one_line(exc)}") from exc

    def train_config(self, seed: int) -> OnlineConfig:
        """The fine-tune's training config: the preset, ``seed``, the session's overrides, its iterations."""
        sim = self.cfg.sim
        overrides = [f"seed={seed}", *sim.train_overrides, f"iterations={sim.iterations}"]  # as unio4 train online applies them
        return load(OnlineConfig, resolve_config_path(sim.config, "train"), overrides)

    def gate_task(self, d: Path) -> TaskConfig:
        """The session's task on the robot as identified in ``d`` (the session's own before the fit)."""
        fit = self._fit(d)
        return self.task if fit is None else task_with(self.task, fit["task_overrides"], where=str(d / IDENTIFY_FILE))

    def gate_measures(self, d: Path, bundle: Path) -> dict[str, float]:
        """``walk_speed_error`` of ``bundle``: mean |forward speed - command| over the identification commands,
        walked (as on the robot, after its first ``skip_s``) in simulation on the robot as identified in ``d``. The
        speed is the simulator's: leg odometry's error there changes with the gait, enough to rank two bundles
        backwards (docs/benchmarks/go1-sessions.md, "What the fine-tune does to a robust walker").
        """
        fit = self._fit(d)
        if fit is None:
            return {}
        robot = recorded_candidate(fit)
        commands = list(self.cfg.identify_commands)
        walks = simulate_features(bundle, self.task, commands, [robot], self.rollout_s, self.cfg.identify.skip_s)[robot]
        return {"walk_speed_error": float(np.mean([abs(walks[vx]["true_speed"] - vx) for vx in commands]))}

    def gate_judges_tracking(self, d: Path) -> bool:
        """Not for a calibrated bundle: its map corrects what the identified robot in simulation misses, so there it
        tracks differently by design; the robot's check judges it (docs/benchmarks/go1-sessions.md, "Command calibration").
        """
        record = d / CALIBRATE_FILE
        calibration = (yaml.safe_load(record.read_text()) or {}) if record.is_file() else {}
        return not calibration.get("applied", calibration.get("folded", False))  # "folded": recorded by earlier versions

    @staticmethod
    def _fit(d: Path) -> dict[str, Any] | None:
        """The fit recorded in ``d`` (None before the update phase wrote it)."""
        fit = d / IDENTIFY_FILE
        return yaml.safe_load(fit.read_text()) if fit.is_file() else None


def finetune_in_simulation(
    init: Path, task: TaskConfig, cfg: OnlineConfig, run_dir: Path, num_envs: int, seed: int, threads: int | None = None
) -> Path:
    """``unio4 train online --init INIT`` on the Go1 task (MuJoCo), in this process: PPO on ``num_envs`` simulated robots
    from ``init``'s weights into the new run ``run_dir`` (``run.yaml`` with its configs, ``checkpoints/final.pt``, the
    curves). ``threads``: torch's thread count while it runs, restored after (None: left as it is). Returns ``final.pt``.
    """
    weights, cfg = load_init(init, cfg)  # the checkpoint's own network
    run = prepare_run_dir(run_dir, "online", run_dir.name, False, "checkpoints/latest.pt", {"train": cfg, "task": task})
    with torch_threads(threads):
        envs = go1_envs(
            task, cfg, SINGLE, num_envs, backend="mujoco", seed=seed, init=str(init), eval_envs=EVAL_ENVS, eval_seconds=EVAL_SECONDS
        )
        try:
            extra, evaluator = envs.extra_state, envs.evaluator
            result = train_online(envs.env, cfg, run, init=weights, extra_state=extra, show_progress=False, evaluator=evaluator)
        finally:
            envs.close()
    return result.checkpoint


def task_with(task: TaskConfig, overrides: Sequence[str], where: str) -> TaskConfig:
    """``task`` with ``overrides`` applied and validated (a bad one names ``where``)."""
    return from_dict(TaskConfig, apply_overrides(to_dict(task), list(overrides)), where=where)


def actor_network(state: dict[str, Any]) -> NetworkConfig:
    """The network config of a checkpoint's actor."""
    network = checkpoint_network(state, "session checkpoint")
    assert network is not None
    return network


def fit_value(critic: ValueCritic, data: Dataset, gamma: float, epochs: int, lr: float, seed: int) -> float:
    """Regress V to the discounted Monte-Carlo returns of ``data``; returns the final loss."""
    returns = monte_carlo_returns(data.rewards, data.terminals | data.timeouts, gamma)
    optimizer = torch.optim.Adam(critic.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    loss = torch.zeros(())
    for _ in range(epochs):
        for idx in torch.randperm(len(data), generator=gen).split(256):
            loss = (critic(data.observations[idx]) - returns[idx]).square().mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return loss.item()


@torch.no_grad()
def rollout_buffer(data: Dataset, rewards: torch.Tensor, critic: ValueCritic, cfg: PPOConfig) -> RolloutBuffer:
    """The logged rollouts with the learner's ``rewards`` as one on-policy batch (one column), GAE with time-outs bootstrapped."""
    n = len(data)
    buffer = RolloutBuffer(n, 1, data.observations.shape[1], data.observations.shape[1], data.actions.shape[1])
    values = critic(data.observations)
    rewards = rewards + cfg.gamma * critic(data.next_observations) * data.timeouts.float()  # bootstrap through time-outs
    for t in range(n):
        buffer.add(
            data.observations[t : t + 1],
            data.observations[t : t + 1],
            data.actions[t : t + 1],
            data.infos["log_prob"][t : t + 1].float(),
            values[t : t + 1],
            rewards[t : t + 1],
            (data.terminals | data.timeouts)[t : t + 1],
        )
    buffer.compute_returns(torch.zeros(1), cfg.gamma, cfg.gae_lambda)
    return buffer
