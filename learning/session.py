"""``unio4 session``: on-robot fine-tuning, one resumable iteration at a time.

Each iteration runs the phases

    deploy (explore mode, ``rollouts`` x ``steps`` policy steps) -> pack (rewards from raw state)
    -> update (PPO, Uni-O4's online objective, on the fresh rollouts) -> export -> gate (sim-to-sim
    evaluation of the new bundle against the current one and the session's first one) -> flash
    (or, without a robot host, the local bundle becomes current)

With ``update: identify`` the rollouts are mean-action walks at ``identify_commands`` and the update
fits the simulator's motor strength and trunk mass to them (:mod:`unio4.learning.identify`), then
fine-tunes in simulation around the estimate; the gate evaluates on the robot as identified. The
robot's minutes go into measuring the gap rather than into gradient steps (docs/benchmarks.md,
"Closing a reality gap"); every iteration's row carries the robot's speed error of those walks,
so iteration k measures, on the robot, the bundle accepted after k - 1 updates.

The session records after every phase, atomically, where it is (``SESSION/state.json``), so a crash or
Ctrl-C resumes at the phase that did not finish: a deploy cut short is kept aside as
``*.interrupted`` and run again, as is once a rollout that ended before its first policy step
(``*.empty0``: no data; twice in a row stops the session); finished phases are never repeated. The settings the session
started with (config and task, overrides included) are stored beside the state and used on resume.

The critic: the robot logs only the policy's observations (no privileged simulator state), so the
session fits its own V(s) on them, first to the Monte-Carlo returns of the first batch, then by
PPO's value loss. The actor is the checkpoint's actor, updated with the clipped surrogate against
the log-probabilities logged on the robot.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from unio4.configs.loader import bounded, to_dict
from unio4.deploy.rollout_log import write_atomic
from unio4.learning.checkpoint import load_checkpoint, save_checkpoint
from unio4.learning.data.dataset import Dataset
from unio4.learning.data.pack import pack_runs
from unio4.learning.export import actor_from_checkpoint, export_bundle, init_checkpoint
from unio4.learning.offline.critics import monte_carlo_returns
from unio4.learning.policy import ValueCritic, with_std_range
from unio4.learning.ppo import PPO, PPOConfig, RolloutBuffer
from unio4.robots.description import load_robot
from unio4.sim.config import TaskConfig

PHASES = ("deploy", "pack", "update", "export", "gate", "flash")


class SessionError(RuntimeError):
    """A phase that could not run (the robot unreachable, a failed deploy); one line, the session resumable."""


CONFIG_FILE, TASK_FILE = "session.yaml", "task.yaml"  # in the session directory, written by Session.start


@dataclass(frozen=True)
class SimFinetuneConfig:
    """The fine-tuning in simulation of ``update: identify`` (``unio4 train online --init``)."""

    config: str = "finetune_go1"  # training preset
    iterations: int = bounded(100, ge=1)
    num_envs: int = bounded(256, ge=1)
    threads: int | None = bounded(None, ge=1)  # torch and physics threads (None: the training default)
    # Task overrides for the fine-tuning only (the session's task still scores the logs and sets the
    # gate), e.g. a tighter tracking reward: go1_flat's sigma 0.25 barely rewards closing a 0.1 m/s error.
    task_overrides: tuple[str, ...] = ()
    train_overrides: tuple[str, ...] = ()  # training-preset overrides for the fine-tuning, e.g. "min_std=0.15"


@dataclass(frozen=True)
class GateConfig:
    """The sim-to-sim gate a new bundle must pass before it is flashed."""

    backend: str = "pybullet"
    num_envs: int = bounded(8, ge=1)
    seconds: float = bounded(5.0, gt=0)
    # Absolute floors every new bundle must meet, whatever the current one does:
    max_falls_per_minute: float = bounded(0.0, ge=0)  # falls per robot-minute
    max_lin_vel_error: float = bounded(0.3, gt=0)  # m/s, over the bundle's trained command range
    # What the new bundle may add, over the current bundle and over the session's first bundle:
    max_tracking_increase: float = bounded(0.05, ge=0)  # m/s of lin-vel error
    max_falls_increase: float = bounded(0.0, ge=0)  # falls per robot-minute
    # Identify mode only: the bundle walks the identification commands on the identified robot (MuJoCo,
    # randomisation off), the walks the robot makes; its speed error there may not exceed the current's
    # or the first's by more than this (the lin-vel error above averages the whole command range and let
    # through a bundle that walked 0.25 m/s slower at 0.9 m/s on the robot).
    max_walk_error_increase: float = bounded(0.02, ge=0)  # m/s


@dataclass(frozen=True)
class SessionConfig:
    """An on-robot fine-tuning session: robot, rollouts, PPO, gate, flashing."""

    iterations: int = bounded(3, ge=1)
    rollouts: int = bounded(10, ge=1)  # deploy runs per iteration (the operator resets the robot between them)
    steps: int = bounded(500, ge=1)  # policy steps per rollout (10 s at 50 Hz)
    robot: str = "192.168.123.10"  # the SDK endpoint; HOST:PORT for the emulator
    local_port: int | None = bounded(None, ge=0, le=65535)  # the SDK's local UDP port (0: any; None: the SDK default)
    command: tuple[float, float, float] | None = bounded((0.5, 0.0, 0.0), ge=-5, le=5)  # None: the operator's remote
    flash_host: str | None = None  # user@robot: flash each accepted bundle; None: run it from here
    prompt: bool = True  # ask the operator before each rollout
    # Robot time: the session stops (between rollouts) before it would pass max_robot_minutes of deploy time in all;
    # a rollout still running rollout_grace_s after its planned length is stopped (SIGTERM: the runtime damps and exits).
    max_robot_minutes: float | None = bounded(None, gt=0, le=1e4)
    rollout_grace_s: float = bounded(30.0, gt=0, le=3600)
    seed: int = bounded(0, ge=0)
    critic_warmup_epochs: int = bounded(200, ge=0)  # Monte-Carlo V fit on the first batch
    # Exploration floor on the robot (see OnlineConfig.min_std): the start checkpoint's log-std
    # range is remapped so explore-mode rollouts sample at std >= min_std; the mean is unchanged.
    # None: explore with the checkpoint's own std (BC of a controller: ~0.03, too little to learn from).
    min_std: float | None = bounded(0.15, gt=0, le=10)
    critic_lr: float = bounded(1e-3, gt=0, le=1)
    ppo: PPOConfig = field(
        default_factory=lambda: PPOConfig(
            num_steps=500,
            epochs=5,
            num_minibatches=4,
            clip=0.2,
            value_clip=0.2,
            actor_lr=3e-4,
            critic_lr=1e-3,
            lr_schedule="fixed",
            desired_kl=0.02,
            entropy_coef=0.0,
            max_grad_norm=0.5,
        )
    )
    gate: GateConfig = field(default_factory=GateConfig)
    # How the robot's rollouts improve the policy. "ppo": PPO on them (explore-mode rollouts).
    # "identify": fit the simulator's motor strength and trunk mass to mean-action rollouts at
    # identify_commands, then fine-tune in simulation around the estimate (learning/identify.py): the
    # robot time goes into measuring the gap, the learning into the simulator.
    update: str = "ppo"
    identify_commands: tuple[float, ...] = bounded((0.3, 0.6, 0.9), ge=-2, le=2)  # m/s forward, one rollout each
    sim: SimFinetuneConfig = field(default_factory=SimFinetuneConfig)

    def __post_init__(self) -> None:
        if self.update not in ("ppo", "identify"):
            raise ValueError(f"update: expected 'ppo' or 'identify', got {self.update!r}")


@dataclass
class SessionState:
    """Where a session is: iteration, phase, current checkpoint and bundle, rows so far."""

    iteration: int = 1
    phase: str = "deploy"  # the next phase to run; "done" when the iteration has finished
    checkpoint: str = ""  # the accepted (current) checkpoint
    bundle: str = ""  # the accepted (current) bundle
    rows: list[dict[str, Any]] = field(default_factory=list)
    gate_start: dict[str, float] = field(default_factory=dict)  # the gate's measures of the session's first bundle
    # The gate's verdict on the start bundle (iter_000, from --init), taken before the first rollout: a
    # session exists only once it passed, so a resume never gates it again. Empty: a session started
    # before the start bundle was gated.
    start_gate: dict[str, Any] = field(default_factory=dict)
    robot_seconds: float = 0.0  # deploy time on the robot so far: every rollout from connect to damping, all iterations
    budget_spent: bool = False  # the robot-time budget ended the session

    def save(self, path: Path) -> None:
        """Write the state atomically."""
        write_atomic(path, json.dumps(self.__dict__, indent=1).encode())

    @staticmethod
    def load(path: Path) -> SessionState:
        """Read a state written by :meth:`save`."""
        return SessionState(**json.loads(path.read_text()))


Prompt = Callable[[str], None]


class Session:
    """Drives the phases; ``run()`` returns when all iterations are done."""

    def __init__(self, root: Path, cfg: SessionConfig, task: TaskConfig, prompt: Prompt | None = None) -> None:
        self.root, self.cfg, self.task = root, cfg, task
        self.state_path = root / "state.json"
        self.prompt = prompt or (lambda message: input(message))
        self.state = SessionState.load(self.state_path) if self.state_path.is_file() else SessionState()
        self.task_with(cfg.sim.task_overrides, where="session.sim.task_overrides")  # fail now, not after the robot's walks
        if cfg.update == "identify":
            from unio4.configs.loader import load, resolve_config_path
            from unio4.learning.online import OnlineConfig

            load(OnlineConfig, resolve_config_path(cfg.sim.config, "train"), cfg.sim.train_overrides)

    def start(self, checkpoint: Path) -> None:
        """A new session from ``checkpoint`` (or a bundle's checkpoint.pt): its bundle is exported as iteration 0
        and gated in simulation (:meth:`gate_start_bundle`); a refused one leaves no session to resume.
        """
        if self.state_path.is_file():
            raise ValueError(f"{self.root}: a session already exists here; resume it (--out without --init) or pick a new directory")
        checkpoint = init_checkpoint(checkpoint)  # a bundle: the checkpoint.pt it carries
        self.root.mkdir(parents=True, exist_ok=True)
        start = self.root / "iter_000"
        start.mkdir(exist_ok=True)
        ckpt = start / "checkpoint.pt"
        state = load_checkpoint(checkpoint)
        network = actor_network(state)
        if self.cfg.min_std is None or network.log_std_min >= math.log(self.cfg.min_std):
            shutil.copy(checkpoint, ckpt)  # no floor asked for, or the checkpoint's own is already as high
        else:
            state["network"] = to_dict(with_std_range(network, min_std=self.cfg.min_std))
            save_checkpoint(ckpt, state)
        bundle = export_bundle(ckpt, start / "bundle")
        # The resolved settings (file + overrides), so a resume runs with exactly what the session started with.
        write_atomic(self.root / CONFIG_FILE, yaml.safe_dump(to_dict(self.cfg), sort_keys=False).encode())
        write_atomic(self.root / TASK_FILE, yaml.safe_dump(to_dict(self.task), sort_keys=False).encode())
        verdict = self.gate_start_bundle(bundle)  # before the state exists: the robot never runs a refused bundle
        self.state = SessionState(checkpoint=str(ckpt), bundle=str(bundle), start_gate=verdict)
        self.state.save(self.state_path)

    def gate_start_bundle(self, bundle: Path) -> dict[str, Any]:
        """The gate on the session's start bundle, before the robot moves: its absolute floors (falls, lin-vel
        error) in simulation on the session's task, there being no other bundle to compare with. Returns the
        measures; a refusal is a one-line error naming the bundle and what failed.
        """
        from unio4.sim.evaluate import evaluate_bundle

        g = self.cfg.gate
        measures = evaluate_bundle(bundle, self.task, g.backend, g.num_envs, g.seconds, seed=self.cfg.seed)
        refusals = gate_refusals(g, measures, measures, measures)
        if refusals:
            raise ValueError(
                f"{bundle}: the session's start bundle fails the gate in simulation ({g.backend}, {g.num_envs} robots x {g.seconds:g} s): "
                f"{'; '.join(refusals)}; the robot has not moved. Start from a checkpoint that passes, or relax the gate "
                "(--set session.gate.max_lin_vel_error=... / session.gate.max_falls_per_minute=...)"
            )
        return {**measures, "backend": g.backend, "num_envs": g.num_envs, "seconds": g.seconds, "passed": True}

    def iter_dir(self, k: int | None = None) -> Path:
        """The directory of iteration ``k`` (default: the current one)."""
        return self.root / f"iter_{self.state.iteration if k is None else k:03d}"

    def run(self, stop_after_phase: str | None = None) -> list[dict[str, Any]]:
        """Every remaining phase; ``stop_after_phase`` returns right after that phase (tests, dry runs)."""
        while True:
            if self.state.phase == "done":
                if self.state.iteration >= self.cfg.iterations or self.state.budget_spent:
                    return self.state.rows
                self.state.iteration += 1
                self.state.phase = "deploy"
                self.state.save(self.state_path)
            d = self.iter_dir()
            d.mkdir(parents=True, exist_ok=True)
            while self.state.phase in PHASES:
                phase = self.state.phase
                getattr(self, f"_{phase}")(d)
                if phase == "deploy" and not any(self._runs(d)):  # the budget left no room for a single rollout
                    self.state.budget_spent, self.state.phase = True, "done"
                    self.state.save(self.state_path)
                    return self.state.rows
                nxt = PHASES.index(phase) + 1
                self.state.phase = PHASES[nxt] if nxt < len(PHASES) else "done"
                self.state.save(self.state_path)
                if phase == stop_after_phase:
                    return self.state.rows

    # ---- phases ----------------------------------------------------------------------------
    @staticmethod
    def _runs(d: Path) -> list[Path]:
        """The rollout logs of an iteration (interrupted and empty ones set aside)."""
        return sorted(p for p in d.glob("run_*") if p.is_dir() and "." not in p.name)

    def _deploy(self, d: Path) -> None:
        cfg = self.cfg
        seconds = cfg.steps * load_robot(self.task.robot).control.policy_dt
        identify_mode = cfg.update == "identify"
        rollouts = len(cfg.identify_commands) if identify_mode else cfg.rollouts
        for r in range(rollouts):
            run = d / f"run_{r}"
            if (run / "summary.yaml").is_file():
                continue  # finished before an interruption
            if run.exists():  # kept aside, never overwritten: .interrupted, then .interrupted1, ...
                aside, k = run.with_name(f"{run.name}.interrupted"), 0
                while aside.exists():
                    k += 1
                    aside = run.with_name(f"{run.name}.interrupted{k}")
                run.rename(aside)
            if cfg.max_robot_minutes is not None and self.state.robot_seconds + seconds > 60 * cfg.max_robot_minutes:
                self.state.budget_spent = True
                print(f"session: robot-time budget {cfg.max_robot_minutes:g} min reached ({self.state.robot_seconds / 60:.2f} min used)")
                break
            if cfg.prompt:
                self.prompt(f"[iteration {self.state.iteration}, rollout {r + 1}/{rollouts}] reset the robot, then press Enter ")
            cmd = [sys.executable, "-m", "unio4.cli", "deploy", self.state.bundle, "--robot", cfg.robot, "--duration", f"{seconds:.3f}"]
            cmd += ["--out", str(run)]
            if not identify_mode:  # PPO learns from exploration; identification measures the mean action
                cmd += ["--explore", "--seed", str(cfg.seed + 1000 * self.state.iteration + r)]
            if cfg.local_port is not None:
                cmd += ["--local-port", str(cfg.local_port)]
            command = (cfg.identify_commands[r], 0.0, 0.0) if identify_mode else cfg.command
            if command is not None:
                cmd += ["--command", ",".join(str(x) for x in command)]
            started = time.monotonic()
            returncode, stderr = run_bounded(cmd, seconds + cfg.rollout_grace_s)
            connected = rollout_connected(run)
            if connected:  # robot time is time the robot ran: a rollout that never connected costs none
                self.state.robot_seconds += time.monotonic() - started
                self.state.save(self.state_path)
            if returncode not in (0, 3):  # 3: a safety stop, whose log is still data
                reason = (stderr.strip().splitlines() or [""])[-1].removeprefix("unio4: error: ")
                where = f"iteration {self.state.iteration}, {run.name}"
                if not connected:
                    if not any(run.glob("chunk_*")):
                        shutil.rmtree(run, ignore_errors=True)  # meta.yaml and no events: nothing to keep
                    raise SessionError(
                        f"{where}: {reason} (the robot did not move; no robot time charged; "
                        f"fix session.robot or the robot, then resume: unio4 session --out {self.root})"
                    )
                raise SessionError(f"{where}: deploy failed (exit {returncode}): {reason}; resume: unio4 session --out {self.root}")
            summary = run_summary(run)
            if summary.get("policy_steps", 0) == 0:  # stopped before the policy ran (e.g. no fresh state at connect): no data
                empty = run.with_name(f"{run.name}.empty{len(list(d.glob(f'{run.name}.empty*')))}")
                run.rename(empty)
                reason = summary.get("reason", "no summary")
                print(f"session: {empty.name}: the rollout ended before its first policy step ({reason}); set aside")
                if len(list(d.glob(f"{run.name}.empty*"))) >= 2:
                    raise SessionError(f"{run}: two rollouts in a row ended before the policy ran ({reason})")
                return self._deploy(d)  # again, from this rollout on

    def _pack(self, d: Path) -> None:
        pack_runs(self._runs(d), self.task).save(d / "data.h5")

    def _update(self, d: Path) -> None:
        if self.cfg.update == "identify":
            self._update_in_simulation(d)
            return
        from unio4.learning.data.dataset import load_dataset

        data = load_dataset(d / "data.h5")
        state = load_checkpoint(self.state.checkpoint)
        actor = actor_from_checkpoint(state, self.state.checkpoint).train()
        critic = ValueCritic(actor.obs_dim, actor_network(state))
        if "session_critic" in state:
            critic.load_state_dict(state["session_critic"])
        else:
            critic.normalizer.set_statistics(*data.observation_statistics(), freeze=True)
            fit_value(critic, data, self.cfg.ppo.gamma, self.cfg.critic_warmup_epochs, self.cfg.critic_lr, self.cfg.seed)
        torch.manual_seed(self.cfg.seed + self.state.iteration)
        ppo = PPO(actor, critic, self.cfg.ppo, seed=self.cfg.seed + self.state.iteration)
        stats = ppo.update(rollout_buffer(data, critic, self.cfg.ppo))
        new = {**state, "actor": actor.state_dict(), "session_critic": critic.state_dict(), "session_update": stats}
        new["session_iteration"] = self.state.iteration
        save_checkpoint(d / "checkpoint.pt", new)

    def _update_in_simulation(self, d: Path) -> None:
        """Identify the robot's motor strength and trunk mass from this iteration's rollouts, then PPO in simulation around them."""
        from unio4.learning.identify import IdentifyConfig, identify

        cfg = self.cfg
        seconds = cfg.steps * load_robot(self.task.robot).control.policy_dt
        result = identify(self._runs(d), Path(self.state.bundle), self.task, IdentifyConfig(), seconds=seconds)
        record = {"motor_strength": result.motor_strength, "added_mass": result.added_mass, "task_overrides": result.task_overrides()}
        write_atomic(d / "identify.yaml", yaml.safe_dump(record, sort_keys=False).encode())
        run = d / "sim_finetune"
        shutil.rmtree(run, ignore_errors=True)  # a fine-tune cut short starts over
        sim = cfg.sim
        cmd = [sys.executable, "-m", "unio4.cli", "train", "online", "--init", self.state.checkpoint, "--task", str(self.root / TASK_FILE)]
        cmd += ["--config", sim.config, "--iterations", str(sim.iterations), "--num-envs", str(sim.num_envs), "-o", str(run)]
        cmd += ["--seed", str(cfg.seed + self.state.iteration), "--set", f"train.seed={cfg.seed + self.state.iteration}"]
        cmd += [x for o in (*sim.task_overrides, *result.task_overrides()) for x in ("--set", f"task.{o}")]
        cmd += [x for o in sim.train_overrides for x in ("--set", f"train.{o}")]
        env = {**os.environ, **({"OMP_NUM_THREADS": str(sim.threads)} if sim.threads else {})}
        done = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or [""])[-1]
            raise SessionError(f"fine-tuning in simulation failed (exit {done.returncode}): {last}")
        shutil.copy(run / "checkpoints" / "final.pt", d / "checkpoint.pt")

    def gate_task(self, d: Path) -> TaskConfig:
        """The task the gate evaluates in: the session's, on the robot as identified this iteration (identify mode)."""
        fit = d / "identify.yaml"
        if self.cfg.update != "identify" or not fit.is_file():
            return self.task
        return self.task_with(yaml.safe_load(fit.read_text())["task_overrides"], where=str(fit))

    def task_with(self, overrides: list[str] | tuple[str, ...], where: str) -> TaskConfig:
        """The session's task with ``overrides`` applied and validated (a bad one names ``where``)."""
        from unio4.configs.loader import apply_overrides, from_dict

        return from_dict(TaskConfig, apply_overrides(to_dict(self.task), list(overrides)), where=where)

    def _export(self, d: Path) -> None:
        export_bundle(d / "checkpoint.pt", d / "bundle")

    def _gate(self, d: Path) -> None:
        from unio4.sim.evaluate import evaluate_bundle

        g = self.cfg.gate

        task = self.gate_task(d)

        def evaluate(bundle: str | Path) -> dict[str, float]:
            result = evaluate_bundle(bundle, task, g.backend, g.num_envs, g.seconds, seed=self.cfg.seed)
            return {**result, **self._identified_walks(d, bundle)}

        old, new = evaluate(self.state.bundle), evaluate(d / "bundle")
        start_bundle = self.root / "iter_000" / "bundle"
        if not self.state.gate_start:
            self.state.gate_start = old if Path(self.state.bundle) == start_bundle else evaluate(start_bundle)
        refusals = gate_refusals(g, new, old, self.state.gate_start)
        accepted = not refusals
        from unio4.learning.data.dataset import load_dataset

        data = load_dataset(d / "data.h5")
        episodes = max(1, int((data.terminals | data.timeouts).sum()))
        row = {
            "iteration": self.state.iteration,
            "steps": len(data),
            "logged_return": float(data.rewards.sum()) / episodes,
            "tracking_per_step": float(data.infos["reward_tracking_lin_vel"].mean()) if "reward_tracking_lin_vel" in data.infos else 0.0,
            # the current bundle on the robot, this iteration's rollouts: |forward speed held (leg odometry) - command|
            "robot_speed_error": self._robot_speed_error(d),
            "gate_error_old": old["lin_vel_error"],
            "gate_error_new": new["lin_vel_error"],
            "gate_error_start": self.state.gate_start["lin_vel_error"],
            "gate_falls_old": old["falls_per_robot_minute"],
            "gate_falls_new": new["falls_per_robot_minute"],
            "gate_walk_error_old": old.get("walk_speed_error", float("nan")),  # identify mode: on the identified robot
            "gate_walk_error_new": new.get("walk_speed_error", float("nan")),
            "gate_refused": "; ".join(refusals),
            # rollouts the safety layer ended early (a fall, or e.g. stale state): short episodes lower the logged return
            "safety_stops": sum(bool(reason) for reason in data.metadata.get("safety_stops", [])),
            "robot_minutes": self.state.robot_seconds / 60,  # used so far, this iteration's rollouts included
            "accepted": bool(accepted),
        }
        self.state.rows = [r for r in self.state.rows if r["iteration"] != self.state.iteration] + [row]
        if accepted:
            self.state.checkpoint, self.state.bundle = str(d / "checkpoint.pt"), str(d / "bundle")

    def _identified_walks(self, d: Path, bundle: str | Path) -> dict[str, float]:
        """Identify mode: ``walk_speed_error`` of ``bundle``, mean |forward speed - command| over the
        identification commands, walked (as on the robot, after its first ``skip_s``) in simulation on
        the robot as identified this iteration. Empty in PPO mode.
        """
        fit = d / "identify.yaml"
        if self.cfg.update != "identify" or not fit.is_file():
            return {}
        from unio4.learning.identify import IdentifyConfig, simulate_features

        estimate = yaml.safe_load(fit.read_text())
        robot = (float(estimate["motor_strength"]), float(estimate["added_mass"]))
        seconds = self.cfg.steps * load_robot(self.task.robot).control.policy_dt
        commands = list(self.cfg.identify_commands)
        walks = simulate_features(Path(bundle), self.task, commands, [robot], seconds, IdentifyConfig().skip_s)[robot]
        return {"walk_speed_error": float(np.mean([abs(walks[vx]["forward_speed"] - vx) for vx in commands]))}

    def _robot_speed_error(self, d: Path) -> float:
        """Mean over this iteration's rollouts of |forward speed held - commanded|, after the first
        ``IdentifyConfig.skip_s`` of each: how the bundle that ran them tracks on the robot. In
        identify mode the rollouts are mean-action walks, so iteration k measures the bundle the
        session had after k - 1 updates: the session's before/after, in robot time.
        """
        from unio4.learning.identify import IdentifyConfig, log_features

        errors = []
        for run in self._runs(d):
            vx, features = log_features(run, self.task, IdentifyConfig().skip_s)
            if np.isfinite(features["forward_speed"]):  # else: stopped before its steady part
                errors.append(abs(features["forward_speed"] - vx))
        return float(np.mean(errors)) if errors else float("nan")

    def _flash(self, d: Path) -> None:
        if self.cfg.flash_host is None or not self.state.rows[-1]["accepted"]:
            return
        from unio4.deploy.flash import SshTarget, flash

        flash(self.state.bundle, SshTarget(self.cfg.flash_host))


def rollout_connected(run: Path) -> bool:
    """Whether a deploy reached the robot: it closed its log (``summary.yaml``) or logged ``connected``."""
    from unio4.deploy.rollout_log import read_events

    return (run / "summary.yaml").is_file() or any(e.get("event") == "connected" for e in read_events(run))


def run_summary(run: Path) -> dict[str, Any]:
    """A deploy log's ``summary.yaml`` (policy steps, why it ended); empty when it is missing."""
    summary = run / "summary.yaml"
    return (yaml.safe_load(summary.read_text()) or {}) if summary.is_file() else {}


def run_bounded(cmd: list[str], timeout_s: float) -> tuple[int, str]:
    """Run a deploy child; past ``timeout_s`` it gets SIGTERM (its runtime damps and exits), SIGKILL 10 s later.

    Returns the exit code and stderr. A rollout stopped this way counts as a safety stop (exit 3): its log is data.
    """
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        _, stderr = proc.communicate(timeout=timeout_s)
        return proc.returncode, stderr
    except subprocess.TimeoutExpired:
        proc.terminate()
        try:
            _, stderr = proc.communicate(timeout=10.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, stderr = proc.communicate()
        return 3, f"{stderr}\nrollout stopped: still running {timeout_s:.0f} s after it started"


def gate_refusals(g: GateConfig, new: dict[str, float], current: dict[str, float], first: dict[str, float]) -> list[str]:
    """Why a new bundle must not replace the current one (empty: it passes).

    Absolute floors first (a bundle that falls is refused even when the current one falls more),
    then "no worse" against the current bundle and the session's first one, so that tolerated small
    losses cannot add up over iterations.
    """
    reasons = []
    falls, error = new["falls_per_robot_minute"], new["lin_vel_error"]
    if falls > g.max_falls_per_minute:
        reasons.append(f"falls {falls:.2f} per robot-minute > {g.max_falls_per_minute:g}")
    if error > g.max_lin_vel_error:
        reasons.append(f"lin-vel error {error:.3f} m/s > {g.max_lin_vel_error:g}")
    for name, ref in (("current", current), ("first", first)):
        if error > ref["lin_vel_error"] + g.max_tracking_increase:
            worse = f"{error:.3f} m/s vs the {name} bundle's {ref['lin_vel_error']:.3f}"
            reasons.append(f"lin-vel error {worse} (more than {g.max_tracking_increase:g} worse)")
        if falls > ref["falls_per_robot_minute"] + g.max_falls_increase:
            reasons.append(f"falls {falls:.2f} per robot-minute above the {name} bundle's {ref['falls_per_robot_minute']:.2f}")
        walk, ref_walk = new.get("walk_speed_error"), ref.get("walk_speed_error")
        if walk is not None and ref_walk is not None and walk > ref_walk + g.max_walk_error_increase:
            worse = f"{walk:.3f} m/s vs the {name} bundle's {ref_walk:.3f}"
            reasons.append(f"speed error on the identified robot's walks {worse} (more than {g.max_walk_error_increase:g} worse)")
    return reasons


def actor_network(state: dict[str, Any]) -> Any:
    """The network config of a checkpoint's actor."""
    from unio4.learning.checkpoint import checkpoint_network

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
def rollout_buffer(data: Dataset, critic: ValueCritic, cfg: PPOConfig) -> RolloutBuffer:
    """The logged rollouts as one on-policy batch (one column), GAE with time-outs bootstrapped."""
    n = len(data)
    buffer = RolloutBuffer(n, 1, data.observations.shape[1], data.observations.shape[1], data.actions.shape[1])
    values = critic(data.observations)
    rewards = data.rewards + cfg.gamma * critic(data.next_observations) * data.timeouts.float()  # bootstrap through time-outs
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
