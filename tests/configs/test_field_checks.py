"""Configs built in Python are held to their declared ranges and ``Literal`` choices, as loaded ones are.

Every config dataclass below calls :func:`unio4.configs.loader.check_fields` from ``__post_init__``. For
each declared field, a value outside its range (or a string outside its choices) is refused with one
line naming the field; the bounds the hand-written checks used to enforce (strict or not) still hold;
the cross-field checks that no per-field range expresses keep their messages; and every shipped
preset and default still builds. Nothing trains or simulates here.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, Union

import numpy as np
import pytest

from unio4.configs.loader import CONFIG_DIR, load
from unio4.deploy.bundle import read_manifest
from unio4.deploy.manifest import ActionSpec, CommandSpec, ControlSpec, JointSpec, Manifest, ObservationSpec
from unio4.deploy.runtime import ReplaySource, RuntimeConfig
from unio4.learning.data.generate import GenerateConfig
from unio4.learning.data.sac import SACConfig
from unio4.learning.data.wtw_import import WtwLogFormat
from unio4.learning.offline.bc import BCConfig
from unio4.learning.offline.critics import CriticConfig
from unio4.learning.offline.improvement import ImprovementConfig
from unio4.learning.offline.pipeline import OfflineConfig
from unio4.learning.online.runner import OnlineConfig
from unio4.learning.policy import NetworkConfig
from unio4.learning.robot.session_config import SessionConfig
from unio4.robots.description import (
    ROBOTS_DIR,
    BodyParams,
    Capsule,
    ControlParams,
    Cylinder,
    Inertial,
    JointParams,
    RobotDescription,
    VisualParams,
    load_robot,
)
from unio4.sim.config import CommandConfig, TargetLimitsConfig, TaskConfig, TerminationConfig, WarpConfig, load_task_config
from unio4.sim.reality import RealityConfig
from unio4.sim.reality_zoo import ZooConfig
from unio4.sim.terrain import TerrainConfig

REPO = next(p for p in Path(__file__).resolve().parents if (p / "pretrained").is_dir())  # wherever tests/ is reorganised to


@functools.cache
def _robot() -> RobotDescription:
    return load_robot("go1")


@functools.cache
def _manifest() -> Manifest:
    return read_manifest(REPO / "pretrained" / "go1_flat")[1]


# A valid instance of each config class that checks itself: its defaults, or the part of a shipped file it is.
VALID: dict[type, Callable[[], Any]] = {
    Inertial: lambda: _robot().body.trunk,
    Cylinder: lambda: _robot().body.trunk_cylinder,
    Capsule: lambda: _robot().body.thigh_capsule,
    BodyParams: lambda: _robot().body,
    JointParams: lambda: _robot().joints,
    ControlParams: lambda: _robot().control,
    VisualParams: lambda: _robot().visual,
    RobotDescription: _robot,
    RuntimeConfig: RuntimeConfig,
    ReplaySource: lambda: ReplaySource(np.zeros((3, 12)), _manifest()),
    ObservationSpec: lambda: _manifest().observation,
    ActionSpec: lambda: _manifest().action,
    JointSpec: lambda: _manifest().joints,
    ControlSpec: lambda: _manifest().control,
    CommandSpec: CommandSpec,
    Manifest: _manifest,
    TerrainConfig: TerrainConfig,
    CommandConfig: CommandConfig,
    TerminationConfig: TerminationConfig,
    TargetLimitsConfig: TargetLimitsConfig,
    WarpConfig: WarpConfig,
    TaskConfig: TaskConfig,
    OnlineConfig: OnlineConfig,
    SACConfig: SACConfig,
    GenerateConfig: GenerateConfig,
    NetworkConfig: NetworkConfig,
    ImprovementConfig: ImprovementConfig,
    CriticConfig: CriticConfig,
    OfflineConfig: OfflineConfig,
    BCConfig: BCConfig,
}


def _choices(tp: Any) -> tuple[Any, ...] | None:
    """The values of a ``Literal[...]`` (or ``Literal[...] | None``) annotation; None for other types."""
    if typing.get_origin(tp) is Literal:
        return typing.get_args(tp)
    if typing.get_origin(tp) in (Union, types.UnionType):
        literals = [a for a in typing.get_args(tp) if a is not type(None)]
        if literals and all(typing.get_origin(a) is Literal for a in literals):
            return tuple(v for a in literals for v in typing.get_args(a))
    return None


def _declared(cls: type) -> list[tuple[str, str]]:
    """(field, "range" or "choice") of each field of ``cls`` with a declared range or ``Literal`` choices."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        limits = f.metadata.get("bounds")
        if limits is not None and any(b is not None for b in limits.values()):
            out.append((f.name, "range"))
        if _choices(hints[f.name]) is not None:
            out.append((f.name, "choice"))
    return out


DECLARED = [(cls, name, kind) for cls in VALID for name, kind in _declared(cls)]


def _outside(limits: dict[str, float | None]) -> float:
    """A number just outside ``limits`` (at a strict bound, one below an inclusive lower one, one above an upper one)."""
    if limits["gt"] is not None:
        return limits["gt"]
    if limits["ge"] is not None:
        return limits["ge"] - 1
    if limits["lt"] is not None:
        return limits["lt"]
    assert limits["le"] is not None
    return limits["le"] + 1


def _shaped(value: Any, bad: float) -> Any:
    """``bad`` in the shape of ``value``: every number of a tuple or a mapping replaced (an empty one gets one item)."""
    if isinstance(value, dict):
        return {k: _shaped(v, bad) for k, v in value.items()} or {"hopper": bad}
    if isinstance(value, (tuple, list)):
        return tuple(_shaped(v, bad) for v in value) or (bad,)
    return bad


def _field(cls: type, name: str) -> dataclasses.Field[Any]:
    return next(f for f in dataclasses.fields(cls) if f.name == name)


def test_every_class_here_checks_itself() -> None:
    """Each class above has a declared field (the two that have none check their parts and cross-field rules)."""
    assert {cls for cls, _, _ in DECLARED} == set(VALID) - {RobotDescription, Manifest}
    assert {kind for _, _, kind in DECLARED} == {"range", "choice"}


@pytest.mark.parametrize("cls", list(VALID), ids=lambda cls: cls.__name__)
def test_defaults_and_shipped_values_construct(cls: type) -> None:
    valid = VALID[cls]()
    rebuilt = dataclasses.replace(valid)  # built again through __post_init__
    assert type(valid) is cls and rebuilt == valid


@pytest.mark.parametrize(("cls", "name", "kind"), DECLARED, ids=[f"{c.__name__}.{n}-{k}" for c, n, k in DECLARED])
def test_a_value_outside_the_declared_range_or_choices_names_its_field(cls: type, name: str, kind: str) -> None:
    valid = VALID[cls]()
    bad = _shaped(getattr(valid, name), _outside(_field(cls, name).metadata["bounds"])) if kind == "range" else "not-a-choice"
    with pytest.raises(ValueError) as err:
        dataclasses.replace(valid, **{name: bad})
    message = str(err.value)
    assert message.startswith(f"{name}: expected ") and "\n" not in message, message


# The bounds the hand-written checks enforced before the ranges moved to field metadata: same strictness.
BOUNDARIES: list[tuple[type, dict[str, Any], bool]] = [
    (RuntimeConfig, {"startup_s": 0.0}, False),
    (RuntimeConfig, {"startup_s": 1e-3}, True),
    (RuntimeConfig, {"connect_timeout_s": 0.0}, False),
    (RuntimeConfig, {"damping_hold_s": 0.0}, True),
    (RuntimeConfig, {"damping_hold_s": -1e-9}, False),
    (RuntimeConfig, {"chunk_steps": 1}, True),
    (RuntimeConfig, {"chunk_steps": 0}, False),
    (ReplaySource, {"gain_scale": 1.0}, True),
    (ReplaySource, {"gain_scale": 1.0 + 1e-9}, False),
    (ReplaySource, {"gain_scale": 0.0}, False),
    (ReplaySource, {"gain_scale": float("nan")}, False),
    (Inertial, {"mass": 0.0}, False),
    (Inertial, {"mass": 1e-6}, True),
    (Inertial, {"inertia": (1.0, 0.0, 1.0)}, False),
    (ControlParams, {"sim_dt": 0.0}, False),
    (ControlParams, {"sdk_dt": 0.0}, False),
    (ControlParams, {"decimation": 0}, False),
    (ControlParams, {"decimation": 1}, True),
    (TerrainConfig, {"tile_size": 0.0}, False),
    (TerrainConfig, {"resolution": 0.0}, False),
    (TerrainConfig, {"num_levels": 0}, False),
    (TerrainConfig, {"num_levels": 1, "max_init_level": 0}, True),
    (TerrainConfig, {"max_init_level": -1}, False),
    (WarpConfig, {"nconmax": 1, "njmax": 1}, True),
    (WarpConfig, {"nconmax": 0}, False),
    (WarpConfig, {"njmax": 0}, False),
    (TaskConfig, {"episode_length_s": 0.0}, False),
    (TaskConfig, {"episode_length_s": 1e-3}, True),
    (SACConfig, {"batch_size": 1, "start_steps": 0}, True),
    (SACConfig, {"batch_size": 0}, False),
    (SACConfig, {"start_steps": -1}, False),
    (GenerateConfig, {"transitions": 1, "collect_envs": 1, "eval_episodes": 1, "eval_interval": 1}, True),
    (GenerateConfig, {"transitions": 0}, False),
    (GenerateConfig, {"collect_envs": 0}, False),
    (GenerateConfig, {"eval_episodes": 0}, False),
    (GenerateConfig, {"eval_interval": 0}, False),
    (GenerateConfig, {"medium_fraction": 1.0}, True),
    (GenerateConfig, {"medium_fraction": 0.0}, False),
    (GenerateConfig, {"medium_fraction": 1.01}, False),
    (ImprovementConfig, {"steps": 0, "batch_size": 1, "ope_interval": 1}, True),
    (ImprovementConfig, {"steps": -1}, False),
    (ImprovementConfig, {"batch_size": 0}, False),
    (ImprovementConfig, {"ope_interval": 0}, False),
    (ImprovementConfig, {"clip": 0.2, "clip_final": 0.2}, True),
    (ImprovementConfig, {"clip_final": 0.0}, False),
    (CriticConfig, {"steps": 0, "batch_size": 1, "target_update_every": 1}, True),
    (CriticConfig, {"expectile": 0.0}, False),
    (CriticConfig, {"expectile": 1.0}, False),
    (CriticConfig, {"expectile": 0.999}, True),
    (CriticConfig, {"steps": -1}, False),
    (CriticConfig, {"batch_size": 0}, False),
    (CriticConfig, {"target_update_every": 0}, False),
    (BCConfig, {"members": 1, "steps": 0}, True),
    (BCConfig, {"members": 0}, False),
    (BCConfig, {"kl_cap": 0.0}, False),
]


@pytest.mark.parametrize(("cls", "changes", "ok"), BOUNDARIES, ids=[f"{c.__name__}-{ch}" for c, ch, _ in BOUNDARIES])
def test_the_ranges_the_hand_written_checks_enforced_still_hold(cls: type, changes: dict[str, Any], ok: bool) -> None:
    valid = VALID[cls]()
    if ok:
        dataclasses.replace(valid, **changes)
        return
    with pytest.raises(ValueError) as err:
        dataclasses.replace(valid, **changes)
    assert str(err.value).split(":")[0] in changes and "\n" not in str(err.value), str(err.value)


def _cross_field_cases() -> list[tuple[type, Callable[[Any], dict[str, Any]], str]]:
    """(class, changes of a valid instance, message) of each kept cross-field check."""
    return [
        (CommandConfig, lambda c: {"lin_vel_x": (1.0, 0.0)}, r"lin_vel_x: lower bound 1.0 > upper bound 0.0"),
        (CommandSpec, lambda c: {"ang_vel_yaw": (1.0, 0.0)}, r"ang_vel_yaw: lower bound 1.0 > upper bound 0.0"),
        (JointParams, lambda j: {"range": {**j.range, "hip": (0.5, 0.5)}}, r"range\.hip: lower bound 0\.5 >= upper bound 0\.5"),
        (JointParams, lambda j: {"damping": {"hip": 0.0}}, r"joint tables need exactly the keys"),
        (RobotDescription, lambda r: {"legs": r.legs[:2]}, r"control\.default_pose must name the legs"),
        (ControlSpec, lambda c: {"policy_dt": c.sdk_dt * 2.5}, r"is not a whole multiple of sdk_dt"),
        (Manifest, lambda m: {"format": 1}, r"format is 1, this runtime reads format 2; re-export"),
        (Manifest, lambda m: {"action": dataclasses.replace(m.action, scales=m.action.scales[:11])}, r"action\.scales: 11 values"),
        (TerrainConfig, lambda t: {"types": ()}, r"types: at least one terrain type"),
        (TerrainConfig, lambda t: {"num_levels": 3, "max_init_level": 3}, r"max_init_level must be in \[0, 2\]"),
        (
            TaskConfig,
            lambda t: {
                "rewards": dataclasses.replace(t.rewards, weights={**t.rewards.weights, "gait_contact": 1.0}),
                "observations": dataclasses.replace(t.observations, clock_frequency=0.0),
            },
            r"gait_contact follows the gait clock",
        ),
        (OnlineConfig, lambda c: {"min_std": 0.3, "max_std": 0.2}, r"min_std \(0\.3\) must lie below max_std \(0\.2\)"),
        (SACConfig, lambda c: {"buffer_size": 10, "batch_size": 20}, r"buffer_size \(10\) must be >= batch_size \(20\)"),
        (GenerateConfig, lambda c: {"replay_transitions": {"nope": 5}}, r"replay_transitions: unknown task 'nope'"),
        (NetworkConfig, lambda c: {"init_std": 5.0}, r"init_std must lie strictly inside"),
        (ImprovementConfig, lambda c: {"clip": 0.2, "clip_final": 0.3}, r"clip_final \(0\.3\) must be <= clip \(0\.2\)"),
        (BCConfig, lambda c: {"members": 1, "regularizer": "kl"}, r"regularizer 'kl' needs members >= 2"),
        (ReplaySource, lambda r: {"targets": np.zeros(3)}, r"replay targets: expected a finite"),
    ]


CROSS_FIELD = _cross_field_cases()


@pytest.mark.parametrize(("cls", "changes", "message"), CROSS_FIELD, ids=[f"{c.__name__}-{i}" for i, (c, _, _) in enumerate(CROSS_FIELD)])
def test_cross_field_checks_keep_their_messages(cls: type, changes: Callable[[Any], dict[str, Any]], message: str) -> None:
    valid = VALID[cls]()
    with pytest.raises(ValueError, match=message) as err:
        dataclasses.replace(valid, **changes(valid))
    assert "\n" not in str(err.value)


def _preset_class(path: Path) -> type:
    kind, stem = path.parent.name, path.stem
    if kind == "train":
        return BCConfig if stem.startswith("bc_") else OfflineConfig if "offline" in stem else OnlineConfig
    classes = {"task": TaskConfig, "data": GenerateConfig, "import": WtwLogFormat}
    return {**classes, "session": SessionConfig, "deploy": RuntimeConfig, "reality": RealityConfig, "zoo": ZooConfig}[kind]


PRESETS = sorted(CONFIG_DIR.glob("**/*.yaml"))


@pytest.mark.parametrize("path", PRESETS, ids=[str(p.relative_to(CONFIG_DIR)) for p in PRESETS])
def test_every_shipped_preset_loads(path: Path) -> None:
    cls = _preset_class(path)
    cfg = load_task_config(path) if cls is TaskConfig else load(cls, path)
    assert isinstance(cfg, cls)


def test_every_robot_description_loads() -> None:
    robots = sorted(ROBOTS_DIR.glob("*/*.yaml"))
    assert robots
    for path in robots:
        assert load_robot(path).num_joints == 12
