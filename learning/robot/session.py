"""``unio4 session``: on-robot fine-tuning, one resumable iteration at a time.

Each iteration runs the phases

    check (a bundle not yet verified walks on the robot; one that tracks worse than the last verified
    bundle is rolled back) -> deploy (the update's rollouts on the robot, each in its own process)
    -> pack (rewards from raw state) -> update (a new checkpoint from them) -> export -> gate (sim-to-sim
    evaluation of the new bundle against the current one and the session's first one: a bundle it
    accepts is the next iteration's candidate) -> flash (the last verified bundle, to a robot host)

A session never leaves the robot worse than it found it (:mod:`unio4.learning.robot.robot_check`): the
gate in simulation is the cheap first filter, the robot the judge. The last iteration's candidate gets
a final iteration of check walks only.

What the rollouts are and how they become a checkpoint is the session's :class:`~unio4.learning.robot.session_update.Update`
(``update:`` in the config, :mod:`unio4.learning.robot.session_update`): ``ppo`` explores on the robot and runs PPO on
the rollouts; ``identify`` walks the mean action at ``identify_commands``, fits the simulator's motor strength
and trunk mass to the walks and fine-tunes in simulation around the fit, the gate then evaluating on the
robot as identified. The update also names the gate's task and its extra measures; the loop is the same.
Every iteration's row carries the robot's speed error of its rollouts, so iteration k measures, on the
robot, the bundle accepted after k - 1 updates.

The session records after every phase, atomically, where it is (``SESSION/state.json``), so a crash or
Ctrl-C resumes at the phase that did not finish: a deploy cut short is kept aside as
``*.interrupted`` and run again, as is once a rollout that ended before its first policy step
(``*.empty0``: no data; twice in a row stops the session); finished phases are never repeated. The settings the session
started with (config and task, overrides included) are stored beside the state and used on resume.
Deploy time on the robot is counted across iterations; with ``max_robot_minutes`` the session stops
between rollouts before it would pass the budget (a rollout costing what the ones before cost on average),
and with the check on it makes no update whose bundle the budget could not walk on the robot.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from unio4.configs.loader import to_dict
from unio4.deploy.flash import SshTarget, flash
from unio4.deploy.rollout import EXIT_SAFETY_STOP, SDK_LOCAL_PORT, RolloutRequest, run_rollout_process
from unio4.deploy.rollout_log import read_events, write_atomic
from unio4.learning.checkpoint import load_checkpoint, save_checkpoint
from unio4.learning.data.dataset import load_dataset
from unio4.learning.data.pack import pack_runs
from unio4.learning.export import checkpoint_task, export_bundle, init_checkpoint
from unio4.learning.policy import with_std_range
from unio4.learning.robot.identify import log_features
from unio4.learning.robot.robot_check import WalkMeasure, comparison, measure_walks, walks_worse
from unio4.learning.robot.session_config import CONFIG_FILE, TASK_FILE, GateConfig, SessionConfig, SessionError, SimFinetuneConfig
from unio4.learning.robot.session_update import Iteration, RolloutPlan, Update, actor_network, make_update, task_with
from unio4.robots.description import load_robot
from unio4.sim.config import TaskConfig, load_task_config
from unio4.sim.evaluate import evaluate_bundle

__all__ = [
    "CONFIG_FILE",
    "PHASES",
    "TASK_FILE",
    "GateConfig",
    "Session",
    "SessionConfig",
    "SessionError",
    "SessionState",
    "SimFinetuneConfig",
    "actor_network",
    "gate_refusals",
    "rollout_connected",
    "rollout_logs",
    "run_summary",
    "start_task",
]

PHASES = ("check", "deploy", "pack", "update", "export", "gate", "flash")


@dataclass
class SessionState:
    """Where a session is: iteration, phase, current checkpoint and bundle, rows so far."""

    iteration: int = 1
    phase: str = PHASES[0]  # the next phase to run; "done" when the iteration has finished
    checkpoint: str = ""  # the accepted (current) checkpoint
    bundle: str = ""  # the accepted (current) bundle
    rows: list[dict[str, Any]] = field(default_factory=list)
    gate_start: dict[str, float] = field(default_factory=dict)  # the gate's measures of the session's first bundle
    # The gate's verdict on the start bundle (iter_000, from --init), taken before the first rollout: a
    # session exists only once it passed, so a resume never gates it again. Empty: a session started
    # before the start bundle was gated.
    start_gate: dict[str, Any] = field(default_factory=dict)
    robot_seconds: float = 0.0  # deploy time on the robot so far: every rollout from connect to its end, all iterations
    robot_walks: int = 0  # the rollouts that time counts (check walks and update rollouts): their mean cost plans the budget
    budget_spent: bool = False  # the robot-time budget ended the session
    verified: dict[str, Any] = field(default_factory=dict)  # the last bundle verified on the robot (a WalkMeasure); empty: none yet
    checks: list[dict[str, Any]] = field(default_factory=list)  # every on-robot check: the bundle's walks and the verdict
    walked: str = ""  # the bundle that ran this iteration's check walks (identify mode: its identification walks)
    final_check: bool = False  # the iteration after the last one: the last candidate's verification walks only
    flashed: str = ""  # the bundle last flashed to the robot (the start bundle: what the robot ran before)

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
        self.rollout_s = cfg.steps * load_robot(task.robot).control.policy_dt  # one rollout's policy time
        task_with(task, cfg.sim.task_overrides, where="session.sim.task_overrides")  # fail now, not after the robot's walks
        self.mode: Update = make_update(cfg, task, root / TASK_FILE, self.rollout_s)

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
        # the start bundle is what the robot ran before: verified by definition, its reference walk still to come
        verified = WalkMeasure(math.nan, math.nan, bundle=str(bundle), checkpoint=str(ckpt)).as_dict()
        self.state = SessionState(checkpoint=str(ckpt), bundle=str(bundle), start_gate=verdict, flashed=str(bundle), verified=verified)
        self.state.save(self.state_path)

    def gate_start_bundle(self, bundle: Path) -> dict[str, Any]:
        """The gate on the session's start bundle, before the robot moves: its absolute floors (falls, lin-vel
        error) in simulation on the session's task, there being no other bundle to compare with. Returns the
        measures; a refusal is a one-line error naming the bundle and what failed.
        """
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

    # ---- the loop ----------------------------------------------------------------------------
    def run(self, stop_after_phase: str | None = None) -> list[dict[str, Any]]:
        """Every remaining phase; ``stop_after_phase`` returns right after that phase (tests, dry runs)."""
        phases: dict[str, Callable[[Path], None]] = {
            "check": self._check,
            "deploy": self._deploy,
            "pack": self._pack,
            "update": self._update,
            "export": self._export,
            "gate": self._gate,
            "flash": self._flash,
        }
        while self._next_iteration():
            d = self.iter_dir()
            d.mkdir(parents=True, exist_ok=True)
            while self.state.phase in PHASES:
                phase = self.state.phase
                if phase == "deploy" and not self._room_for_a_candidate(d):
                    return self._end_on_budget("no update: the robot-time budget could not walk its bundle on the robot")
                phases[phase](d)
                if phase == "deploy" and not rollout_logs(d):  # the budget left no room for a single rollout
                    return self._end_on_budget("no rollout fitted in the robot-time budget")
                self._enter("flash" if phase == "check" and self.state.final_check else next_phase(phase))
                if phase == stop_after_phase:
                    return self.state.rows
        return self.state.rows

    def _next_iteration(self) -> bool:
        """Whether there is an iteration to work on: the current one, unfinished, or the next one (entered here)."""
        if self.state.phase != "done":
            return True
        last = self.state.iteration >= self.cfg.iterations or self.state.budget_spent
        if last and (self.state.final_check or not self._unverified()):
            return False
        if last and self.state.budget_spent:  # no robot time left to walk the last candidate: it never becomes current
            self._roll_back("the robot-time budget left no time to walk it on the robot")
            self._enter("done")
            return False
        self.state.iteration += 1
        self.state.final_check = last
        self._enter(PHASES[0])
        return True

    def _end_on_budget(self, reason: str) -> list[dict[str, Any]]:
        """The session ends in this iteration, before its update, the session saying why; the rows so far."""
        print(f"session: iteration {self.state.iteration}: {reason}; the session ends on {self.state.bundle}")
        self.state.budget_spent = True
        self._enter("done")
        return self.state.rows

    def _room_for_a_candidate(self, d: Path) -> bool:
        """Whether the budget fits this iteration's rollouts still to run and then the check walks of the bundle
        they would make: a bundle that cannot walk on the robot never becomes current, so its update would only
        spend robot time. Always, without a budget or with the check off.
        """
        if not self.cfg.check.enabled:
            return True
        to_run = max(0, len(self.mode.rollouts(self.state.iteration)) - len(rollout_logs(d)))
        return self._fits(to_run + sum(len(plans) for plans in check_walks(self.cfg).values()))

    def _fits(self, walks: int) -> bool:
        """Whether ``walks`` more rollouts fit in ``max_robot_minutes`` (always, without a budget)."""
        limit = self.cfg.max_robot_minutes
        return limit is None or self.state.robot_seconds + walks * self._walk_cost() <= 60 * limit

    def _walk_cost(self) -> float:
        """Robot seconds one rollout is expected to cost: the mean so far (stand-up and damping included), at least its policy time."""
        s = self.state
        return max(self.rollout_s, s.robot_seconds / s.robot_walks) if s.robot_walks else self.rollout_s

    def _enter(self, phase: str) -> None:
        """Record ``phase`` as the next one to run."""
        self.state.phase = phase
        self.state.save(self.state_path)

    # ---- phases ----------------------------------------------------------------------------
    def _check(self, d: Path) -> None:
        """A current bundle not yet verified on the robot walks there (mean action, the check commands) and
        is kept or rolled back to the last verified one; the session's start bundle walks first, as the reference.
        """
        self.state.walked = self.state.bundle
        c = self.cfg.check
        if not self._needs_walks():
            return
        walks_by_prefix = check_walks(self.cfg)
        runs = [run for prefix, plans in walks_by_prefix.items() for run in self._walk(d, plans, prefix, "check walk")]
        if len(runs) < sum(len(plans) for plans in walks_by_prefix.values()):  # the robot-time budget stopped the walks
            if self._unverified():
                self._roll_back("the robot-time budget left no time to walk it on the robot")
            return
        readings = measure_walks(runs, self.task, c)
        if self.cfg.tracker and not math.isfinite(readings.tracked):
            share = f"{c.min_tracked:.0%}"
            print(f"session: the tracking camera at {self.cfg.tracker} read under {share} of a check walk's steps: judged by leg odometry")
        walks = WalkMeasure(
            **readings.__dict__, bundle=self.state.bundle, checkpoint=self.state.checkpoint, walks=len(runs), iteration=self.state.iteration
        )
        record: dict[str, Any] = {"iteration": self.state.iteration, **walks.as_dict(), "verdict": "start"}  # start: the reference
        if self._unverified() and self.state.verified.get("walks"):
            verified = WalkMeasure(**self.state.verified)
            worse = walks_worse(walks, verified, c)
            how, mine, theirs, allowed = comparison(walks, verified, c)
            record.update(verdict="rolled back" if worse else "kept", reference_error=theirs, tolerance=allowed, read=how)
            if worse:
                record["reason"] = f"speed error on the robot {mine:.3f} m/s vs {theirs:.3f} {how} (tolerance {allowed:.3f})"
                self._roll_back(record["reason"])
        if record["verdict"] != "rolled back":
            self.state.verified = walks.as_dict()
        self.state.checks = [r for r in self.state.checks if r["iteration"] != self.state.iteration] + [record]

    def _unverified(self) -> bool:
        """Whether the current bundle is a candidate: it differs from the last verified one, which it would roll back to."""
        v = self.state.verified
        return self.cfg.check.enabled and bool(v) and self.state.bundle != v["bundle"]

    def _needs_walks(self) -> bool:
        """Whether this iteration's check walks the current bundle: a candidate, or a start bundle without its reference walk."""
        v = self.state.verified
        return self.cfg.check.enabled and (self._unverified() or not v.get("walks"))

    def _roll_back(self, reason: str) -> None:
        """The last verified bundle becomes current again, the session saying why."""
        v = self.state.verified
        print(f"session: iteration {self.state.iteration}: {self.state.bundle} rolled back to {v['bundle']}: {reason}")
        self.state.bundle, self.state.checkpoint = v["bundle"], v["checkpoint"]

    def _deploy(self, d: Path) -> None:
        """The update's rollouts that have no finished log yet, the operator prompted before each."""
        self._walk(d, self.mode.rollouts(self.state.iteration), "run", "rollout")

    def _walk(self, d: Path, plans: list[RolloutPlan], prefix: str, label: str) -> list[Path]:
        """Rollouts ``plans`` as ``d/PREFIX_0``, ... that have no finished log yet, the operator prompted
        before each; the finished logs.
        """
        for r, plan in enumerate(plans):
            run = d / f"{prefix}_{r}"
            if (run / "summary.yaml").is_file():
                continue  # finished before an interruption
            if run.exists():
                set_aside_interrupted(run)
            if self._budget_reached():
                break
            if self.cfg.prompt:
                self.prompt(f"[iteration {self.state.iteration}, {label} {r + 1}/{len(plans)}] reset the robot, then press Enter ")
            self._rollout(run, plan)
            if not self._reached_the_policy(run):
                return self._walk(d, plans, prefix, label)  # again, from this rollout on
        return rollout_logs(d, prefix)

    def _budget_reached(self) -> bool:
        """Whether one more rollout would pass ``max_robot_minutes`` (the session then ends after this iteration)."""
        if self._fits(1):
            return False
        self.state.budget_spent = True
        print(f"session: robot-time budget {self.cfg.max_robot_minutes:g} min reached ({self.state.robot_seconds / 60:.2f} min used)")
        return True

    def _rollout(self, run: Path, plan: RolloutPlan) -> None:
        """One rollout in its own process (the real-time loop away from the learner; a crash there is an exit code)."""
        cfg = self.cfg
        request = RolloutRequest(
            bundle=self.state.bundle,
            robot=cfg.robot,
            duration=round(self.rollout_s, 3),  # whole milliseconds: a readable command line, the same SDK ticks
            out=str(run),
            explore=plan.explore,
            seed=plan.seed,
            local_port=SDK_LOCAL_PORT if cfg.local_port is None else cfg.local_port,
            command=plan.command,
            runtime_overrides=(*cfg.runtime_overrides, *((f"tracker.address={cfg.tracker}",) if cfg.tracker else ())),
        )
        started = time.monotonic()
        returncode, stderr = run_rollout_process(request, self.rollout_s + cfg.rollout_grace_s)
        connected = rollout_connected(run)
        if connected:  # robot time is time the robot ran: a rollout that never connected costs none
            self.state.robot_seconds += time_on_robot(run, time.monotonic() - started, time.time())
            self.state.robot_walks += 1
            self.state.save(self.state_path)
        if returncode in (0, EXIT_SAFETY_STOP):  # a safety stop's log is still data
            return
        reason = (stderr.strip().splitlines() or [""])[-1].removeprefix("unio4: error: ")
        where, resume = f"iteration {self.state.iteration}, {run.name}", f"unio4 session --out {self.root}"
        if connected:
            raise SessionError(f"{where}: deploy failed (exit {returncode}): {reason}; resume: {resume}")
        if not any(run.glob("chunk_*")):
            shutil.rmtree(run, ignore_errors=True)  # meta.yaml and no events: nothing to keep
        moved = "the robot did not move; no robot time charged; fix session.robot or the robot, then resume"
        raise SessionError(f"{where}: {reason} ({moved}: {resume})")

    def _reached_the_policy(self, run: Path) -> bool:
        """Whether ``run`` logged a policy step; if not, it is set aside (``.emptyN``: no data) and a second such
        rollout in a row ends the session.
        """
        summary = run_summary(run)
        if summary.get("policy_steps", 0) != 0:
            return True
        empties = f"{run.name}.empty*"
        empty = run.with_name(f"{run.name}.empty{len(list(run.parent.glob(empties)))}")
        run.rename(empty)
        reason = summary.get("reason", "no summary")
        print(f"session: {empty.name}: the rollout ended before its first policy step ({reason}); set aside")
        if len(list(run.parent.glob(empties))) >= 2:
            raise SessionError(f"{run}: two rollouts in a row ended before the policy ran ({reason})")
        return False

    def _pack(self, d: Path) -> None:
        pack_runs(rollout_logs(d), self.task).save(d / "data.h5")

    def _update(self, d: Path) -> None:
        runs = tuple(rollout_logs(d))
        walked = Path(self.state.walked or self.state.bundle)  # a rolled-back candidate's walks are still data
        checks = tuple(rollout_logs(d, "check"))  # this iteration's check walks: by ``walked`` too
        self.mode.update(Iteration(self.state.iteration, d, runs, Path(self.state.checkpoint), Path(self.state.bundle), walked, checks))

    def _export(self, d: Path) -> None:
        export_bundle(d / "checkpoint.pt", d / "bundle")

    def _gate(self, d: Path) -> None:
        """The new bundle against the current one and the session's first, in the update's gate task; the row."""
        g = self.cfg.gate
        task = self.mode.gate_task(d)

        def evaluate(bundle: str | Path) -> dict[str, float]:
            result = evaluate_bundle(bundle, task, g.backend, g.num_envs, g.seconds, seed=self.cfg.seed)
            return {**result, **self.mode.gate_measures(d, Path(bundle))}

        old, new = evaluate(self.state.bundle), evaluate(d / "bundle")
        start_bundle = self.root / "iter_000" / "bundle"
        if not self.state.gate_start:
            self.state.gate_start = old if Path(self.state.bundle) == start_bundle else evaluate(start_bundle)
        judged = self.mode.gate_judges_tracking(d)
        refusals = gate_refusals(g, new, old, self.state.gate_start, tracking=judged)
        row = self._row(d, old, new, refusals) | {"gate_judged_tracking": judged}  # False: left to the robot's check
        self.state.rows = [r for r in self.state.rows if r["iteration"] != self.state.iteration] + [row]
        if row["accepted"]:
            self.state.checkpoint, self.state.bundle = str(d / "checkpoint.pt"), str(d / "bundle")

    def _row(self, d: Path, old: dict[str, float], new: dict[str, float], refusals: list[str]) -> dict[str, Any]:
        """The iteration's row: its logs, its robot-measured speed error, the gate's measures and verdict."""
        data = load_dataset(d / "data.h5")
        episodes = max(1, int((data.terminals | data.timeouts).sum()))
        return {
            "iteration": self.state.iteration,
            "steps": len(data),
            "logged_return": float(data.rewards.sum()) / episodes,
            "tracking_per_step": float(data.infos["reward_tracking_lin_vel"].mean()) if "reward_tracking_lin_vel" in data.infos else 0.0,
            # the current bundle on the robot, this iteration's rollouts: |forward speed held (leg odometry) - command|
            "robot_speed_error": self.robot_speed_error(d),
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
            "accepted": not refusals,
            "robot_check": next((c["verdict"] for c in self.state.checks if c["iteration"] == self.state.iteration), ""),
        }

    def robot_speed_error(self, d: Path) -> float:
        """Mean over this iteration's rollouts of |forward speed held - commanded|, after the first
        ``identify.skip_s`` of each: how the bundle that ran them tracks on the robot. In
        identify mode the rollouts are mean-action walks, so iteration k measures the bundle the
        session had after k - 1 updates: the session's before/after, in robot time.
        """
        errors = []
        for run in rollout_logs(d):
            log = log_features(run, self.task, self.cfg.identify.skip_s, self.cfg.identify.min_tracked)
            if np.isfinite(log.features["forward_speed"]):  # else: stopped before its steady part
                errors.append(abs(log.features["forward_speed"] - log.command))
        return float(np.mean(errors)) if errors else float("nan")

    def _flash(self, d: Path) -> None:
        """The last verified bundle (with the check off: the last accepted one) to the robot host, if it changed."""
        bundle = self.state.verified.get("bundle", self.state.flashed) if self.cfg.check.enabled else self.state.bundle
        if self.cfg.flash_host is None or bundle == self.state.flashed:
            return
        flash(bundle, SshTarget(self.cfg.flash_host))
        self.state.flashed = bundle


def start_task(init: Path, overrides: Sequence[str] = ()) -> TaskConfig:
    """A new session's task when none is named: the one ``init`` (a checkpoint or bundle) was trained on, so the
    fine-tunes keep the rewards and randomisation that shaped its gait; ``go1_flat`` for a checkpoint that records none.
    """
    checkpoint = init_checkpoint(init)
    task = checkpoint_task(load_checkpoint(checkpoint), checkpoint, overrides)
    return task if task is not None else load_task_config("go1_flat", list(overrides))


def next_phase(phase: str) -> str:
    """The phase after ``phase``; "done" after the last."""
    k = PHASES.index(phase) + 1
    return PHASES[k] if k < len(PHASES) else "done"


def check_walks(cfg: SessionConfig) -> dict[str, list[RolloutPlan]]:
    """The check's mean-action walks by log prefix: forward at ``check.commands`` (None: identify mode's
    identification walks, logged as ``run_*`` and shared with the update, or the session command's forward
    speed), then ``check.extra_commands``, as ``check_*``.
    """
    c = cfg.check
    shared = cfg.update == "identify" and c.commands is None
    forward = c.commands if c.commands is not None else cfg.identify_commands if shared or cfg.command is None else (cfg.command[0],)
    plans = [RolloutPlan((vx, 0.0, 0.0), explore=False) for vx in forward]
    extra = [RolloutPlan(command, explore=False) for command in c.extra_commands]
    return {"run": plans, "check": extra} if shared else {"check": plans + extra}


def rollout_logs(d: Path, prefix: str = "run") -> list[Path]:
    """The rollout logs of an iteration (``check``: its check walks; interrupted and empty ones set aside)."""
    return sorted(p for p in d.glob(f"{prefix}_*") if p.is_dir() and "." not in p.name)


def set_aside_interrupted(run: Path) -> None:
    """Keep a rollout cut short beside its next try, never overwritten: ``.interrupted``, then ``.interrupted1``, ..."""
    aside, k = run.with_name(f"{run.name}.interrupted"), 0
    while aside.exists():
        k += 1
        aside = run.with_name(f"{run.name}.interrupted{k}")
    run.rename(aside)


def rollout_connected(run: Path) -> bool:
    """Whether a deploy reached the robot: it closed its log (``summary.yaml``) or logged ``connected``."""
    return (run / "summary.yaml").is_file() or any(e.get("event") == "connected" for e in read_events(run))


def time_on_robot(run: Path, wall_s: float, ended_at: float) -> float:
    """A rollout's robot time: from the runtime's ``connected`` (its log's clock) to the process's end at ``ended_at``,
    not the process's start-up before it; its wall time ``wall_s`` where the log gives no connect time inside it.
    """
    at = next((e.get("time") for e in read_events(run) if e.get("event") == "connected"), None)
    if not isinstance(at, int | float) or not math.isfinite(at):
        return wall_s
    return min(wall_s, max(0.0, ended_at - at))


def run_summary(run: Path) -> dict[str, Any]:
    """A deploy log's ``summary.yaml`` (policy steps, why it ended); empty when it is missing."""
    summary = run / "summary.yaml"
    return (yaml.safe_load(summary.read_text()) or {}) if summary.is_file() else {}


def gate_refusals(
    g: GateConfig, new: dict[str, float], current: dict[str, float], first: dict[str, float], tracking: bool = True
) -> list[str]:
    """Why a new bundle must not replace the current one (empty: it passes).

    Absolute floors first (a bundle that falls is refused even when the current one falls more),
    then "no worse" against the current bundle and the session's first one, so that tolerated small
    losses cannot add up over iterations. ``tracking`` False: the no-worse rules on tracking are left to the robot
    (a command calibration changes the simulated tracking on purpose: it corrects what the simulator misses).
    """
    reasons = []
    falls, error = new["falls_per_robot_minute"], new["lin_vel_error"]
    if falls > g.max_falls_per_minute:
        reasons.append(f"falls {falls:.2f} per robot-minute > {g.max_falls_per_minute:g}")
    if error > g.max_lin_vel_error:
        reasons.append(f"lin-vel error {error:.3f} m/s > {g.max_lin_vel_error:g}")
    for name, ref in (("current", current), ("first", first)):
        if tracking and error > ref["lin_vel_error"] + g.max_tracking_increase:
            worse = f"{error:.3f} m/s vs the {name} bundle's {ref['lin_vel_error']:.3f}"
            reasons.append(f"lin-vel error {worse} (more than {g.max_tracking_increase:g} worse)")
        if falls > ref["falls_per_robot_minute"] + g.max_falls_increase:
            reasons.append(f"falls {falls:.2f} per robot-minute above the {name} bundle's {ref['falls_per_robot_minute']:.2f}")
        walk, ref_walk = new.get("walk_speed_error"), ref.get("walk_speed_error")
        if tracking and walk is not None and ref_walk is not None and walk > ref_walk + g.max_walk_error_increase:
            worse = f"{walk:.3f} m/s vs the {name} bundle's {ref_walk:.3f}"
            reasons.append(f"speed error on the identified robot's walks {worse} (more than {g.max_walk_error_increase:g} worse)")
    return reasons
