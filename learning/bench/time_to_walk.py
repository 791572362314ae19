"""Time to walk: PPO from scratch on the Go1 task until the deterministic policy walks.

"Walks" is :class:`WalkCriterion`: over the task's command range, the mean action of the policy
tracks the commanded planar velocity within ``max_lin_vel_error`` and the yaw rate within
``max_yaw_rate_error``, with at most ``max_falls_per_minute`` falls per robot-minute, on
``num_envs`` randomised robots for ``seconds`` (:func:`unio4.sim.evaluate.tracking_metrics`, the metrics
of ``unio4 eval``). The evaluation robots and their commands are the same at every check.

"Walks well" (:meth:`WalkCriterion.walks_well`, ``unio4 bench walk --well``) is the stricter bar: tighter
tracking, and the gait itself judged on the same rollout (:mod:`unio4.sim.gait_metrics`): no non-foot
ground contact, swing feet lifted, joints off their torque limits. docs/benchmarks/time-to-walk.md, "Walks well".

The benchmark reports samples and training wall clock (collection + updates; the checks
themselves are the instrument and are timed apart) at the first check that walks.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from unio4.learning.loggers import LoggerSpec
from unio4.learning.online.envs import go1_run_state
from unio4.learning.online.runner import OnlineConfig, train_online
from unio4.learning.policy import GaussianActor
from unio4.sim.config import TaskConfig
from unio4.sim.evaluate import tracking_metrics
from unio4.sim.gait_metrics import GaitMetrics, GaitMetricsConfig
from unio4.sim.gait_recording import GaitRecorder
from unio4.sim.task import Go1VelocityTask


@dataclass(frozen=True)
class WalkCriterion:
    """When a policy counts as walking (checked on the mean action).

    The tracking bars always apply. The gait bounds (``None``: not checked, the plain "walks") are
    judged on gait metrics recorded during the same rollout (:class:`unio4.sim.gait_recording.GaitRecorder`,
    docs/gait.md); any of them set makes the check record the walk, on a judge that also reports hip
    and calf contacts. :meth:`walks_well` is the stricter preset; :func:`failed_bars` is the verdict.
    """

    max_lin_vel_error: float = 0.25  # m/s, mean |v_cmd,xy - v_xy|
    max_yaw_rate_error: float = 0.3  # rad/s
    max_falls_per_minute: float = 0.0  # per robot-minute
    num_envs: int = 16
    seconds: float = 10.0
    seed: int = 10_000
    name: str = "walk"  # what the benchmark times: "time to <name>" (table titles, result JSON)
    max_body_contacts_per_minute: float | None = None  # non-foot ground-contact onsets per robot-minute
    min_swing_apex: float | None = None  # m, mean highest point of the swing feet above the ground
    max_torque_saturation: float | None = None  # fraction of robot-steps with a joint above torque_fraction of its limit
    torque_fraction: float = 0.9  # of a joint's torque limit: "at the limit" above it (for max_torque_saturation)

    @classmethod
    def walks_well(cls, **overrides: Any) -> WalkCriterion:
        """The "walks well" preset: tracking within 0.10 m/s and 0.15 rad/s over the full command range,
        no fall, no trunk, hip, thigh or calf touching the ground, swing feet at least 4 cm up on average,
        and a joint above 90 % of its torque limit on at most 1 % of robot-steps.

        Why these: the plain bar passes a policy that shuffles, drags a knee or leans on its motors'
        limits; these bars ask for what the hardware wants (docs/benchmarks/time-to-walk.md, "Walks well").
        ``overrides`` change any field (the tests' fewer robots and seconds).
        """
        bars: dict[str, Any] = {
            "name": "walk well",
            "max_lin_vel_error": 0.10,
            "max_yaw_rate_error": 0.15,
            "max_falls_per_minute": 0.0,
            "max_body_contacts_per_minute": 0.0,
            "min_swing_apex": 0.04,
            "max_torque_saturation": 0.01,
            "torque_fraction": 0.9,
        }
        return cls(**{**bars, **overrides})

    @property
    def checks_gait(self) -> bool:
        """Whether any gait bound is set (the check then records the walk's gait metrics)."""
        return any(b is not None for b in (self.max_body_contacts_per_minute, self.min_swing_apex, self.max_torque_saturation))

    def gait_config(self, task_cfg: TaskConfig) -> GaitMetricsConfig:
        """The gait metrics' thresholds for this criterion: the task's foot contact threshold, its torque fraction."""
        return GaitMetricsConfig(foot_contact_force=task_cfg.rewards.contact_threshold, torque_fraction=self.torque_fraction)

    def walks(self, metrics: dict[str, float], gait: GaitMetrics | None = None) -> bool:
        """Whether ``metrics`` (from :func:`unio4.sim.evaluate.tracking_metrics`) and ``gait`` meet the criterion."""
        return not failed_bars(self, metrics, gait)


def failed_bars(criterion: WalkCriterion, tracking: dict[str, float], gait: GaitMetrics | None = None) -> list[str]:
    """The bars of ``criterion`` that a rollout fails, by metric key (empty: it walks); a pure function.

    ``tracking``: :func:`unio4.sim.evaluate.tracking_metrics`; ``gait``: the same rollout's gait metrics,
    required when the criterion has gait bounds. A NaN (not measurable: no complete swing, no contact
    data) fails its bar: what was not seen is not passed.
    """
    upper = [
        ("lin_vel_error", tracking["lin_vel_error"], criterion.max_lin_vel_error),
        ("yaw_rate_error", tracking["yaw_rate_error"], criterion.max_yaw_rate_error),
        ("falls_per_robot_minute", tracking["falls_per_robot_minute"], criterion.max_falls_per_minute),
    ]
    lower: list[tuple[str, float, float]] = []
    if criterion.checks_gait:
        if gait is None:
            raise ValueError("the criterion has gait bounds: judge it with the rollout's gait metrics")
        upper += [
            (key, getattr(gait, key), bound)
            for key, bound in (
                ("body_contacts_per_minute", criterion.max_body_contacts_per_minute),
                ("torque_saturation", criterion.max_torque_saturation),
            )
            if bound is not None
        ]
        if criterion.min_swing_apex is not None:
            lower.append(("swing_apex", gait.swing_apex, criterion.min_swing_apex))
    failed = [key for key, value, bound in upper if not value <= bound]
    return failed + [key for key, value, bound in lower if not value >= bound]


@dataclass
class WalkResult:
    """When the policy first walked (or how far training got), and every check."""

    walked: bool
    samples: int  # environment samples when the check that walked started (or at the end)
    train_seconds: float  # collection + update wall clock up to then
    eval_seconds: float  # wall clock of the checks
    checks: list[dict[str, Any]] = field(default_factory=list)  # walk.jsonl's rows


class WalkChecker:
    """The instrument of the benchmark: checks the criterion every ``check_every_samples`` samples.

    Any learner drives it with :meth:`after_iteration` after each update; it evaluates the mean
    action on its own fixed robots, appends one line per check to ``run_dir/walk.jsonl`` and keeps
    the first check that walks in :attr:`result`. Training wall clock is what the learner reports
    (collection + update); the checks are timed apart.

    A criterion with gait bounds also records the rollout (:class:`unio4.sim.gait_recording.GaitRecorder`,
    on a judge that reports hip and calf contacts); its rows then carry the gait metrics (``"gait"``) and
    the bars that failed (``"failed"``). Without gait bounds nothing is recorded and the rows are as before.
    """

    def __init__(
        self,
        task_cfg: TaskConfig,
        run_dir: Path,
        check_every_samples: int,
        criterion: WalkCriterion | None = None,
        backend: str = "mujoco",
        num_threads: int | None = None,
    ) -> None:
        self.criterion = criterion or WalkCriterion()
        self.check_every = check_every_samples
        gait = self.criterion.checks_gait
        self.judge = Go1VelocityTask(
            task_cfg, self.criterion.num_envs, backend=backend, seed=self.criterion.seed, num_threads=num_threads, link_contacts=gait
        )
        self.recorder = GaitRecorder(self.judge, self.criterion.gait_config(task_cfg)) if gait else None
        self.steps = int(round(self.criterion.seconds / self.judge.dt))
        run_dir.mkdir(parents=True, exist_ok=True)
        self.run_dir = run_dir
        self.log_path = run_dir / "walk.jsonl"
        self.log_path.write_text("")
        self.result = WalkResult(walked=False, samples=0, train_seconds=0.0, eval_seconds=0.0)
        self.train_seconds = 0.0
        self.next_check = check_every_samples

    def after_iteration(
        self, samples: int, train_seconds: float, reward_per_step: float, policy: Callable[[torch.Tensor], torch.Tensor], last: bool
    ) -> bool:
        """Account one update (``train_seconds`` of collection + update); check when due or ``last``.

        Returns whether the policy has walked at some check.
        """
        self.train_seconds += train_seconds
        if samples < self.next_check and not last:
            return self.result.walked
        self.next_check += self.check_every
        t0 = time.perf_counter()
        with torch.no_grad():
            metrics = tracking_metrics(self.judge, policy, self.steps, seed=self.criterion.seed, recorder=self.recorder)
        gait = self.recorder.metrics() if self.recorder is not None else None
        self.result.eval_seconds += time.perf_counter() - t0
        failed = failed_bars(self.criterion, metrics, gait)
        walks = not failed
        row: dict[str, Any] = {"samples": samples, "train_s": self.train_seconds, "walks": walks, "reward/step": reward_per_step, **metrics}
        if gait is not None:
            row.update(gait=gait.as_dict(), failed=failed)
        self.result.checks.append(row)
        with self.log_path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        if not self.result.walked:
            self.result.walked = walks
            self.result.samples, self.result.train_seconds = samples, self.train_seconds
        return self.result.walked

    def close(self) -> WalkResult:
        """Write ``walk_result.json`` and release the evaluation robots."""
        self.judge.close()
        summary = {**asdict(self.result), "criterion": asdict(self.criterion)}
        (self.run_dir / "walk_result.json").write_text(json.dumps(summary, indent=1))
        return self.result


@dataclass(frozen=True)
class WalkRun:
    """One time-to-walk run, whichever learner trains: the task, the preset, the budget and the checks."""

    task_cfg: TaskConfig
    train_cfg: OnlineConfig
    run_dir: Path
    num_envs: int
    max_samples: int
    check_every_samples: int
    criterion: WalkCriterion | None = None
    backend: str = "mujoco"
    seed: int = 0
    stop_when_walking: bool = True
    show_progress: bool = True
    num_threads: int | None = None
    logger: LoggerSpec = field(default_factory=LoggerSpec)  # where the scalars go besides metrics.jsonl (--logger)
    judge_task_cfg: TaskConfig | None = None  # the checks' task (commands, randomisation); None: the training task

    def iterations(self, steps_per_env: int) -> int:
        """Learner iterations of ``steps_per_env`` steps per robot that cover ``max_samples``."""
        return -(-self.max_samples // (steps_per_env * self.num_envs))

    def robots_and_checker(self) -> tuple[Go1VelocityTask, WalkChecker]:
        """The training robots (from scratch: the command curriculum applies) and the walking checks.

        The checks run on ``judge_task_cfg`` when set, so that what a run is judged on does not move with what
        it trains on (pushes, randomisation ranges); otherwise on the training task.
        """
        task = Go1VelocityTask(
            self.task_cfg, self.num_envs, backend=self.backend, seed=self.seed, num_threads=self.num_threads, training=True
        )
        judge_cfg = self.judge_task_cfg or self.task_cfg
        checker = WalkChecker(judge_cfg, self.run_dir, self.check_every_samples, self.criterion, self.backend, self.num_threads)
        return task, checker


def time_to_walk(run: WalkRun) -> WalkResult:
    """Train unio4's PPO from scratch, checking the walking criterion every ``check_every_samples`` samples.

    Writes the usual run directory plus ``walk.jsonl`` (one line per check).
    """
    per_iteration = run.train_cfg.ppo.num_steps * run.num_envs
    iterations = run.iterations(run.train_cfg.ppo.num_steps)
    cfg = replace(run.train_cfg, iterations=iterations, seed=run.seed)
    env, checker = run.robots_and_checker()

    def on_iteration(iteration: int, scalars: dict[str, float], actor: GaussianActor) -> bool:
        walked = checker.after_iteration(
            (iteration + 1) * per_iteration,
            scalars["perf/collect_s"] + scalars["perf/update_s"],
            scalars["reward/step"],
            lambda obs: actor(obs)[0],
            last=iteration + 1 == iterations,
        )
        return walked and run.stop_when_walking

    extra = go1_run_state(run.task_cfg, run.backend, None)  # so its checkpoints export
    train_online(env, cfg, run.run_dir, extra_state=extra, on_iteration=on_iteration, show_progress=run.show_progress, tracker=run.logger)
    env.close()
    return checker.close()


def plot_walk_curves(results: dict[int, WalkResult], criterion: WalkCriterion, out: Path) -> Path:
    """Linear and yaw tracking error of every check against training wall clock, one line per seed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    panels = (
        ("lin_vel_error", "lin vel error (m/s)", criterion.max_lin_vel_error),
        ("yaw_rate_error", "yaw rate error (rad/s)", criterion.max_yaw_rate_error),
        ("falls_per_robot_minute", "falls per robot-minute", criterion.max_falls_per_minute),
    )
    for ax, (key, label, limit) in zip(axes, panels):
        for seed, r in results.items():
            ax.plot([c["train_s"] / 60 for c in r.checks], [c[key] for c in r.checks], marker=".", label=f"seed {seed}")
        ax.axhline(limit, color="k", lw=0.8, ls="--", label="walks below")
        ax.set_xlabel("training wall clock (min)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"time to {criterion.name}: {criterion.num_envs} robots x {criterion.seconds:.0f} s, mean action, full command range")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
