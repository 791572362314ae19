"""Typed configuration of the Go1 velocity-tracking task (loaded from ``configs/task/*.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from unio4.configs.loader import bounded, check_fields, load, resolve_config_path
from unio4.deploy.observations import ObservationConfig
from unio4.sim.randomization import RandomizationConfig
from unio4.sim.rewards import RewardConfig, validate_weights
from unio4.sim.terrain import TerrainConfig

Range = tuple[float, float]


@dataclass(frozen=True)
class CommandConfig:
    lin_vel_x: Range = bounded((-1.0, 1.0), ge=-10, le=10)
    lin_vel_y: Range = bounded((-1.0, 1.0), ge=-10, le=10)
    ang_vel_yaw: Range = bounded((-1.0, 1.0), ge=-10, le=10)
    resample_time_s: float = bounded(10.0, gt=0)
    zero_below: float = bounded(0.2, ge=0)  # xy commands with a smaller norm become 0 (standing still is a skill)
    # Command curriculum, for training from scratch only (a task built with training=True, as
    # `unio4 train online` without --init builds it; evaluation, data collection and fine-tuning
    # always command the full ranges): commands are drawn from the ranges scaled by a fraction that
    # starts at `curriculum_start` and grows by `curriculum_step` each time the robots' mean linear
    # tracking (the tracking_lin_vel term, 0..1 per step) over about one episode per robot exceeds
    # `curriculum_threshold`. Small commands first: standing still is a poor answer to them.
    curriculum: bool = False
    curriculum_start: float = bounded(0.3, gt=0, le=1)
    curriculum_step: float = bounded(0.1, gt=0, le=1)
    curriculum_threshold: float = bounded(0.7, gt=0, lt=1)

    def __post_init__(self) -> None:
        check_fields(self)  # the declared ranges, for a config built in Python as for one loaded from YAML
        for name in ("lin_vel_x", "lin_vel_y", "ang_vel_yaw"):  # across the two bounds of a range
            lo, hi = getattr(self, name)
            if lo > hi:
                raise ValueError(f"{name}: lower bound {lo} > upper bound {hi}")


@dataclass(frozen=True)
class TerminationConfig:
    trunk_contact: bool = True
    max_tilt: float = bounded(1.0, gt=0, le=3.1416)  # rad between base z and world z
    min_base_height: float = bounded(0.12, ge=0)  # m above the terrain

    def __post_init__(self) -> None:
        check_fields(self)  # the declared ranges, for a config built in Python as for one loaded from YAML


@dataclass(frozen=True)
class TargetLimitsConfig:
    """The deploy runtime's shaping of each PD target (``safety`` in ``configs/deploy/``), applied in
    simulation too, so that a policy trains on the targets the robot will get.

    Unshaped, a policy learns to ask for targets past the joint limits (a larger torque near the
    limit): on the robot the safety layer clips them, and the policy walks slower than it did in
    training. The values must not be looser than the deploy preset's ``joint_margin_rad`` and
    ``max_target_rate`` (a test holds the shipped presets together).
    """

    enabled: bool = True
    joint_margin_rad: float = bounded(0.02, ge=0, le=0.5)  # targets stay this far inside the joint limits
    max_rate: float = bounded(20.0, gt=0, le=100)  # rad/s a target may move between policy steps

    def __post_init__(self) -> None:
        check_fields(self)  # the declared ranges, for a config built in Python as for one loaded from YAML


@dataclass(frozen=True)
class WarpConfig:
    """MuJoCo Warp settings (used only by ``--backend mujoco_warp``).

    MJWarp allocates contact and constraint buffers up front, per world: ``nconmax`` contacts and
    ``njmax`` constraint rows (a condim-6 foot contact takes 6 rows, a condim-3 one 3, each joint
    limit 1). Too small and contacts are dropped (MJWarp prints an overflow warning); much too
    large and every solver iteration pays for the empty rows. Heightfields need more than a plane:
    a foot touches several prisms at once.
    """

    device: str | None = None  # "cuda:0", "cpu"; None: the GPU when Warp sees one
    nconmax: int = bounded(32, ge=1)
    njmax: int = bounded(128, ge=1)
    cuda_graph: bool = True  # capture the substep loop once and replay it (CUDA only)

    def __post_init__(self) -> None:
        check_fields(self)  # the declared ranges, for a config built in Python as for one loaded from YAML


@dataclass(frozen=True)
class TaskConfig:
    robot: str = "go1"
    episode_length_s: float = bounded(20.0, gt=0)
    privileged_critic: bool = True
    observations: ObservationConfig = field(default_factory=ObservationConfig)
    commands: CommandConfig = field(default_factory=CommandConfig)
    rewards: RewardConfig = field(default_factory=RewardConfig)
    randomization: RandomizationConfig = field(default_factory=RandomizationConfig)
    termination: TerminationConfig = field(default_factory=TerminationConfig)
    terrain: TerrainConfig = field(default_factory=TerrainConfig)
    warp: WarpConfig = field(default_factory=WarpConfig)
    action_clip: float = bounded(10.0, gt=0)
    targets: TargetLimitsConfig = field(default_factory=TargetLimitsConfig)

    def __post_init__(self) -> None:
        check_fields(self)  # the declared ranges, for a config built in Python as for one loaded from YAML
        # across sections: the gait-contact reward needs the clock it follows
        if self.rewards.weights.get("gait_contact", 0.0) != 0.0 and self.observations.clock_frequency <= 0:
            raise ValueError("rewards.weights.gait_contact follows the gait clock: observations.clock_frequency must be > 0")


# Task overrides that restrict commands to walking forward at 0.4-1.0 m/s: the range the Go1 benchmarks,
# the demo and the on-robot session's gate train and evaluate on.
FORWARD_COMMANDS = ("commands.lin_vel_x=[0.4,1.0]", "commands.lin_vel_y=[0,0]", "commands.ang_vel_yaw=[0,0]")


def load_task_config(name_or_path: str | Path = "go1_flat", overrides: tuple[str, ...] | list[str] = ()) -> TaskConfig:
    """Load and validate a task config by preset name or path."""
    cfg = load(TaskConfig, resolve_config_path(name_or_path, "task"), overrides)
    validate_weights(cfg.rewards.weights, where=f"{resolve_config_path(name_or_path, 'task')}: rewards.weights")
    return cfg
