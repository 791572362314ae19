"""The on-robot session's settings (``configs/session/``) and its one error, shared by the session loop
(:mod:`unio4.learning.robot.session`) and its update modes (:mod:`unio4.learning.robot.session_update`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from unio4.configs.loader import ConfigError, bounded, check_fields, load, resolve_config_path
from unio4.deploy.runtime import RuntimeConfig
from unio4.deploy.tracker import tracker_address
from unio4.learning.online.ppo import PPOConfig
from unio4.learning.robot.command_map import CommandMapConfig
from unio4.learning.robot.identify import IdentifyConfig
from unio4.learning.robot.robot_check import RobotCheckConfig

CONFIG_FILE, TASK_FILE = "session.yaml", "task.yaml"  # in the session directory, written by Session.start


class SessionError(RuntimeError):
    """A phase that could not run (the robot unreachable, a failed deploy); one line, the session resumable."""


@dataclass(frozen=True)
class SimFinetuneConfig:
    """The fine-tuning in simulation of ``update: identify`` (``unio4 train online --init``, run in the session's process)."""

    config: str = "finetune_go1"  # training preset
    iterations: int = bounded(100, ge=0)  # 0: no fine-tune (the walked bundle is only calibrated: session.calibrate)
    num_envs: int = bounded(256, ge=1)
    threads: int | None = bounded(None, ge=1)  # torch threads while it runs (None: the process's own)
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
    # or the first's by more than this (the lin-vel error above averages the whole command range and can
    # let through a bundle that is slower at one command: docs/benchmarks/go1-sessions.md, "Closing a reality gap").
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
    # HOST:PORT of a tracking camera's stream (deploy/tracker.py): every rollout logs its velocity, and the on-robot
    # check compares bundles by it instead of leg odometry; None: leg odometry alone
    tracker: str | None = None
    # KEY=VALUE settings of the deploy runtime (configs/deploy/go1.yaml) for every rollout, e.g.
    # realtime_priority=80 on the robot's computer
    runtime_overrides: tuple[str, ...] = ()
    prompt: bool = True  # ask the operator before each rollout
    # Robot time: the session stops (between rollouts) before it would pass max_robot_minutes of deploy time in all,
    # and makes no update whose bundle the budget could not then walk in the on-robot check;
    # a rollout still running rollout_grace_s after its planned length is stopped (SIGTERM: the runtime damps and exits).
    max_robot_minutes: float | None = bounded(None, gt=0, le=1e4)
    rollout_grace_s: float = bounded(30.0, gt=0, le=3600)
    seed: int = bounded(0, ge=0)
    critic_warmup_epochs: int = bounded(200, ge=0)  # Monte-Carlo V fit on the first batch
    # Exploration floor on the robot (see OnlineConfig.min_std): the start checkpoint's log-std
    # range is remapped so explore-mode rollouts sample at std >= min_std; the mean is unchanged.
    # None: explore with the checkpoint's own std (BC of a controller: too little to learn from;
    # docs/benchmarks/go1-sessions.md, "On-robot fine-tuning session").
    min_std: float | None = bounded(0.15, gt=0, le=10)
    critic_lr: float = bounded(1e-3, gt=0, le=1)
    # ppo mode's critic at the start: "fit": V regressed to the first batch's Monte-Carlo returns; "checkpoint":
    # the start checkpoint's own V when it reads the policy's observation (an offline Uni-O4 checkpoint's), else fit.
    critic_init: Literal["fit", "checkpoint"] = "fit"
    # ppo mode's rewards: "running" divides them by the running std of the discounted return (the Uni-O4 code's
    # "dynamic" scaling, learning/online/reward_scaling.py), its statistics carried from iteration to iteration.
    reward_normalization: Literal["none", "running"] = "none"
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
    check: RobotCheckConfig = field(default_factory=RobotCheckConfig)  # candidates walk on the robot before they become current
    # How the robot's rollouts improve the policy. "ppo": PPO on them (explore-mode rollouts).
    # "identify": fit the simulator's dynamics (the identify grid) to mean-action rollouts at
    # identify_commands, then fine-tune in simulation around the estimate (learning/robot/identify.py): the
    # robot time goes into measuring the gap, the learning into the simulator.
    update: Literal["ppo", "identify"] = "ppo"
    identify_commands: tuple[float, ...] = bounded((0.3, 0.6, 0.9), ge=-2, le=2)  # m/s forward, one rollout each
    identify: IdentifyConfig = field(default_factory=IdentifyConfig)  # the candidate grid and what is compared
    sim: SimFinetuneConfig = field(default_factory=SimFinetuneConfig)
    # identify mode: the candidate's commands remapped so the robot holds what the start bundle holds on the nominal
    # robot in simulation, fitted to the walks (learning/robot/command_map.py)
    calibrate: CommandMapConfig = field(default_factory=CommandMapConfig)

    def __post_init__(self) -> None:
        check_fields(self)  # the declared ranges and choices, for a config built in Python as for one loaded from YAML
        if self.tracker is not None:
            tracker_address(self.tracker, "tracker")
        if self.runtime_overrides:  # refused here, naming the key, rather than by every rollout on the robot
            try:
                load(RuntimeConfig, resolve_config_path("go1", "deploy"), list(self.runtime_overrides))
            except ConfigError as exc:
                raise ConfigError(f"runtime_overrides: {exc}") from None
